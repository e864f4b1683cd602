"""Learning curves, sparklines and the ``--plot`` PNG of ``losszoo compare``.

Expected sparklines are spelled out by hand from the block scale (8 equal-width
levels from the lowest to the highest value); expected curve averages come
from the ``statistics`` module or from values chosen to be exact in binary.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import struct

import pytest

from losszoo.comparison.across import across_datasets
from losszoo.comparison.curves import (
    BLOCKS,
    average_curves,
    curve_metric,
    read_curve,
    row_curve,
    row_sparkline,
    sparkline,
)
from losszoo.comparison.plot import plot_comparison, plot_critical_difference
from losszoo.comparison.table import compare_results
from losszoo.errors import LosszooError
from losszoo.spec import configuration_id
from losszoo.training.store import iter_results

NAN = float("nan")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# A small run store, laid out as the runner writes it ------------------------------------------------------


def write_run(root, run_id, *, dataset="digits", label="focal(g=2)", seed=0, status="completed",
              curve=(), test_accuracy=0.9, extra_lines=()):
    folder = root / "exp" / run_id
    folder.mkdir(parents=True)
    lines = [json.dumps({"epoch": epoch, "lr": 0.01, "train_loss": 1.0 / epoch, "val": {"accuracy": value}})
             for epoch, value in enumerate(curve, start=1)]
    if curve or extra_lines:
        (folder / "metrics.jsonl").write_text("\n".join([*lines, *extra_lines]) + "\n")
    name, _, inside = label.partition("(")
    loss = {"name": name, **{k: float(v) for k, v in (p.split("=") for p in inside.rstrip(")").split(",") if p)}}
    config = {"experiment": "exp", "dataset": {"name": dataset}, "model": {"name": "mlp"}, "loss": loss,
              "seed": seed, "train": {"epochs": 4}, "metrics": ["accuracy"], "select_by": "val.accuracy",
              "inputs": {}}
    result = {  # as losszoo.training.runner.make_result writes it
        "run_id": run_id, "experiment": "exp", "status": status, "dataset": dataset, "model": "mlp",
        "loss": loss, "label": label, "seed": seed, "config_hash": run_id,
        "configuration_id": configuration_id(config), "higher_is_better": {"accuracy": True},
        "metrics": {"val": {"accuracy": test_accuracy}, "test": {"accuracy": test_accuracy}} if status == "completed"
        else {"val": {}},
        "best_epoch": len(curve), "epochs_run": len(curve), "error": None, "provenance": {}, "config": config,
    }
    (folder / "result.json").write_text(json.dumps(result, indent=2))


def only_row(root):
    results, _ = iter_results(root)
    comparison = compare_results(results)
    assert len(comparison.rows) == 1
    return comparison.rows[0]


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# sparkline ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("values", "expected"), [
    ([0, 1, 2, 3, 4, 5, 6, 7], "▁▂▃▄▅▆▇█"),
    ([7, 6, 5, 4, 3, 2, 1, 0], "█▇▆▅▄▃▂▁"),
    ([10.0, 10.5, 11.0], "▁▅█"),  # the midpoint is level 4 of 0..7
    ([-3.0, -1.0], "▁█"),
    ([0.25, 0.5, 0.75, 1.0], "▁▃▆█"),  # 0, 8/3, 16/3, 8 -> levels 0, 2, 5, 7
    ([0.0, 0.1, 0.9, 1.0], "▁▁██"),  # each level is an eighth of the range: 0.8 -> 0, 7.2 -> 7
])
def test_sparkline_maps_values_onto_eight_levels(values, expected):
    assert sparkline(values) == expected


def test_sparkline_of_a_constant_series_is_a_flat_line():
    assert sparkline([0.5] * 5) == "▄▄▄▄▄"
    assert sparkline([2.0]) == "▄"
    assert sparkline([1.0, NAN, 1.0]) == "▄ ▄"


def test_sparkline_draws_nan_and_missing_values_as_spaces():
    assert sparkline([1.0, NAN, None, 3.0]) == "▁  █"
    assert sparkline([math.inf, 0.0, 1.0]) == "!▁█"  # an infinite value: off the scale (losszoo.sparkline)
    assert sparkline([NAN, NAN]) == "  "
    assert sparkline([]) == ""


def test_sparkline_squeezes_long_series_by_averaging_neighbours():
    doubled = [v for v in range(8) for _ in range(2)]  # 0, 0, 1, 1, ... 7, 7
    assert sparkline(doubled, width=8) == "▁▂▃▄▅▆▇█"
    assert sparkline([0.0, NAN, 7.0, 7.0], width=2) == "▁█"  # a bucket averages its finite values
    assert sparkline([NAN, NAN, 1.0, 2.0], width=2) == " ▄"  # an all-NaN bucket is a space
    assert len(sparkline(list(range(100)))) == 12
    assert len(sparkline(list(range(5)), width=12)) == 5  # short series are not stretched


def test_sparkline_rejects_a_width_below_one():
    with pytest.raises(ValueError, match="width"):
        sparkline([1.0, 2.0], width=0)


def test_sparkline_uses_only_the_eight_blocks_and_spaces():
    rng = random.Random(0)
    values = [rng.gauss(0, 1) if rng.random() > 0.1 else NAN for _ in range(40)]
    line = sparkline(values, width=40)
    assert set(line) <= set(BLOCKS) | {" "}
    finite = [v for v in values if not math.isnan(v)]
    assert line[values.index(min(finite))] == "▁" and line[values.index(max(finite))] == "█"


# Curves ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("column", "logged"), [
    ("test.accuracy", "accuracy"), ("val.macro_f1", "macro_f1"), ("nll", "nll"), ("train_loss", "train_loss"),
])
def test_curve_metric_reads_the_validation_metric_logged_per_epoch(column, logged):
    assert curve_metric(column) == logged


def test_average_curves_aligns_epochs_of_runs_of_different_lengths():
    # values exact in binary, so the expected means and stds are exact too
    curve = average_curves([
        {1: 0.25, 2: 0.5, 3: 0.75, 4: 1.0},
        {1: 0.75, 2: 1.0, 3: 1.25},
        {1: 0.5},
    ])
    assert curve.epochs == [1, 2, 3, 4]
    assert curve.n == [3, 2, 2, 1]
    assert curve.mean == [0.5, 0.75, 1.0, 1.0]
    assert curve.std == pytest.approx([0.25, math.sqrt(0.125), math.sqrt(0.125), 0.0], rel=1e-15)


def test_average_curves_matches_statistics_on_random_runs():
    rng = random.Random(1)
    runs = [{e: rng.random() for e in range(1, rng.randint(3, 12))} for _ in range(6)]
    curve = average_curves(runs)
    for epoch, mean, std, n in zip(curve.epochs, curve.mean, curve.std, curve.n, strict=True):
        values = [run[epoch] for run in runs if epoch in run]
        assert n == len(values)
        assert mean == pytest.approx(statistics.fmean(values), rel=1e-12)
        assert std == pytest.approx(statistics.stdev(values) if n > 1 else 0.0, rel=1e-12, abs=1e-15)


def test_read_curve_skips_broken_lines_and_non_finite_values(tmp_path):
    write_run(tmp_path, "r0", curve=[0.25, NAN, 0.75], extra_lines=['{"epoch": 4, "val": {"accur'])
    assert read_curve(tmp_path / "exp" / "r0", "test.accuracy") == {1: 0.25, 3: 0.75}
    assert read_curve(tmp_path / "exp" / "r0", "train_loss") == {1: 1.0, 2: 0.5, 3: 1.0 / 3}
    assert read_curve(tmp_path / "exp" / "r0", "val.nll") == {}
    assert read_curve(tmp_path / "missing", "accuracy") == {}


def test_row_curve_averages_the_completed_seeds_of_a_row(tmp_path):
    write_run(tmp_path, "r0", seed=0, curve=[0.25, 0.5, 0.75, 1.0])
    write_run(tmp_path, "r1", seed=1, curve=[0.75, 1.0, 1.25])  # stopped early
    write_run(tmp_path, "r2", seed=2, curve=[0.5, NAN])  # a NaN epoch counts as missing
    write_run(tmp_path, "r3", seed=3, status="diverged", curve=[100.0, 100.0])  # left out, as in the table
    row = only_row(tmp_path)
    curve = row_curve(row, tmp_path, "test.accuracy")
    assert (curve.metric, curve.epochs, curve.n, curve.mean) == ("accuracy", [1, 2, 3, 4], [3, 2, 2, 1],
                                                                 [0.5, 0.75, 1.0, 1.0])
    # levels: (mean - 0.5) / 0.5 * 8 -> 0, 4, 8 (top), 8 (top)
    assert row_sparkline(row, tmp_path, "test.accuracy") == "▁▅██"


def test_row_sparkline_is_empty_without_metrics_jsonl(tmp_path):
    write_run(tmp_path, "r0", curve=())
    assert row_sparkline(only_row(tmp_path), tmp_path, "test.accuracy") == ""


# plot_comparison ---------------------------------------------------------------------------------------------


def small_store(root, datasets=("digits",), losses=("cross_entropy", "focal(g=2)", "arcface(m=0.5,s=30)")):
    rng = random.Random(0)
    for d, dataset in enumerate(datasets):
        for i, label in enumerate(losses):
            for seed in range(3):
                epochs = 8 if seed < 2 else 6
                curve = [(0.5 + 0.05 * i) * (1 - math.exp(-e / 2)) + rng.gauss(0, 0.01) for e in range(1, epochs + 1)]
                write_run(root, f"{d}{i}{seed}", dataset=dataset, label=label, seed=seed, curve=curve,
                          test_accuracy=0.5 + 0.05 * i + rng.gauss(0, 0.01))


def test_plot_comparison_writes_one_png_with_a_row_per_dataset(tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    runs = tmp_path / "runs"
    small_store(runs, datasets=("digits", "fashion_mnist"))
    comparison = compare_results(iter_results(runs)[0])
    path = plot_comparison(comparison, runs, tmp_path / "out" / "compare.png")
    assert path == tmp_path / "out" / "compare.png"
    assert png_size(path) == (1600, 2 * 700)
    assert path.stat().st_size > 30_000  # two rows of curves and bars, not a blank canvas
    assert matplotlib.get_backend() == backend  # the caller's pyplot backend is left alone


def test_plot_comparison_draws_without_metrics_jsonl(tmp_path):
    runs = tmp_path / "runs"
    for seed in range(2):
        write_run(runs, f"a{seed}", label="focal(g=2)", seed=seed, test_accuracy=0.8 + 0.01 * seed)
        write_run(runs, f"b{seed}", label="cross_entropy", seed=seed, test_accuracy=0.7 + 0.01 * seed)
    comparison = compare_results(iter_results(runs)[0])
    path = plot_comparison(comparison, runs, tmp_path / "bars.png")
    assert png_size(path) == (1600, 700)
    assert path.stat().st_size > 10_000


def test_user_text_with_dollar_signs_is_drawn_literally(tmp_path):
    """A label or a file named ``$100_$200`` is text, not a formula: mathtext would fail the whole figure
    (``_$200`` does not parse) or change what it says. Across datasets too: the CD diagram names the losses."""
    from typer.testing import CliRunner

    from losszoo.cli.main import app

    runs = tmp_path / "runs"
    small_store(runs, datasets=("$100_$200", "iris", "wine"), losses=("cross_entropy", "$x^2_$loss"))
    out = tmp_path / "plot.png"
    result = CliRunner().invoke(app, ["compare", "--runs-dir", str(runs), "--format", "csv", "--plot", str(out)])
    assert result.exit_code == 0, result.output
    assert png_size(out) == (1600, 3 * 700) and (tmp_path / "plot-cd.png").exists()


def test_plot_comparison_refuses_a_metric_no_run_has(tmp_path):
    runs = tmp_path / "runs"
    small_store(runs)
    comparison = compare_results(iter_results(runs)[0])
    with pytest.raises(LosszooError, match="test.map_at_r"):
        plot_comparison(comparison, runs, tmp_path / "x.png", metric="map_at_r")
    assert not (tmp_path / "x.png").exists()


def test_compare_cli_writes_the_plot(tmp_path):
    from typer.testing import CliRunner

    from losszoo.cli.main import app

    runs = tmp_path / "runs"
    small_store(runs)
    out = tmp_path / "plot.png"
    result = CliRunner().invoke(app, ["compare", "--runs-dir", str(runs), "--format", "csv", "--plot", str(out)])
    assert result.exit_code == 0, result.output
    assert png_size(out) == (1600, 700)


def test_compare_cli_writes_the_critical_difference_diagram_across_datasets(tmp_path):
    from typer.testing import CliRunner

    from losszoo.cli.main import app

    runs = tmp_path / "runs"
    small_store(runs, datasets=("digits", "fashion_mnist", "iris"))
    out = tmp_path / "plot.png"
    result = CliRunner().invoke(app, ["compare", "--runs-dir", str(runs), "--format", "csv", "--plot", str(out)])
    assert result.exit_code == 0, result.output
    assert png_size(out) == (1600, 3 * 700)
    cd = tmp_path / "plot-cd.png"
    width, height = png_size(cd)
    assert (width, height) == (1000, int(100 * (1.6 + 0.35 * 3)))
    assert cd.stat().st_size > 10_000  # ranks, names and the CD bar, not a blank canvas
    assert str(cd) in result.stderr


@pytest.mark.parametrize("k", [2, 5, 12])
def test_plot_critical_difference_draws_any_number_of_methods(tmp_path, k):
    rng = random.Random(k)
    methods = [f"loss_{i}" for i in range(k)]
    scores = [[[0.5 + 0.02 * i + rng.gauss(0, 0.03) for _ in range(3)] for _ in range(6)] for i in range(k)]
    across = across_datasets("test.accuracy", methods, [f"d{j}" for j in range(6)], scores, True)
    path = plot_critical_difference(across, tmp_path / f"cd{k}.png")
    assert png_size(path)[0] == 1000
    assert path.stat().st_size > 5_000
