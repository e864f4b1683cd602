"""``compare --correlate KEY`` and ``compare --trials LOSS``: Kendall's tau against scipy, the CLI's
outputs (table note, json record, plot), and the errors a user can hit."""

from __future__ import annotations

import json
import math
import random

import pytest
from scipy import stats as scipy_stats
from test_compare import result
from test_compare_contract import invoke, store

from losszoo.comparison.correlation import correlate
from losszoo.errors import LosszooError


def runs_with_gaps(n=12, seed=0, relation=1.0):
    """``n`` runs, each with a landscape.lambda_max and a generalisation gap that follows it by ``relation``."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        sharp = rng.uniform(1, 50)
        r = result(f"loss{i % 3}(g={i})", i, 0.8 + rng.uniform(-0.05, 0.05), position=i % 3)
        r["landscape"] = {"lambda_max": sharp}
        r["generalization_gap"] = {"metric": "accuracy", "value": relation * sharp / 100 + rng.gauss(0, 0.02)}
        out.append(r)
    return out


@pytest.mark.parametrize("relation", [1.0, -1.0, 0.0])
def test_tau_is_scipy_s_kendall_tau_b(relation):
    found = correlate(runs_with_gaps(relation=relation), "landscape.lambda_max")
    assert found.n == 12 and found.gap_metric == "accuracy"
    assert found.tau == pytest.approx(scipy_stats.kendalltau(found.xs, found.ys).statistic, abs=1e-12)
    assert found.low <= found.tau <= found.high


def test_a_strong_relation_is_called_one_and_noise_is_not():
    strong = correlate(runs_with_gaps(n=20, relation=1.0), "landscape.lambda_max")
    assert strong.low > 0 and "ranks the gaps" in strong.words() and "no evidence" not in strong.words()
    noise = correlate(runs_with_gaps(n=20, relation=0.0, seed=3), "landscape.lambda_max")
    assert noise.low <= 0 <= noise.high and "no evidence" in noise.words()


def test_p_is_scipy_s_and_a_perfect_order_of_three_runs_is_not_called_significant():
    """Under no relation, a perfect order of 3 runs comes one time in three: the percentile bootstrap's interval
    is then [1, 1], but the exact test's p is 1/3 (scipy's kendalltau, exact without ties)."""
    found = correlate(runs_with_gaps(relation=1.0), "landscape.lambda_max")
    assert found.p == pytest.approx(scipy_stats.kendalltau(found.xs, found.ys).pvalue, rel=1e-12)
    runs = runs_with_gaps(n=3)
    for i, r in enumerate(runs):
        r["landscape"]["lambda_max"], r["generalization_gap"]["value"] = float(i), 0.01 * i
    three = correlate(runs, "landscape.lambda_max")
    assert three.tau == 1.0 and three.p == pytest.approx(1 / 3)
    assert "no evidence" in three.words() and "too few runs" in three.words()
    assert three.record()["p"] == pytest.approx(1 / 3)


def test_runs_whose_figure_is_not_a_finite_number_are_not_counted():
    runs = runs_with_gaps(n=4)
    runs[0]["landscape"]["lambda_max"] = float("nan")
    runs[1]["generalization_gap"]["value"] = True  # not a number a gap can be
    with pytest.raises(LosszooError, match="2 runs have both"):
        correlate(runs, "landscape.lambda_max")


def test_the_gap_of_a_lower_is_better_metric_is_named_as_stored_and_old_runs_are_not_mixed_in():
    runs = runs_with_gaps(n=6)
    for r in runs:
        r["generalization_gap"] |= {"metric": "nll", "definition": "test - train"}
    found = correlate(runs, "landscape.lambda_max")
    assert found.gap == "test - train nll" and "(test - train nll)" in found.words()
    del runs[0]["generalization_gap"]["definition"]  # stored before gaps were oriented: train - test
    with pytest.raises(LosszooError, match="test - train nll, train - test nll"):
        correlate(runs, "landscape.lambda_max")


def test_the_interval_does_not_depend_on_the_order_runs_are_read_in():
    runs = runs_with_gaps()
    first = correlate(runs, "landscape.lambda_max")
    again = correlate(list(reversed(runs)), "landscape.lambda_max")
    assert (first.tau, first.low, first.high) == (again.tau, again.low, again.high)


def test_runs_without_the_figure_or_a_gap_are_left_out_and_too_few_is_an_error():
    runs = runs_with_gaps(n=5)
    for r in runs[:3]:
        del r["generalization_gap"]
    with pytest.raises(LosszooError, match="2 runs have both"):
        correlate(runs, "landscape.lambda_max")
    with pytest.raises(LosszooError, match="--correlate"):
        correlate(runs_with_gaps(), "landscape.lamda_max")


def test_gaps_of_different_metrics_are_not_ranked_together():
    runs = runs_with_gaps(n=6)
    runs[0]["generalization_gap"]["metric"] = "f1_macro"
    with pytest.raises(LosszooError, match="different metrics"):
        correlate(runs, "landscape.lambda_max")


def test_a_constant_figure_gives_an_undefined_tau_in_words():
    runs = runs_with_gaps(n=6)
    for r in runs:
        r["landscape"]["lambda_max"] = 3.0
    found = correlate(runs, "landscape.lambda_max")
    assert math.isnan(found.tau) and "undefined" in found.words()
    assert found.record()["tau"] is None


def test_cli_prints_the_note_writes_json_and_the_plot(tmp_path):
    store(tmp_path / "runs", runs_with_gaps())
    table = invoke("compare", "--runs-dir", str(tmp_path / "runs"), "--correlate", "landscape.lambda_max")
    assert table.exit_code == 0, table.output
    assert "Kendall's tau between landscape.lambda_max" in " ".join(table.stdout.split())
    data = json.loads(invoke("compare", "--runs-dir", str(tmp_path / "runs"), "--correlate",
                             "landscape.lambda_max", "--format", "json").stdout)
    expected = correlate(runs_with_gaps(), "landscape.lambda_max")
    assert data["correlation"]["tau"] == pytest.approx(expected.tau)
    assert data["correlation"]["n"] == 12 and data["correlation"]["ci95_low"] == pytest.approx(expected.low)
    plot = tmp_path / "cmp.png"
    drawn = invoke("compare", "--runs-dir", str(tmp_path / "runs"), "--correlate", "landscape.lambda_max",
                   "--plot", str(plot))
    assert drawn.exit_code == 0, drawn.output
    assert (tmp_path / "cmp-correlate.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_unknown_key_is_exit_2_with_a_suggestion(tmp_path):
    store(tmp_path / "runs", runs_with_gaps())
    outcome = invoke("compare", "--runs-dir", str(tmp_path / "runs"), "--correlate", "landscape.lamda_max")
    assert outcome.exit_code == 2 and "landscape.lambda_max" in outcome.output
    assert "Traceback" not in outcome.output
