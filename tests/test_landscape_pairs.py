"""Two minima: weight matching (Git Re-Basin) and the trained Bezier curve (Garipov et al.).

- The permutation spec is checked by what it must preserve: a network with its units permuted
  computes the same function.
- Weight matching recovers a known permutation exactly; a run and its permuted copy are then joined
  by a flat line (zero barrier), end to end through the command.
- The Bezier curve against its formula; on two seeds of a digits mlp its barrier is below the line's.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from losszoo.cli.main import app
from losszoo.errors import LosszooError
from losszoo.landscape.align import permutation_spec, permute, weight_matching
from losszoo.landscape.between import barrier, interpolate, mix
from losszoo.landscape.curve import BezierCurve
from losszoo.landscape.runs import load_run
from losszoo.models.nets import CNN, MLP, Linear

runner = CliRunner()


def randomized(model: nn.Module) -> nn.Module:
    """Batch norms with non-trivial statistics and affine parameters, so a wrong permutation shows."""
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            nn.init.normal_(m.weight)
            nn.init.normal_(m.bias)
    return model.eval()


NETWORKS = {
    "mlp": lambda: MLP(20, 5, hidden=[16, 12], batch_norm=True),
    "mlp-plain-dropout": lambda: MLP(20, 5, hidden=[10, 10, 8], dropout=0.1, activation="tanh"),
    "cnn": lambda: CNN(64, 5, image_shape=(1, 8, 8), channels=[6, 10]),
}


def random_perms(spec, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {p: torch.randperm(n, generator=generator) for p, n in spec.sizes.items()}


@pytest.mark.parametrize("name", NETWORKS)
def test_a_permuted_network_computes_the_same_function(name):
    model = randomized(NETWORKS[name]())
    spec = permutation_spec(model)
    x = torch.randn(7, 64 if name.startswith("cnn") else 20)
    before = model(x)
    state = model.state_dict()
    permuted = permute(spec, random_perms(spec, 1), state)
    assert any(not torch.equal(permuted[k], state[k]) for k in state)
    model.load_state_dict(permuted)
    torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("seed", [1, 2])
def test_weight_matching_recovers_a_permutation_exactly(name, seed):
    model = randomized(NETWORKS[name]())
    spec = permutation_spec(model)
    state_a = {k: v.clone() for k, v in model.state_dict().items()}
    hidden = random_perms(spec, seed)
    state_b = permute(spec, hidden, state_a)
    found, passes = weight_matching(spec, state_a, state_b)
    for p, perm in hidden.items():
        # unit i of B is unit perm[i] of A, so B's unit found[i] must be A's unit i
        assert torch.equal(perm[found[p]], torch.arange(len(perm))), p
    back = permute(spec, found, state_b)
    for key in state_a:
        assert torch.equal(back[key], state_a[key]), key
    assert passes <= 5


def test_models_without_a_permutation_spec_are_refused():
    from losszoo.models.resnet import ResNet

    with pytest.raises(LosszooError, match="no permutation spec.*not an mlp or cnn"):
        permutation_spec(Linear(20, 5))
    with pytest.raises(LosszooError, match="no permutation spec.*no hidden units"):
        permutation_spec(MLP(20, 5, hidden=[]))
    with pytest.raises(LosszooError, match="no permutation spec.*not an mlp or cnn"):
        permutation_spec(ResNet(64, 5, image_shape=(1, 8, 8), channels=[4, 8], blocks=1))


def test_bezier_curve_is_its_formula_and_starts_as_the_line():
    torch.manual_seed(0)
    a = {"w": torch.randn(3, 2), "b": torch.randn(3), "count": torch.tensor(5)}
    b = {"w": torch.randn(3, 2), "b": torch.randn(3), "count": torch.tensor(9)}
    la, lb = {"centres": torch.randn(4, 2)}, {"centres": torch.randn(4, 2)}
    curve = BezierCurve(a, b, la, lb, ["w", "b"], ["centres"])
    for t in (0.0, 0.3, 0.5, 1.0):  # theta at the midpoint: the curve is the straight line
        model, loss = curve(t)
        torch.testing.assert_close(model["w"], (1 - t) * a["w"] + t * b["w"])
        torch.testing.assert_close(loss["centres"], (1 - t) * la["centres"] + t * lb["centres"])
        assert model["count"] == 5  # integers (batch counters) are A's
    with torch.no_grad():
        curve.theta["model.w"].add_(1.0)
    model, _ = curve(0.25)
    expected = 0.75 ** 2 * a["w"] + 2 * 0.25 * 0.75 * (a["w"] + b["w"] + 2) / 2 + 0.25 ** 2 * b["w"]
    torch.testing.assert_close(model["w"], expected)
    torch.testing.assert_close(curve(0.0)[0]["w"], a["w"])
    torch.testing.assert_close(curve(1.0)[0]["w"], b["w"])


# --- on trained runs -----------------------------------------------------------------------------

RECIPE = {
    "experiment": "pairs",
    "dataset": "digits",
    "model": {"name": "mlp", "hidden": [32], "batch_norm": True},
    "loss": "cross_entropy",
    "seeds": [0, 1],
    "train": {"epochs": 6, "batch_size": 64, "device": "cpu", "optimizer": {"name": "adamw", "lr": 3.0e-3}},
}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    from losszoo import train

    root = tmp_path_factory.mktemp("runs")
    results = train(RECIPE, runs_dir=root)
    assert [r["status"] for r in results] == ["completed"] * 2
    return root, [root / "pairs" / r["run_id"] for r in results]


def _hashes(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.pt"))}


def permuted_copy(folder, where, seed: int = 3):
    """A copy of a run whose checkpoint holds the same network with its hidden units permuted."""
    shutil.copytree(folder, where)
    checkpoint = torch.load(where / "checkpoint.pt", weights_only=True)
    model = MLP(64, 10, **{k: v for k, v in RECIPE["model"].items() if k != "name"})
    spec = permutation_spec(model)
    checkpoint["model"] = permute(spec, random_perms(spec, seed), checkpoint["model"])
    torch.save(checkpoint, where / "checkpoint.pt")
    result = json.loads((where / "result.json").read_text())
    result["run_id"] = where.name
    (where / "result.json").write_text(json.dumps(result))
    return where


def test_a_run_and_its_permuted_copy_are_joined_by_a_flat_line_after_alignment(pair, tmp_path):
    _, (a, _) = pair
    b = permuted_copy(a, tmp_path / "permuted")
    result = runner.invoke(app, ["landscape", "--between", str(a), str(b), "--align", "--probe", "128"])
    assert result.exit_code == 0, result.output
    assert "aligned" in result.output and "weight matching" in result.output
    aligned = json.loads((a / "aligned-permuted.json").read_text())
    line = json.loads((a / "between-permuted.json").read_text())
    assert aligned["loss_barrier"] == pytest.approx(0.0, abs=1e-5)
    assert aligned["barrier"] == pytest.approx(0.0, abs=1e-9)
    assert aligned["train_loss"] == pytest.approx([aligned["train_loss"][0]] * 21, rel=1e-5)
    assert line["loss_barrier"] > 0.1  # unaligned, the same network is far from itself
    summary = json.loads((a / "result.json").read_text())["landscape"]
    assert summary["aligned_barrier"] == aligned["barrier"] and summary["barrier"] == line["barrier"]
    assert summary["barrier_settings"]["align"] == "weight_matching"
    assert summary["curve_barrier"] is None


def test_interpolate_to_an_aligned_state_leaves_both_runs_alone(pair):
    _, (a_folder, b_folder) = pair
    a, b = load_run(a_folder, 64, "cpu"), load_run(b_folder, 64, "cpu")
    before = {k: v.clone() for k, v in b.model.state_dict().items()}
    spec = permutation_spec(a.model)
    perms, _ = weight_matching(spec, a.model.state_dict(), b.model.state_dict())
    path = interpolate(a, b, points=5, model_b=permute(spec, perms, b.model.state_dict()))
    assert path["barrier"] >= 0 and len(path["t"]) == 5
    for key, value in b.model.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.slow
def test_the_bezier_curve_has_a_lower_barrier_than_the_line(pair):
    root, (a, b) = pair
    hashes = _hashes(a) | {f"b/{k}": v for k, v in _hashes(b).items()}
    result = runner.invoke(app, ["landscape", "--between", a.name, b.name, "--runs-dir", str(root),
                                 "--curve", "bezier", "--curve-epochs", "20"])
    assert result.exit_code == 0, result.output
    line = json.loads((a / f"between-{b.name}.json").read_text())
    curve = json.loads((a / f"curve-{b.name}.json").read_text())
    assert curve["training"]["epochs"] == 20 and curve["training"]["steps"] > 0
    # the curve is trained on the training loss: its loss barrier is far below the line's
    assert line["loss_barrier"] > 0.05
    assert curve["loss_barrier"] < 0.5 * line["loss_barrier"]
    assert curve["train_barrier"] <= line["train_barrier"]
    assert curve["barrier"] < line["barrier"]
    # the endpoints are the runs themselves, measured alike on both paths
    assert curve["train_loss"][0] == pytest.approx(line["train_loss"][0], rel=1e-5)
    assert curve["train_loss"][-1] == pytest.approx(line["train_loss"][-1], rel=1e-5)
    summary = json.loads((b / "result.json").read_text())["landscape"]
    assert summary["curve_barrier"] == curve["barrier"] and summary["barrier_settings"]["curve"] == "bezier"
    assert (a / f"between-{b.name}.png").is_file()
    assert _hashes(a) | {f"b/{k}": v for k, v in _hashes(b).items()} == hashes  # checkpoints never written


def test_barrier_of_the_curve_path_uses_the_same_definition():
    values = [0.2, 0.25, 0.3, 0.2]
    ts = [0.0, 1 / 3, 2 / 3, 1.0]
    assert barrier(values, ts) == pytest.approx(max(v - 0.2 for v in values))
    assert mix({"x": torch.zeros(2)}, {"x": torch.ones(2)}, 0.25)["x"].tolist() == [0.25, 0.25]
