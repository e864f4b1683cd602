"""losszoo landscape: every estimate against an exact answer, and the command on real runs.

- Hessian routines against ``torch.autograd.functional.hessian`` and ``eigvalsh`` on a tiny model.
- Flatness radius and SAM sharpness against their closed forms on a quadratic.
- Filter normalization checked filter by filter with plain loops.
- The command on tiny trained runs: files, result.json merge, weights untouched, errors.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from torch import nn
from torch.func import functional_call
from typer.testing import CliRunner

from losszoo.cli.main import app
from losszoo.landscape.between import barrier, interpolate
from losszoo.landscape.directions import ParamSpace
from losszoo.landscape.flatness import flatness_radius, radius_along, sam_sharpness
from losszoo.landscape.hessian import extreme_eigenvalues, hessian_products, hutchinson_trace, power_iteration
from losszoo.landscape.measure import Plan, Timing, estimated_seconds, measure_run, measure_surface, plan_for
from losszoo.landscape.runs import load_run
from losszoo.landscape.surface import Surface, plane, profile

runner = CliRunner()


# --- a tiny model with an exact Hessian ----------------------------------------------------------


def tiny_problem(seed: int):
    """A 3-5-3 tanh network with cross-entropy on random data, in float64, away from any minimum
    (so its Hessian has negative eigenvalues), with its exact Hessian."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    x = torch.randn(40, 3, dtype=torch.float64)
    y = torch.randint(0, 3, (40,))
    surface = Surface(list(net.parameters()), lambda: (nn.functional.cross_entropy(net(x), y), None))
    names = [n for n, _ in net.named_parameters()]

    def loss_at(flat: torch.Tensor) -> torch.Tensor:
        params = dict(zip(names, surface.space.split(flat), strict=True))
        return nn.functional.cross_entropy(functional_call(net, params, (x,)), y)

    hessian = torch.autograd.functional.hessian(loss_at, surface.space.get())
    return surface, hessian


@pytest.mark.parametrize("seed", [0, 3])
def test_hessian_vector_products_equal_the_exact_hessian(seed):
    surface, hessian = tiny_problem(seed)
    vectors = torch.randn(4, surface.space.dim, dtype=torch.float64)
    for batched in (True, False):
        with hessian_products(surface.loss, surface.space, batched) as (hvp, _):
            torch.testing.assert_close(hvp(vectors[0]), hessian @ vectors[0], rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(hvp(vectors), vectors @ hessian.T, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 3])
def test_power_iteration_finds_both_ends_of_the_spectrum(seed):
    surface, hessian = tiny_problem(seed)
    exact = torch.linalg.eigvalsh(hessian)
    lowest, highest = float(exact[0]), float(exact[-1])
    assert lowest < 0 < highest  # a saddle: the test needs both signs
    with hessian_products(surface.loss, surface.space) as (hvp, _):
        top, bottom = extreme_eigenvalues(hvp, surface.space, torch.Generator().manual_seed(1), 20, 1e-3)
        # the defaults: lambda_max within the tolerance; lambda_min is a Rayleigh quotient, so never below
        # the true smallest eigenvalue, and already negative (the saddle is seen)
        assert top.converged
        assert top.value == pytest.approx(highest, rel=1e-3)
        assert lowest - 1e-12 <= bottom.value < 0
        # run long enough, both converge to eigvalsh
        top, bottom = extreme_eigenvalues(hvp, surface.space, torch.Generator().manual_seed(1), 2000, 1e-12)
    assert top.converged and bottom.converged
    assert top.value == pytest.approx(highest, rel=1e-6)
    assert bottom.value == pytest.approx(lowest, rel=1e-5)


