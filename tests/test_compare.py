"""The statistics of `losszoo compare` on hand-made results, checked against
scipy and hand computations: mean/std/CI, Holm, rank-1 groups, labels,
sample-size and seed warnings, and the Friedman note across datasets.

``result()`` builds a result.json the way ``losszoo.training.runner.make_result``
writes it (configuration id, directions, provenance, the resolved config with
its ``inputs``); the other ``test_compare_*`` files import it from here.
"""

import math
import re

import numpy as np
import pytest
from scipy import stats as scipy_stats

from losszoo import LosszooError
from losszoo.comparison import stats
from losszoo.comparison.table import compare_results, lookup
from losszoo.registry import METRICS
from losszoo.spec import configuration_id


def _params(label: str) -> dict:
    """``focal(g=2,a=0.5)`` -> ``{"g": 2.0, "a": 0.5}``: what a loss label says was set."""
    inside = label.partition("(")[2].rstrip(")")
    return {k: float(v) for k, v in (p.split("=") for p in inside.split(",") if "=" in p)}


def result(label: str, seed: int, value: float | dict, dataset: str = "iris", metric: str = "accuracy",
           epochs: int = 10, status: str = "completed", experiment: str = "exp", model: str = "mlp",
           dataset_params: dict | None = None, model_params: dict | None = None, train: dict | None = None,
           inputs: dict | None = None, position: int = 0) -> dict:
    """One result.json as the runner writes it. ``value`` is the test (and val) value of ``metric``, or a
    dict of several metrics."""
    name = label.split("(")[0]
    metrics = value if isinstance(value, dict) else {metric: value}
    config = {
        "experiment": experiment,
        "dataset": {"name": dataset, "test_fraction": 0.2, **(dataset_params or {})},
        "model": {"name": model, **(model_params or {})},
        "loss": {"name": name, **_params(label)},
        "seed": seed,
        "train": {"epochs": epochs, "batch_size": 32, "device": "cpu", **(train or {})},
        "metrics": list(metrics),
        "select_by": f"val.{next(iter(metrics))}",
        "inputs": dict(inputs or {}),
        "plugins": [],
    }
    run_id = configuration_id({**config, "seed": None}) + f"-{seed}"
    return {
        "run_id": run_id, "experiment": experiment, "status": status, "dataset": dataset, "model": model,
        "loss": config["loss"], "label": label, "seed": seed, "config_hash": run_id,
        "configuration_id": configuration_id(config),
        "metrics": {"val": dict(metrics), "test": dict(metrics)} if status == "completed" else {"val": {}},
        "higher_is_better": {m: bool(METRICS.get(m).higher_is_better) for m in metrics if m in METRICS},
        "best_epoch": epochs, "epochs_run": epochs, "train_seconds": 1.0, "samples_per_second": 10,
        "n_parameters": 1, "versions": {}, "provenance": {"device": "cpu", "retrieval_layer": None},
        "error": None if status == "completed" else "non-finite loss", "position": position, "config": config,
    }


def grid(values: dict[str, list[float]], **kw) -> list[dict]:
    return [result(label, seed, v, position=i, **kw)
            for i, (label, vs) in enumerate(values.items()) for seed, v in enumerate(vs)]


def row_of(comparison, label: str):
    return next(r for r in comparison.rows if r.label.get("label") == label)


# --- mean, std, interval -------------------------------------------------------------------------


@pytest.mark.parametrize("values", [[0.9, 0.92, 0.94], [1.0, 2.0, 4.0, 8.0, 16.0], [0.5, 0.5]])
def test_mean_std_against_numpy(values):
    mean, std = stats.mean_std(values)
    assert mean == pytest.approx(np.mean(values))
    assert std == pytest.approx(np.std(values, ddof=1))


def test_mean_does_not_depend_on_the_order_of_the_values():
    # 0.1 + 0.2 + 0.3 and 0.3 + 0.2 + 0.1 differ in the last bit in plain float sums
    assert stats.mean_std([0.1, 0.2, 0.3]) == stats.mean_std([0.3, 0.2, 0.1])


def test_single_value_has_zero_std_and_no_interval():
    assert stats.mean_std([0.7]) == (0.7, 0.0)
    assert math.isnan(stats.ci_halfwidth(0.0, 1))


