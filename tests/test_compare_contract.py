"""The contract of issue 10, "Verdicts a researcher can stake a claim on", on
constructed results where the right answer is known: what a row is, what a
block is, ties and folder order, rank 1 against every member, stale inputs,
n = 1, intervals inside the metric's range, unknown names, and the fields
every output carries."""

from __future__ import annotations

import csv
import io
import json
import random

import pytest
from scipy import stats as scipy_stats
from test_compare import grid, result, row_of
from typer.testing import CliRunner

from losszoo.cli.main import app
from losszoo.comparison import stats
from losszoo.comparison.render import marker
from losszoo.comparison.render.text import to_csv, to_json
from losszoo.comparison.table import compare_results

CSV_V1, CSV_V2 = "1" * 64, "2" * 64  # content hashes of one csv before and after an edit
PLUGIN_V1, PLUGIN_V2 = "a" * 64, "b" * 64


def verdict(comparison, column="test.accuracy"):
    """What a reader stakes a claim on, per row: best, rank 1, the adjusted p-value, the block."""
    return {tuple(sorted(r.label.items())): (r.cells[column].best, r.cells[column].rank1, r.cells[column].p_worse,
                                             r.block) for r in comparison.rows if column in r.cells}


def shuffled(results, seed):
    out = list(results)
    random.Random(seed).shuffle(out)
    return out


def store(root, results):
    for r in results:
        folder = root / r["experiment"] / r["run_id"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "result.json").write_text(json.dumps(r))


def invoke(*args):
    return CliRunner().invoke(app, list(args))


# --- 4. ties and folder order --------------------------------------------------------------------


def test_exact_ties_share_best_and_rank_one_whatever_the_order():
    # The same values per seed in both rows; 0.1 + 0.2 + 0.3 != 0.3 + 0.2 + 0.1 in plain float sums.
    results = grid({"a": [0.1, 0.2, 0.3], "b": [0.1, 0.2, 0.3], "c": [0.05, 0.1, 0.2]})
    for seed in range(20):
        comparison = compare_results(shuffled(results, seed))
        cells = {r.label["label"]: r.cells["test.accuracy"] for r in comparison.rows}
        assert cells["a"].best and cells["b"].best and not cells["c"].best, seed
        assert cells["a"].rank1 and cells["b"].rank1, seed
        assert cells["a"].mean == cells["b"].mean


def test_rank_one_does_not_depend_on_folder_order():
    rng = random.Random(3)
    values = {f"loss_{i}": [0.8 + 0.01 * i + rng.gauss(0, 0.01) for _ in range(5)] for i in range(6)}
    results = grid(values)
    reference = verdict(compare_results(results))
    assert 1 < sum(rank1 for _, rank1, _, _ in reference.values()) < 6  # a verdict with both kinds
    for seed in range(10):
        assert verdict(compare_results(shuffled(results, seed))) == reference  # p-values to the last bit


def test_a_row_worse_than_one_rank_one_member_is_out_even_if_not_worse_than_the_best():
    # a: the best mean, but noisy; b: tight, not significantly below a; c: tight, 0.05 below b on every seed,
    # and too close to noisy a for a test against a alone to tell them apart.
    a = [0.99, 0.65, 0.99, 0.70, 0.98, 0.66, 0.97, 0.68, 0.96, 0.75]
    b = [0.80 + 0.001 * (s % 3) for s in range(10)]
    c = [v - 0.05 - 0.0005 * (s % 2) for s, v in enumerate(b)]
    assert scipy_stats.ttest_rel(a, c, alternative="greater").pvalue > 0.05  # c is not worse than the best
    assert scipy_stats.ttest_rel(b, c, alternative="greater").pvalue < 1e-6  # but clearly worse than b
    for seed in range(5):
        comparison = compare_results(shuffled(grid({"a": a, "b": b, "c": c}), seed))
        cells = {r.label["label"]: r.cells["test.accuracy"] for r in comparison.rows}
        assert cells["a"].best and cells["a"].rank1
        assert cells["b"].rank1 and not cells["b"].best
        assert not cells["c"].rank1 and cells["c"].p_worse < 0.05