def test_power_iteration_on_a_negative_definite_operator_reports_the_negative_end_first():
    space = ParamSpace([nn.Parameter(torch.zeros(4, dtype=torch.float64))])
    matrix = torch.diag(torch.tensor([-5.0, -2.0, -1.0, 0.5], dtype=torch.float64))
    top, bottom = extreme_eigenvalues(lambda v: v @ matrix, space, torch.Generator().manual_seed(0), 500, 1e-12)
    assert bottom.value == pytest.approx(-5.0, rel=1e-6)
    assert top.value == pytest.approx(0.5, rel=1e-5)
    shifted = power_iteration(lambda v: v @ matrix, space, torch.Generator().manual_seed(0), shift=-5.0,
                              iterations=500, tol=1e-12)
    assert shifted.value == pytest.approx(0.5, rel=1e-5)


@pytest.mark.parametrize("seed", [0, 3])
def test_hutchinson_trace_agrees_with_the_exact_trace(seed):
    surface, hessian = tiny_problem(seed)
    exact = float(hessian.trace())
    with hessian_products(surface.loss, surface.space) as (hvp, _):
        estimate = hutchinson_trace(hvp, surface.space, torch.Generator().manual_seed(2), samples=300)
        # each sample is exactly v^T H v for the Rademacher v drawn
        v = surface.space.rademacher(5, torch.Generator().manual_seed(9))
        torch.testing.assert_close((v * hvp(v)).sum(1), torch.einsum("ki,ij,kj->k", v, hessian, v))
    assert set(v.unique().tolist()) == {-1.0, 1.0}
    assert estimate.samples == 300 and estimate.se > 0
    assert abs(estimate.mean - exact) <= 3 * estimate.se
    # the standard error is the sample standard deviation over sqrt(n), computed here the slow way
    samples = []
    generator = torch.Generator().manual_seed(2)
    for _ in range(0, 300, 8):
        vs = surface.space.rademacher(min(8, 300 - len(samples)), generator)
        samples += [float(row @ hessian @ row) for row in vs]
    mean = sum(samples) / len(samples)
    std = math.sqrt(sum((s - mean) ** 2 for s in samples) / (len(samples) - 1))
    assert estimate.mean == pytest.approx(mean, rel=1e-9)
    assert estimate.se == pytest.approx(std / math.sqrt(300), rel=1e-9)


def test_the_gradient_graph_is_gone_after_the_hessian_routine():
    surface, _ = tiny_problem(0)
    with hessian_products(surface.loss, surface.space) as (hvp, gradient):
        assert not gradient.requires_grad
    with pytest.raises(KeyError):
        hvp(torch.ones(surface.space.dim, dtype=torch.float64))


# --- a quadratic: closed forms -------------------------------------------------------------------


def quadratic(seed: int, at_minimum: bool):
    """L(w) = 1/2 (w - w*)^T A (w - w*) over a (3, 4) weight (3 filters), A symmetric positive definite."""
    generator = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(12, 12, generator=generator, dtype=torch.float64))
    a = q @ torch.diag(torch.linspace(0.5, 4.0, 12, dtype=torch.float64)) @ q.T
    w_star = torch.randn(12, generator=generator, dtype=torch.float64)
    start = w_star if at_minimum else w_star + 0.3 * torch.randn(12, generator=generator, dtype=torch.float64)
    weight = nn.Parameter(start.clone().view(3, 4))

    def forward():
        delta = weight.reshape(-1) - w_star
        return 0.5 * delta @ a @ delta, None

    return Surface([weight], forward), a, w_star


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_flatness_radius_equals_its_closed_form_on_a_quadratic(seed):
    surface, a, _ = quadratic(seed, at_minimum=True)
    generator = torch.Generator().manual_seed(seed)
    directions = [surface.space.random_direction(generator) for _ in range(5)]
    expected = [math.sqrt(2 * 0.1 / float(d @ a @ d)) for d in directions]
    result = flatness_radius(surface, directions, rise=0.1)
    assert result.capped == 0
    for got, want in zip(result.per_direction, expected, strict=True):
        assert got == pytest.approx(want, rel=1e-3)
    assert result.radius == pytest.approx(sum(expected) / 5, rel=1e-3)