@pytest.mark.parametrize("values", [[0.9, 0.92, 0.94], [3.0, 1.0, 4.0, 1.0, 5.0, 9.0]])
def test_t_interval_against_scipy(values):
    mean, std = stats.mean_std(values)
    half = stats.ci_halfwidth(std, len(values))
    low, high = scipy_stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=scipy_stats.sem(values))
    assert mean - half == pytest.approx(low)
    assert mean + half == pytest.approx(high)


def test_cells_hold_mean_std_n_and_interval():
    comparison = compare_results(grid({"cross_entropy": [0.9, 0.92, 0.94]}))
    cell = row_of(comparison, "cross_entropy").cells["test.accuracy"]
    assert cell.n == 3 and cell.testable
    assert cell.mean == pytest.approx(0.92)
    assert cell.std == pytest.approx(0.02)
    half = scipy_stats.t.ppf(0.975, 2) * 0.02 / math.sqrt(3)
    assert cell.ci == pytest.approx((0.92 - half, 0.92 + half))
    assert cell.values == {0: 0.9, 1: 0.92, 2: 0.94}


# --- Holm ----------------------------------------------------------------------------------------


def test_holm_against_a_hand_computed_example():
    # sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> kept monotone at 0.06)
    adjusted = stats.holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_keeps_nan():
    adjusted = stats.holm([0.6, float("nan"), 0.2])
    assert math.isnan(adjusted[1])
    # two testable values: 0.2 x2 = 0.4, then 0.6 x1 = 0.6
    assert adjusted[0] == pytest.approx(0.6) and adjusted[2] == pytest.approx(0.4)
    assert stats.holm([0.9, 0.8]) == [1.0, 1.0]


def test_paired_p_value_against_scipy():
    best = {0: 0.90, 1: 0.92, 2: 0.95, 3: 0.91, 4: 0.93}
    other = {0: 0.88, 1: 0.91, 2: 0.90, 3: 0.90, 4: 0.92}
    expected = scipy_stats.ttest_rel([best[s] for s in range(5)], [other[s] for s in range(5)],
                                     alternative="greater").pvalue
    assert stats.p_worse(best, other, higher_is_better=True) == pytest.approx(expected)
    # Lower is better: the same numbers read the other way round.
    assert stats.p_worse(other, best, higher_is_better=False) == pytest.approx(expected)


def test_unpaired_p_value_is_welch():
    best = {0: 0.90, 1: 0.92, 2: 0.95}
    other = {3: 0.88, 4: 0.91, 5: 0.86, 6: 0.87}
    expected = scipy_stats.ttest_ind(list(best.values()), list(other.values()), equal_var=False,
                                     alternative="greater").pvalue
    assert stats.p_worse(best, other, higher_is_better=True) == pytest.approx(expected)


# --- rank-1 groups -------------------------------------------------------------------------------


def test_clearly_worse_loss_leaves_rank_one_and_an_equal_one_stays():
    seeds_best = [0.90, 0.92, 0.95, 0.91, 0.93]
    comparison = compare_results(grid({
        "cross_entropy": seeds_best,
        "focal": [0.905, 0.915, 0.951, 0.912, 0.925],  # indistinguishable
        "mse_on_logits": [v - 0.05 + 0.002 * i for i, v in enumerate(seeds_best)],  # worse on every seed
    }))
    cells = {r.label["label"]: r.cells["test.accuracy"] for r in comparison.rows}
    assert cells["cross_entropy"].best and cells["cross_entropy"].rank1
    assert not cells["focal"].best and cells["focal"].rank1
    assert not cells["mse_on_logits"].rank1
    assert cells["mse_on_logits"].p_worse < 0.05 <= cells["focal"].p_worse
    records = {r["label"]: r for r in comparison.records()}
    assert {k: r["in_rank1_group"] for k, r in records.items()} == {
        "cross_entropy": True, "focal": True, "mse_on_logits": False}
    assert {k: r["best"] for k, r in records.items()} == {"cross_entropy": True, "focal": False,
                                                          "mse_on_logits": False}


def test_lower_is_better_metric_picks_the_smallest_as_best():
    comparison = compare_results(grid({"a": [0.30, 0.31, 0.29], "b": [0.50, 0.52, 0.49]}, metric="nll"))
    assert row_of(comparison, "a").cells["test.nll"].best
    assert not row_of(comparison, "b").cells["test.nll"].rank1


