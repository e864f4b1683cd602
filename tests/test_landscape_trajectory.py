"""``--trajectory``: the saved checkpoints of a run, measured and projected on their principal directions.

The trainer keeps ``checkpoints/epoch-XXXX.pt`` every K epochs and ``last.pt``; here a tiny run is trained
by hand beside a real run folder and saves them in that format. The PCA is checked against scikit-learn,
every point's figures against a fresh measurement of that checkpoint, and the files by their hashes.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from losszoo.cli.main import app
from losszoo.landscape.hessian import extreme_eigenvalues, hessian_products
from losszoo.landscape.runs import load_run
from losszoo.landscape.trajectory import principal_directions

runner = CliRunner()

RECIPE = {
    "experiment": "traj",
    "dataset": "iris",
    "model": {"name": "mlp", "hidden": [8], "batch_norm": True},
    "loss": "cross_entropy",
    "train": {"epochs": 2, "batch_size": 16, "device": "cpu"},
}


def save_checkpoints(folder, epochs: int = 8, every: int = 2) -> None:
    """Train the run's model from scratch by hand and keep checkpoints as the trainer does:
    ``checkpoints/epoch-XXXX.pt`` every ``every`` epochs and ``last.pt``, each the dict of checkpoint.pt."""
    from losszoo.training.trainer import build, load_run_data

    config = torch.load(folder / "checkpoint.pt", weights_only=True)["config"]
    data = load_run_data(config)
    torch.manual_seed(5)
    model, loss = build(config, data, torch.device("cpu"))
    optimizer = torch.optim.SGD(list(model.parameters()), lr=0.1, momentum=0.9)
    (folder / "checkpoints").mkdir()
    generator = torch.Generator().manual_seed(0)
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(data.train), generator=generator)
        for index in order.split(16):
            optimizer.zero_grad()
            loss(model(data.train.x[index]), data.train.y[index]).backward()
            optimizer.step()
        state = {"model": model.state_dict(), "loss": loss.state_dict(), "config": config, "epoch": epoch}
        if epoch % every == 0:
            torch.save(state, folder / "checkpoints" / f"epoch-{epoch:04d}.pt")
    torch.save(state, folder / "last.pt")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from losszoo import train

    root = tmp_path_factory.mktemp("runs")
    with_checkpoints, plain = (root / "traj" / r["run_id"] for r in train(RECIPE | {"seeds": [0, 1]}, runs_dir=root))
    save_checkpoints(with_checkpoints)
    return root, with_checkpoints, plain


def _hashes(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.pt"))}


def test_principal_directions_are_scikit_learns_pca():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    points = torch.from_numpy(rng.normal(size=(6, 40)) * np.linspace(3, 0.1, 40))
    directions, coordinates, explained = principal_directions(points)
    pca = PCA(n_components=2).fit((points - points[-1]).numpy())
    for ours, theirs in zip(directions.numpy(), pca.components_, strict=True):
        assert abs(ours @ theirs) == pytest.approx(1.0, abs=1e-9)  # the same direction, up to its sign
    np.testing.assert_allclose(explained, pca.explained_variance_ratio_, rtol=1e-9)
    # coordinates: each point's offset from the final one, projected (the final point at the origin)
    np.testing.assert_allclose(coordinates.numpy(), (points - points[-1]).numpy() @ directions.numpy().T)
    assert coordinates[-1].abs().max() == 0


def test_the_trajectory_is_measured_point_by_point_and_files_are_left_alone(runs, tmp_path):
    root, folder, _ = runs
    before = _hashes(folder)
    result = runner.invoke(app, ["landscape", str(folder), "--trajectory", "--probe", "64", "--budget", "5",
                                 "--plot", str(tmp_path / "plots")])
    assert result.exit_code == 0, result.output
    for word in ("trajectory of", "epoch 2", "epoch 8", "last", "negative share", "principal directions"):
        assert word in result.output
    stored = json.loads((folder / "trajectory.json").read_text())
    names = [p["name"] for p in stored["points"]]
    assert names == ["epoch 2", "epoch 4", "epoch 6", "epoch 8", "last"]
    assert (folder / "trajectory.png").is_file() and (tmp_path / "plots" / "trajectory.png").is_file()
    assert sum(stored["explained_variance"]) <= 1 + 1e-9
    assert stored["points"][-1]["x"] == stored["points"][-1]["y"] == 0  # the final weights: the origin
    # a point's figures are those of its checkpoint, measured afresh
    run = load_run(folder, probe=64, device="cpu")
    checkpoint = torch.load(folder / "checkpoints" / "epoch-0004.pt", weights_only=True)
    run.model.load_state_dict(checkpoint["model"])
    surface = run.surface()
    loss, _ = surface.evaluate()
    with hessian_products(surface.loss, surface.space) as (hvp, _):
        top, _ = extreme_eigenvalues(hvp, surface.space, torch.Generator().manual_seed(1), 20)
    point = stored["points"][1]
    assert point["loss"] == pytest.approx(loss, rel=1e-5)
    assert point["lambda_max"] == pytest.approx(top.value, rel=1e-3)
    assert 0 <= point["negative_share"] <= 1
    assert _hashes(folder) == before


def test_a_run_without_saved_checkpoints_is_refused(runs):
    _, _, plain = runs
    result = runner.invoke(app, ["landscape", str(plain), "--trajectory"])
    assert result.exit_code == 2
    assert "no saved checkpoints" in result.output and "save_every" in result.output


def test_weights_last_measures_last_pt_and_says_so(runs, tmp_path):
    import shutil

    _, folder, plain = runs
    result = runner.invoke(app, ["landscape", str(folder), "--weights", "last", "--probe", "32", "--budget", "1"])
    assert result.exit_code == 0, result.output
    stored = json.loads((folder / "landscape.json").read_text())
    assert stored["weights"] == "last" and stored["settings"]["weights"] == "last"
    assert json.loads((folder / "result.json").read_text())["landscape"]["settings"]["weights"] == "last"
    run = load_run(folder, probe=32, device="cpu", weights="last")
    assert stored["summary"]["loss"] == pytest.approx(run.surface().evaluate()[0], rel=1e-6)
    assert stored["summary"]["loss"] != pytest.approx(load_run(folder, 32, "cpu").surface().evaluate()[0])
    # a run without last.pt (one trained before the trainer kept it) is skipped with the reason; nothing
    # left: exit 2
    older = tmp_path / "older"
    shutil.copytree(plain, older)
    (older / "last.pt").unlink(missing_ok=True)
    result = runner.invoke(app, ["landscape", str(older), "--weights", "last"])
    assert result.exit_code == 2 and "no last.pt" in result.output


def test_the_trainers_own_checkpoints_make_a_trajectory(tmp_path):
    """End to end with ``train.save_every``, once the trainer keeps checkpoints (skipped before)."""
    from losszoo import train
    from losszoo.errors import LosszooError

    recipe = RECIPE | {"experiment": "kept", "train": RECIPE["train"] | {"epochs": 6, "save_every": 2}}
    try:
        result = train(recipe, runs_dir=tmp_path)[0]
    except LosszooError as error:
        pytest.skip(f"the trainer does not keep checkpoints here: {error}")
    folder = tmp_path / "kept" / result["run_id"]
    before = _hashes(folder)
    outcome = runner.invoke(app, ["landscape", str(folder), "--trajectory", "--probe", "32", "--budget", "2"])
    assert outcome.exit_code == 0, outcome.output
    names = [p["name"] for p in json.loads((folder / "trajectory.json").read_text())["points"]]
    assert names == ["epoch 2", "epoch 4", "epoch 6", "last"]
    assert _hashes(folder) == before