def test_flatness_radius_is_capped_where_the_loss_never_rises():
    weight = nn.Parameter(torch.ones(2, 2, dtype=torch.float64))
    surface = Surface([weight], lambda: (weight.sum() * 0.0, None))
    with surface.space.kept() as w:
        r, capped, _ = radius_along(surface, w, 0.0, surface.space.random_direction(torch.Generator()),
                                    max_radius=4.0)
    assert (r, capped) == (4.0, True)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("rho", [0.05, 0.2])
def test_sam_sharpness_equals_its_closed_form_on_a_quadratic(seed, rho):
    surface, a, w_star = quadratic(seed, at_minimum=False)
    g = a @ (surface.space.get() - w_star)
    expected = rho * float(g.norm()) + rho ** 2 * float(g @ a @ g) / (2 * float(g @ g))
    assert sam_sharpness(surface, rho) == pytest.approx(expected, rel=1e-10)


def test_sam_sharpness_is_zero_at_a_stationary_point():
    surface, _, _ = quadratic(0, at_minimum=True)
    assert sam_sharpness(surface) == 0.0


def test_profile_and_plane_read_the_loss_where_they_say():
    surface, a, w_star = quadratic(4, at_minimum=False)
    d1, d2 = (surface.space.random_direction(torch.Generator().manual_seed(s)) for s in (1, 2))
    w = surface.space.get()

    def exact(point):
        delta = point - w_star
        return float(0.5 * delta @ a @ delta)

    line = profile(surface, d1, points=5)
    assert line.alphas == pytest.approx([-1, -0.5, 0, 0.5, 1])
    assert line.loss == pytest.approx([exact(w + t * d1) for t in line.alphas], rel=1e-12)
    grid = plane(surface, d1, d2, points=3)
    for i, b in enumerate(grid.alphas):
        for j, t in enumerate(grid.alphas):
            assert grid.loss[i][j] == pytest.approx(exact(w + t * d1 + b * d2), rel=1e-12)
    assert torch.equal(surface.space.get(), w)


# --- filter normalization ------------------------------------------------------------------------


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(16, 3)
        self.scale = nn.Parameter(torch.ones(3))


def test_filter_normalization_filter_by_filter():
    torch.manual_seed(0)
    model = Mixed().double()
    with torch.no_grad():
        model.bn.weight.uniform_(0.5, 2.0)
        model.conv.weight[2] = 0.0  # a dead filter gets no direction
    space = ParamSpace(list(model.parameters()))
    raw = torch.randn(space.dim, dtype=torch.float64)
    d = space.filter_normalize(raw, space.get())
    assert space.n_filters == 4 + 3
    for (name, p), d_part, raw_part in zip(model.named_parameters(), space.split(d), space.split(raw), strict=True):
        p = p.detach()
        if p.ndim < 2:  # biases, the norm layer's weight and bias, a loose vector
            assert torch.equal(d_part, torch.zeros_like(p)), name
            continue
        for f in range(p.shape[0]):
            w_norm = float(p[f].norm())
            assert float(d_part[f].norm()) == pytest.approx(w_norm, rel=1e-12, abs=1e-15), (name, f)
            expected = raw_part[f] * (w_norm / float(raw_part[f].norm()))
            torch.testing.assert_close(d_part[f], expected.detach())
    assert float(space.split(d)[0][2].norm()) == 0.0


def test_random_directions_are_the_same_draw_for_the_same_seed():
    torch.manual_seed(0)
    space = ParamSpace(list(Mixed().parameters()))
    first = space.random_direction(torch.Generator().manual_seed(5))
    again = space.random_direction(torch.Generator().manual_seed(5))
    assert torch.equal(first, again)
    assert not torch.equal(first, space.random_direction(torch.Generator().manual_seed(6)))


# --- the budget ----------------------------------------------------------------------------------