def test_rank_groups_are_computed_within_each_dataset():
    results = grid({"a": [0.9, 0.91, 0.92], "b": [0.5, 0.51, 0.52]}, dataset="iris")
    results += grid({"a": [0.5, 0.51, 0.52], "b": [0.9, 0.91, 0.92]}, dataset="wine")
    comparison = compare_results(results)
    best = {(r.label["dataset"], r.label["label"]) for r in comparison.rows if r.cells["test.accuracy"].best}
    assert best == {("iris", "a"), ("wine", "b")}


def test_too_few_seeds_do_not_exclude_from_rank_one():
    comparison = compare_results(grid({"a": [0.9], "b": [0.5]}))
    cell = row_of(comparison, "b").cells["test.accuracy"]
    assert cell.rank1 and not cell.testable  # untestable, not excluded on no evidence


# --- labels and warnings -------------------------------------------------------------------------


def test_warning_when_fewer_than_three_seeds():
    few = compare_results(grid({"a": [0.9, 0.91], "b": [0.8, 0.81]}))
    assert any("fewer than 3" in w for w in few.warnings)
    enough = compare_results(grid({"a": [0.9, 0.91, 0.92], "b": [0.8, 0.81, 0.82]}))
    assert not any("fewer than 3" in w for w in enough.warnings)


def test_rows_with_different_training_budgets_are_labelled_and_ranked_together():
    # Once a warning that the comparison was unfair; now two configurations, each row saying its budget.
    results = grid({"a": [0.9, 0.91, 0.92]}, epochs=10) + grid({"a": [0.8, 0.81, 0.82]}, epochs=30)
    comparison = compare_results(results)
    assert sorted(r.label["train"] for r in comparison.rows) == ["epochs=10", "epochs=30"]
    assert len({r.block for r in comparison.rows}) == 1
    assert [r.cells["test.accuracy"].rank1 for r in comparison.rows] == [True, False]


def test_rows_with_different_models_are_labelled():
    results = grid({"a": [0.9, 0.91, 0.92]}) + grid({"b": [0.8, 0.81, 0.82]}, model="cnn")
    comparison = compare_results(results)
    assert {(r.label["model"], r.label["label"]) for r in comparison.rows} == {("mlp", "a"), ("cnn", "b")}


def test_warning_when_seeds_differ():
    results = grid({"a": [0.9, 0.91, 0.92]})
    results += [result("b", seed, v) for seed, v in zip((5, 6, 7), (0.8, 0.81, 0.82), strict=True)]
    warnings = compare_results(results).warnings
    assert any("different seeds" in w for w in warnings), warnings


def test_no_seed_warning_across_datasets():
    # Different datasets are different blocks, never compared with each other.
    results = grid({"a": [0.9, 0.91, 0.92]}, dataset="iris")
    results += [result("a", seed, v, dataset="wine") for seed, v in zip((5, 6, 7), (0.8, 0.81, 0.82), strict=True)]
    assert not any("seeds" in w for w in compare_results(results).warnings)


def test_failed_runs_are_left_out_and_counted():
    results = grid({"a": [0.9, 0.91, 0.92]}) + [result("a", 3, 0.1, status="diverged")]
    comparison = compare_results(results)
    row = row_of(comparison, "a")
    assert row.cells["test.accuracy"].n == 3
    assert row.cells["test.accuracy"].mean == pytest.approx(0.91)
    assert row.statuses["diverged"] == 1
    assert any("1 diverged" in w for w in comparison.warnings)