# --- 1, 2. a row is a configuration; a block is what is held fixed -------------------------------


def test_a_model_sweep_on_one_dataset_is_ranked_in_one_block():
    results = [result("cross_entropy", s, v, model_params={"hidden": [32]})
               for s, v in enumerate([0.70, 0.71, 0.72])]
    results += [result("cross_entropy", s, v, model_params={"hidden": [256]})
                for s, v in enumerate([0.90, 0.91, 0.93])]
    comparison = compare_results(results)
    assert [r.label["model"] for r in comparison.rows] == ["mlp(hidden=[32])", "mlp(hidden=[256])"]
    assert len({r.block for r in comparison.rows}) == 1
    small, large = (r.cells["test.accuracy"] for r in comparison.rows)
    assert large.best and large.rank1
    assert not small.rank1  # clearly worse, in the same block
    assert any("dataset configuration" in line for line in comparison.legend())


def test_two_batch_sizes_are_two_rows_ranked_against_each_other():
    results = [result("cross_entropy", s, v, train={"batch_size": 32}) for s, v in enumerate([0.90, 0.91, 0.92])]
    results += [result("cross_entropy", s, v, train={"batch_size": 512}) for s, v in enumerate([0.8, 0.81, 0.82])]
    comparison = compare_results(results)
    assert sorted(r.label["train"] for r in comparison.rows) == ["batch_size=32", "batch_size=512"]
    assert len({r.block for r in comparison.rows}) == 1
    assert [r.cells["test.accuracy"].rank1 for r in comparison.rows] == [True, False]


def noisy_digits():
    """cross_entropy and focal on digits at two noise rates, 3 seeds each."""
    out = []
    for noise, base in ((0.0, 0.95), (0.4, 0.70)):
        for i, label in enumerate(("cross_entropy", "focal(g=2)")):
            out += [result(label, s, base - 0.02 * i + 0.005 * s, dataset="digits", position=i,
                           dataset_params={"label_noise": noise}) for s in range(3)]
    return out


def test_two_noise_rates_are_two_rows_in_two_blocks():
    comparison = compare_results(noisy_digits())
    labels = [(r.label["dataset"], r.label["label"]) for r in comparison.rows]
    assert labels == [("digits(label_noise=0)", "cross_entropy"), ("digits(label_noise=0)", "focal(g=2)"),
                      ("digits(label_noise=0.4)", "cross_entropy"), ("digits(label_noise=0.4)", "focal(g=2)")]
    assert len(labels) == len(set(labels))  # labels are unique
    assert len({r.block for r in comparison.rows}) == 2  # each noise rate is ranked on its own
    # the best of each block: cross_entropy at both noise rates (not the noise-free rows only)
    assert [r.cells["test.accuracy"].best for r in comparison.rows] == [True, False, True, False]
    assert all(r.cells["test.accuracy"].n == 3 and not r.pooled for r in comparison.rows)
    assert not any("pool" in w for w in comparison.warnings)


def test_group_by_pools_the_noise_rates_and_says_so():
    comparison = compare_results(noisy_digits(), group_by=["dataset.name", "label"])
    assert [(r.label["dataset.name"], r.label["label"]) for r in comparison.rows] == [
        ("digits", "cross_entropy"), ("digits", "focal(g=2)")]
    assert [r.cells["test.accuracy"].n for r in comparison.rows] == [6, 6]
    assert all(r.pooled == ["dataset.label_noise"] for r in comparison.rows)
    said = "--group-by pools runs that differ in dataset.label_noise into one row"
    assert said in comparison.warnings and said in comparison.legend()
    assert all(record["pooled"] == "dataset.label_noise" for record in comparison.records())