def test_plan_grows_with_the_budget_and_stays_inside_it():
    timing = Timing(forward=0.01, hvp=0.03)
    tight, large = plan_for(timing, 2.5), plan_for(timing, 120)
    assert tight.plane_points == 0 and tight.trace_samples == 5 and 8 < tight.iterations < 20
    assert large.plane_points >= 21 and large.plane_points % 2 == 1 and large.profile_points % 2 == 1
    assert large.trace_samples > 10 and large.iterations == 20
    for budget in (2.5, 5, 30, 60, 120):
        assert estimated_seconds(plan_for(timing, budget), timing) <= 0.85 * budget
    floor = plan_for(timing, 0.01)  # below the smallest plan, the budget is overrun
    assert (floor.iterations, floor.trace_samples, floor.profile_points) == (8, 5, 11)


# --- the command on real runs --------------------------------------------------------------------

RECIPE = {
    "experiment": "lz",
    "dataset": "iris",
    "model": {"name": "mlp", "hidden": [8], "batch_norm": True},
    "losses": ["cross_entropy", {"name": "arcface", "margin": 0.2, "scale": 8.0}],
    "seeds": [0, 1],
    "train": {"epochs": 3, "batch_size": 16, "device": "cpu"},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from losszoo import train

    root = tmp_path_factory.mktemp("runs")
    results = train(RECIPE, runs_dir=root)
    assert [r["status"] for r in results] == ["completed"] * 4
    by = {(r["loss"]["name"], r["seed"]): root / "lz" / r["run_id"] for r in results}
    return root, by


def _states(run):
    return {f"model.{k}": v.clone() for k, v in run.model.state_dict().items()} | {
        f"loss.{k}": v.clone() for k, v in run.loss.state_dict().items()}


@pytest.mark.parametrize("loss", ["cross_entropy", "arcface"])
def test_measuring_a_run_changes_nothing(trained, loss):
    _, by = trained
    run = load_run(by[(loss, 0)], probe=64, device="cpu")
    before = _states(run)
    measured = measure_run(run, Plan(trace_samples=4, profile_points=5, plane_points=3))
    after = _states(run)
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key
    assert not run.model.training and not run.loss.training
    s = measured["summary"]
    assert all(math.isfinite(s[k]) for k in ("loss", "lambda_max", "lambda_min", "trace", "radius", "sam"))
    assert 0.0 <= s["accuracy"] <= 1.0  # arcface: read through its class logits
    assert s["lambda_min"] <= s["lambda_max"]
    assert measured["probe"]["samples"] == 64
    assert len(measured["plane"]["loss"]) == 3 and len(measured["profiles"][0]["loss"]) == 5


def test_the_loss_measured_is_the_runs_training_loss_on_its_probe(trained):
    from losszoo.factory import create_loss

    _, by = trained
    run = load_run(by[("arcface", 0)], probe=32, device="cpu")
    x, y = run.probe
    again = load_run(by[("arcface", 0)], probe=32, device="cpu")
    assert torch.equal(x, again.probe[0])  # the same samples every time
    fresh = create_loss("arcface", margin=0.2, scale=8.0, num_classes=3, embedding_dim=64)
    fresh.load_state_dict(torch.load(by[("arcface", 0)] / "checkpoint.pt", weights_only=True)["loss"])
    with torch.no_grad():
        assert float(run.surface().loss()) == pytest.approx(float(fresh(run.model(x), y)), rel=1e-6)


def test_the_command_measures_writes_and_merges_into_result_json(trained, tmp_path):
    root, by = trained
    folders = [by[("cross_entropy", 0)], by[("cross_entropy", 1)]]
    old = json.loads((folders[0] / "result.json").read_text())
    result = runner.invoke(app, ["landscape", *(str(f) for f in folders), "--budget", "1", "--probe", "64",
                                 "--plot", str(tmp_path / "plots")])
    assert result.exit_code == 0, result.output
    for word in ("λmax", "λmin", "trace", "radius", "SAM", "1-D profile", "seed=0", "seed=1"):
        assert word in result.output
    for folder in folders:
        assert (folder / "landscape.json").is_file() and (folder / "landscape-1d.png").is_file()
    new = json.loads((folders[0] / "result.json").read_text())
    assert {k: v for k, v in new.items() if k != "landscape"} == old
    stored = json.loads((folders[0] / "landscape.json").read_text())
    assert {k: v for k, v in new["landscape"].items() if k in stored["summary"]} == pytest.approx(stored["summary"])
    assert new["landscape"]["negative_share"] is None  # no --top-k: none measured, none left from before
    # what the figures were measured with, for compare to refuse mixing settings
    settings = new["landscape"]["settings"]
    assert settings == stored["settings"]
    assert settings["probe"] == 64 and settings["weights"] == "best"
    assert settings["power_iterations"] == stored["plan"]["iterations"]
    assert settings["hutchinson_samples"] == stored["plan"]["trace_samples"] == stored["trace"]["samples"]
    assert (tmp_path / "plots" / "landscape-1d.png").is_file()

    ranked = runner.invoke(app, ["compare", "lz", "--runs-dir", str(root), "--metric", "landscape.lambda_max",
                                 "--filter", "loss.name=cross_entropy", "--format", "json"])
    assert ranked.exit_code == 0, ranked.output
    rows = json.loads(ranked.stdout)["rows"]  # warnings go to stderr
    assert rows and rows[0]["n"] == 2


def test_a_run_claimed_by_training_is_skipped_and_its_result_left_alone(trained):
    from losszoo.training.claims import try_claim

    _, by = trained
    held, free = by[("cross_entropy", 0)], by[("cross_entropy", 1)]
    before = (held / "result.json").read_bytes()
    claim = try_claim(held)  # as `losszoo train --force` holds a run while it trains it again
    try:
        result = runner.invoke(app, ["landscape", str(held), str(free), "--budget", "1", "--probe", "64"])
    finally:
        claim.release()
    assert result.exit_code == 0, result.output
    assert "is held by" in " ".join(result.output.split()) and "Traceback" not in result.output
    assert (held / "result.json").read_bytes() == before  # no figures merged into a run being retrained
    assert json.loads((free / "result.json").read_text())["landscape"]["settings"]["probe"] == 64


def test_figures_of_weights_a_run_no_longer_has_are_not_stored(trained):
    """`train --force` finishing while a run is measured: the figures are of the old weights, so they are refused
    (the result is completed again, so its status alone cannot tell)."""
    from losszoo.landscape.measure import merge_summary
    from losszoo.landscape.runs import BadRun, load_run
    from losszoo.training.store import write_atomic

    _, by = trained
    folder = by[("cross_entropy", 0)]
    run = load_run(folder, probe=64)
    merge_summary(folder, {"lambda_max": 1.0}, run)  # the same weights: stored
    assert json.loads((folder / "result.json").read_text())["landscape"]["lambda_max"] == 1.0
    write_atomic(folder / "checkpoint.pt", (folder / "checkpoint.pt").read_bytes())  # trained again: a new file
    before = (folder / "result.json").read_bytes()
    with pytest.raises(BadRun, match="trained again while it was measured"):
        merge_summary(folder, {"lambda_max": 2.0}, run)
    assert (folder / "result.json").read_bytes() == before


def test_a_run_id_or_an_experiment_finds_runs(trained):
    root, by = trained
    folder = by[("cross_entropy", 0)]
    result = runner.invoke(app, ["landscape", folder.name, "--runs-dir", str(root), "--budget", "1",
                                 "--probe", "32"])
    assert result.exit_code == 0, result.output
    assert folder.name in result.output


def test_the_line_between_two_runs(trained):
    root, by = trained
    a, b = by[("cross_entropy", 0)], by[("cross_entropy", 1)]
    result = runner.invoke(app, ["landscape", "--between", a.name, b.name, "--runs-dir", str(root),
                                 "--probe", "64"])
    assert result.exit_code == 0, result.output
    assert "barrier" in result.output and "BatchNorm statistics re-estimated" in result.output
    path = json.loads((a / f"between-{b.name}.json").read_text())
    assert len(path["t"]) == 21 and path["t"][0] == 0 and path["t"][-1] == 1
    errors = [1 - acc for acc in path["test_accuracy"]]
    rises = [e - ((1 - t) * errors[0] + t * errors[-1]) for e, t in zip(errors, path["t"], strict=True)]
    assert path["barrier"] == pytest.approx(max(rises))
    assert path["barrier"] >= 0
    for folder, other in ((a, b), (b, a)):
        summary = json.loads((folder / "result.json").read_text())["landscape"]
        assert summary["barrier"] == path["barrier"] and summary["barrier_with"] == other.name


def test_the_line_from_a_run_to_itself_is_flat(trained):
    _, by = trained
    run = load_run(by[("arcface", 0)], probe=32, device="cpu")
    before = _states(run)
    path = interpolate(run, run, points=5)
    assert path["train_loss"] == pytest.approx([path["train_loss"][0]] * 5, rel=1e-6)
    assert path["barrier"] == pytest.approx(0.0, abs=1e-9) and path["loss_barrier"] == pytest.approx(0.0, abs=1e-6)
    for key, value in _states(run).items():
        assert torch.equal(before[key], value), key


def test_barrier_is_the_rise_over_the_interpolated_endpoints():
    assert barrier([0.1, 0.5, 0.3]) == pytest.approx(0.5 - 0.2)
    assert barrier([0.2, 0.1, 0.2]) == pytest.approx(0.0)
    # endpoints apart: the rise is over the straight line between them, not over their mean
    assert barrier([0.0, 0.6, 0.6, 0.9]) == pytest.approx(0.6 - 0.3)
    assert barrier([0.0, 1.0], [0.0, 1.0]) == 0.0
    assert barrier([0.2, 0.9, 0.4], [0.0, 0.25, 1.0]) == pytest.approx(0.9 - (0.75 * 0.2 + 0.25 * 0.4))


@pytest.mark.parametrize(("args", "words"), [
    ([], "give at least one RUN"),
    (["nope"], "no run 'nope'"),
    (["--between", "{ce}", "{arc}"], "same loss"),
])
def test_usage_errors(trained, args, words):
    root, by = trained
    names = {"ce": by[("cross_entropy", 0)].name, "arc": by[("arcface", 0)].name}
    result = runner.invoke(app, ["landscape", *(a.format(**names) for a in args), "--runs-dir", str(root)])
    assert result.exit_code == 2
    assert words in result.output


def test_unfinished_runs_are_refused(trained, tmp_path):
    root, by = trained
    unfinished = root / "lz" / "0123456789ab"
    unfinished.mkdir()
    (unfinished / "config.yaml").write_text("{}\n")
    result = runner.invoke(app, ["landscape", str(unfinished), "--runs-dir", str(root)])
    assert result.exit_code == 2 and "has not finished" in result.output
    failed = tmp_path / "failed"
    failed.mkdir()
    (failed / "result.json").write_text(json.dumps({"run_id": "x", "status": "diverged", "error": "nan at 2"}))
    result = runner.invoke(app, ["landscape", str(failed)])
    assert result.exit_code == 2 and "diverged, not completed" in result.output
    unfinished.rename(tmp_path / "moved")  # leave the shared runs folder as it was


def test_measure_surface_keeps_weights_of_any_surface():
    surface, _, _ = quadratic(0, at_minimum=False)
    before = surface.space.get()
    measure_surface(surface, Plan(trace_samples=4, profile_points=3, plane_points=3))
    assert torch.equal(surface.space.get(), before)


def test_the_cli_module_does_not_import_torch():
    code = "import sys, losszoo.cli.landscape; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