def test_friedman_note_across_three_datasets_and_three_losses():
    means = {  # dataset -> loss -> per-seed values
        "iris": {"a": [0.95, 0.96, 0.94], "b": [0.90, 0.91, 0.92], "c": [0.80, 0.82, 0.81]},
        "wine": {"a": [0.97, 0.96, 0.98], "b": [0.93, 0.92, 0.94], "c": [0.94, 0.95, 0.93]},
        "digits": {"a": [0.91, 0.92, 0.90], "b": [0.85, 0.84, 0.86], "c": [0.70, 0.71, 0.72]},
    }
    results = [result(loss, seed, v, dataset=d) for d, losses in means.items()
               for loss, vs in losses.items() for seed, v in enumerate(vs)]
    notes = compare_results(results).notes
    columns = {loss: [np.mean(means[d][loss]) for d in sorted(means)] for loss in ("a", "b", "c")}
    expected = scipy_stats.friedmanchisquare(columns["a"], columns["b"], columns["c"]).pvalue
    friedman = [n for n in notes if "Friedman" in n]
    assert len(friedman) == 1, notes
    assert f"Friedman p = {expected:.3g}" in friedman[0]
    ranks = next(n for n in notes if "average rank" in n)
    assert "3 datasets" in ranks
    # a is first everywhere (rank 1.00); c last on iris and digits, second on wine: (3 + 2 + 3) / 3.
    assert re.search(r"a 1\.00", ranks) and re.search(r"c 2\.67", ranks) and re.search(r"b 2\.33", ranks)


def test_friedman_needs_three_rows():
    results = [result(loss, s, 0.9 - 0.1 * i + 0.01 * s, dataset=d) for d in ("iris", "wine")
               for i, loss in enumerate(("a", "b")) for s in range(3)]
    notes = compare_results(results).notes
    assert any("needs at least 3 rows" in n for n in notes)


def test_friedman_p_directly_against_scipy():
    table = [[0.9, 0.8, 0.7], [0.85, 0.86, 0.6], [0.95, 0.9, 0.91], [0.7, 0.72, 0.5]]
    expected = scipy_stats.friedmanchisquare(*zip(*table, strict=True)).pvalue
    assert stats.friedman_p(table) == pytest.approx(expected)
    assert stats.average_ranks(table, higher_is_better=True) == pytest.approx(
        list(np.mean([scipy_stats.rankdata([-v for v in row]) for row in table], axis=0)))


# --- selection and lookup ------------------------------------------------------------------------


def test_filters_and_unknown_sort():
    results = grid({"a": [0.9, 0.91, 0.92], "b": [0.8, 0.81, 0.82]})
    only_b = compare_results(results, filters=["loss.name=b"])
    assert [r.label["label"] for r in only_b.rows] == ["b"]
    with pytest.raises(LosszooError, match="key=value"):
        compare_results(results, filters=["loss.name"])
    with pytest.raises(LosszooError, match="not a column"):
        compare_results(results, sort="speed")


def test_lookup_reads_metrics_and_config_keys():
    r = result("focal", 0, 0.7, inputs={"dataset.path": "ab" * 32, "loss.my_loss": "cd" * 32})
    assert lookup(r, "test.accuracy") == 0.7
    assert lookup(r, "val.accuracy") == 0.7
    assert lookup(r, "loss.name") == "focal"
    assert lookup(r, "test.nothing") is None
    # input names hold a dot themselves
    assert lookup(r, "inputs.dataset.path") == "ab" * 32
    assert lookup(r, "config.inputs.loss.my_loss") == "cd" * 32
    assert lookup(r, "inputs.dataset.nothing") is None


def test_lookup_reads_metrics_result_fields_and_the_resolved_config():
    from losszoo.comparison.table import higher_is_better, lookup

    result = {"metrics": {"test": {"accuracy": 0.9}}, "model": "resnet", "landscape": {"radius": 0.3},
              "config": {"model": {"name": "resnet", "skip": False}, "train": {"epochs": 7}}}
    assert lookup(result, "test.accuracy") == 0.9
    assert lookup(result, "model") == "resnet"
    assert lookup(result, "model.skip") is False
    assert lookup(result, "train.epochs") == 7
    assert lookup(result, "landscape.radius") == 0.3
    assert lookup(result, "landscape.nothing") is None
    assert higher_is_better("landscape.radius") and not higher_is_better("landscape.lambda_max")
    assert higher_is_better("test.accuracy") and not higher_is_better("val.nll")


def test_a_plugin_metric_takes_the_direction_its_runs_recorded():
    from losszoo.comparison.table import higher_is_better

    runs = [{**result("a", 0, {"my_error": 0.3}), "higher_is_better": {"my_error": False}},
            {**result("b", 0, {"my_score": 0.3}), "higher_is_better": {"my_score": True}}]
    assert not higher_is_better("test.my_error", runs)
    assert higher_is_better("test.my_score", runs)