def test_group_by_pooling_is_said_by_the_cli(tmp_path):
    store(tmp_path, noisy_digits())
    table = invoke("compare", "--runs-dir", str(tmp_path), "--group-by", "dataset.name,label")
    assert table.exit_code == 0, table.output
    assert "pools runs that differ in dataset.label_noise" in table.stdout  # the table's legend
    assert "pools runs that differ in dataset.label_noise" in table.stderr  # and the warning
    markdown = invoke("compare", "--runs-dir", str(tmp_path), "--group-by", "dataset.name,label", "--format", "md")
    assert "pools runs that differ in dataset.label\\_noise" in markdown.stdout


def csv_results(versions):
    """The same recipe on a user's csv, trained once per content hash in ``versions``."""
    out = []
    for v, digest in enumerate(versions):
        for i, label in enumerate(("cross_entropy", "focal(g=2)")):
            out += [result(label, s, 0.9 - 0.1 * v - 0.01 * i + 0.002 * s, dataset="csv", position=i,
                           dataset_params={"path": "/data/iris.csv", "target": "species"},
                           inputs={"dataset.path": digest}) for s in range(3)]
    return out


def test_a_users_file_is_named_in_the_dataset_label():
    comparison = compare_results(csv_results([CSV_V1]))
    assert {r.label["dataset"] for r in comparison.rows} == {"csv(iris.csv)"}
    assert not comparison.warnings


def test_a_stale_csv_makes_separate_rows_and_a_warning():
    comparison = compare_results(csv_results([CSV_V1, CSV_V2]))
    assert len(comparison.rows) == 4
    labels = [tuple(sorted(r.label.items())) for r in comparison.rows]
    assert len(set(labels)) == 4  # the labels tell the versions apart
    assert any(CSV_V1[:10] in " ".join(r.label.values()) for r in comparison.rows)
    assert len({r.block for r in comparison.rows}) == 2  # different data: never ranked against each other
    assert any("2 versions of dataset.path" in w for w in comparison.warnings), comparison.warnings


def test_a_stale_plugin_makes_separate_rows_and_a_warning():
    results = [result("my_loss", s, 0.9 + 0.001 * s, inputs={"loss.my_loss": PLUGIN_V1}) for s in range(3)]
    results += [result("my_loss", s, 0.8 + 0.001 * s, inputs={"loss.my_loss": PLUGIN_V2}) for s in range(3)]
    comparison = compare_results(results)
    assert len(comparison.rows) == 2
    assert len({tuple(sorted(r.label.items())) for r in comparison.rows}) == 2
    assert len({r.block for r in comparison.rows}) == 1  # the same data: the two versions are ranked
    assert any("2 versions of loss.my_loss" in w for w in comparison.warnings), comparison.warnings


def test_the_stale_plugin_warning_reaches_the_cli(tmp_path):
    store(tmp_path, [result("my_loss", s, 0.9, inputs={"loss.my_loss": d}) for d in (PLUGIN_V1, PLUGIN_V2)
                     for s in range(3)])
    outcome = invoke("compare", "--runs-dir", str(tmp_path), "--format", "csv")
    assert outcome.exit_code == 0, outcome.output
    assert "versions of loss.my_loss" in outcome.stderr
    assert len(list(csv.DictReader(io.StringIO(outcome.stdout)))) == 2


# --- 10. n = 1 and the metric's range ------------------------------------------------------------


def test_a_single_run_has_no_spread_and_is_marked_untestable():
    results = grid({"a": [0.9, 0.91, 0.92]}) + [result("b", 0, 0.95, position=1)]
    comparison = compare_results(results)
    cell = row_of(comparison, "b").cells["test.accuracy"]
    assert (cell.n, cell.testable, cell.ci) == (1, False, None)
    assert marker(cell) == "*?"  # the best mean, but a single run
    assert marker(row_of(comparison, "a").cells["test.accuracy"]) == "+"
    records = {r["label"]: r for r in json.loads(to_json(comparison))["rows"]}
    assert records["b"]["testable"] is False and records["b"]["std"] is None
    assert records["b"]["ci95_low"] is None and records["b"]["ci95_high"] is None
    assert records["a"]["testable"] is True
    rows = {r["label"]: r for r in csv.DictReader(io.StringIO(to_csv(comparison)))}
    assert (rows["b"]["testable"], rows["b"]["std"], rows["b"]["ci95_low"]) == ("False", "", "")


def test_a_single_run_in_the_terminal_shows_no_spread(tmp_path):
    store(tmp_path, grid({"a": [0.9, 0.91, 0.92]}) + [result("b", 0, 0.85, position=1)])
    outcome = invoke("compare", "--runs-dir", str(tmp_path))
    assert outcome.exit_code == 0, outcome.output
    line = next(line for line in outcome.stdout.splitlines() if "│ b " in line)
    assert "0.8500 ?" in line and "±" not in line


def test_the_interval_of_ece_near_zero_stays_at_or_above_zero():
    values = [0.001, 0.002, 0.030]
    comparison = compare_results(grid({"a": values}, metric="ece"))
    cell = comparison.rows[0].cells["test.ece"]
    half = scipy_stats.t.ppf(0.975, 2) * scipy_stats.tstd(values) / 3 ** 0.5
    assert cell.mean - half < 0  # the t interval would leave the range
    assert cell.ci == pytest.approx((0.0, cell.mean + half))
    assert cell.ci[0] == 0.0


def test_the_interval_of_accuracy_near_one_stays_at_or_below_one():
    cell = compare_results(grid({"a": [0.999, 1.0, 0.95]})).rows[0].cells["test.accuracy"]
    assert cell.ci[1] == 1.0 and cell.ci[0] < cell.mean


# --- 7. unknown names ----------------------------------------------------------------------------


@pytest.mark.parametrize(("option", "value", "suggestion"), [
    ("--metric", "accurcy", "'accuracy'"),
    ("--metric", "test.acuracy", "'test.accuracy'"),
    ("--group-by", "los.name", "'loss.name'"),
    ("--sort", "accurcy", "'accuracy'"),
    ("--filter", "los.name=focal", "'loss.name'"),
    ("--block-by", "datset.name", "'dataset.name'"),
])
def test_unknown_names_exit_2_with_a_did_you_mean(tmp_path, option, value, suggestion):
    store(tmp_path, grid({"a": [0.9, 0.91, 0.92], "focal": [0.8, 0.81, 0.82]}))
    outcome = invoke("compare", "--runs-dir", str(tmp_path), option, value)
    assert outcome.exit_code == 2, outcome.output
    assert option in outcome.output and "did you mean" in outcome.output and suggestion in outcome.output
    assert "Traceback" not in outcome.output


def test_block_by_changes_the_block(tmp_path):
    # two noise rates ranked against each other when only the dataset's name is held fixed: the best of the
    # noisy block is no longer best, nor rank 1
    assert compare_results(noisy_digits()).rows[2].cells["test.accuracy"].best
    comparison = compare_results(noisy_digits(), block_by=["dataset.name"])
    assert len({r.block for r in comparison.rows}) == 1
    assert [r.cells["test.accuracy"].best for r in comparison.rows] == [True, False, False, False]
    assert [r.cells["test.accuracy"].rank1 for r in comparison.rows] == [True, False, False, False]
    assert any("blocks of the same dataset.name" in line for line in comparison.legend())


def test_baseline_needs_several_datasets(tmp_path):
    store(tmp_path, grid({"a": [0.9, 0.91, 0.92], "b": [0.8, 0.81, 0.82]}))
    outcome = invoke("compare", "--runs-dir", str(tmp_path), "--baseline", "a")
    assert outcome.exit_code == 2 and "--baseline" in outcome.output and "one dataset" in outcome.output


# --- 5. across datasets --------------------------------------------------------------------------


def across_results(datasets=("iris", "wine", "digits", "breast_cancer"), losses=("a", "b", "c")):
    rng = random.Random(0)
    return [result(loss, s, 0.9 - 0.05 * i + rng.gauss(0, 0.01), dataset=d, position=i)
            for d in datasets for i, loss in enumerate(losses) for s in range(3)]


def test_across_datasets_iqm_improvement_and_critical_difference(tmp_path):
    comparison = compare_results(across_results(), baseline="c")
    (across,) = comparison.across
    assert across.methods == ["a", "b", "c"] and across.datasets == ["breast_cancer", "digits", "iris", "wine"]
    assert across.average_rank == [1.0, 2.0, 3.0]
    assert all(low <= iqm <= high for iqm, (low, high) in zip(across.iqm, across.iqm_ci, strict=True))
    assert [p for p, _, _ in across.improvement] == [1.0, 1.0, 0.5]
    data = json.loads(to_json(comparison))["across_datasets"][0]
    assert data["baseline"] == "c" and [m["method"] for m in data["methods"]] == ["a", "b", "c"]
    for field in ("iqm", "iqm_ci95_low", "iqm_ci95_high", "average_rank", "probability_of_improvement"):
        assert field in data["methods"][0]
    store(tmp_path / "runs", across_results())
    plot = tmp_path / "out.png"
    outcome = invoke("compare", "--runs-dir", str(tmp_path / "runs"), "--baseline", "c", "--plot", str(plot))
    assert outcome.exit_code == 0, outcome.output
    assert "IQM" in outcome.stdout and "P(better than c)" in outcome.stdout
    assert "|---" not in outcome.stdout and "\\[" not in outcome.stdout  # a table drawn, not markdown source
    cd = tmp_path / "out-cd.png"
    assert plot.stat().st_size > 10_000 and cd.stat().st_size > 5_000


def test_p_worse_of_rank_groups_equals_the_holm_adjusted_family():
    per_row = [{s: 0.9 + 0.01 * s for s in range(4)}, {s: 0.85 + 0.012 * s for s in range(4)}]
    _, rank1, p_values = stats.rank_groups(per_row, True)
    raw = scipy_stats.ttest_rel([0.85 + 0.012 * s for s in range(4)], [0.9 + 0.01 * s for s in range(4)],
                                alternative="less").pvalue
    assert p_values[1] == pytest.approx(min(1.0, 2 * raw))  # two ordered pairs in the family
    assert rank1 == [True, False]


# --- landscape figures measured differently ------------------------------------------------------


def with_landscape(r, **landscape):
    return {**r, "landscape": landscape}


def test_landscape_figures_measured_with_different_settings_are_not_ranked():
    runs = grid({"a": [0.9, 0.91, 0.92], "b": [0.8, 0.81, 0.82]})
    mixed = [with_landscape(r, lambda_max=1.0 + i, settings={"probe": 256 if i % 2 else 512})
             for i, r in enumerate(runs)]
    with pytest.raises(Exception, match="measured with different settings"):
        compare_results(mixed, ["landscape.lambda_max"])
    same = [with_landscape(r, lambda_max=1.0 + i, settings={"probe": 512}) for i, r in enumerate(runs)]
    assert "landscape.lambda_max" in compare_results(same, ["landscape.lambda_max"]).columns


def test_barriers_are_checked_against_their_own_settings():
    runs = grid({"a": [0.9, 0.91, 0.92], "b": [0.8, 0.81, 0.82]})
    # the single-run settings differ (another --probe) but every barrier was measured alike: comparable
    alike = [with_landscape(r, barrier=0.1 * i, settings={"probe": 256 + i}, barrier_settings={"points": 25})
             for i, r in enumerate(runs)]
    assert "landscape.barrier" in compare_results(alike, ["landscape.barrier"]).columns
    unlike = [with_landscape(r, barrier=0.1 * i, settings={"probe": 256}, barrier_settings={"points": 25 + i % 2})
              for i, r in enumerate(runs)]
    with pytest.raises(Exception, match="measured with different settings"):
        compare_results(unlike, ["landscape.barrier"])
