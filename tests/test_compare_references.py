"""The comparison's statistics against independent references: rank groups
against ``scipy.stats``' t-tests and a Holm written out by hand; the
across-dataset figures (IQM, stratified bootstrap intervals, probability of
improvement, Nemenyi critical difference) against hand data, slow loops,
rliable (Agarwal et al. 2021) and autorank, and Demšar 2006's table."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy import stats as scipy_stats

from losszoo.comparison import across, stats

# scipy warns on samples of one (the reference is nan there, as ours is); arch (under rliable) of its own API
pytestmark = [pytest.mark.filterwarnings("ignore::RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:random_state is deprecated:FutureWarning")]


# --- rank groups -------------------------------------------------------------------------------------------


def hand_holm(p_values: list[float]) -> list[float]:
    """Holm (1979) step by step: the k-th smallest of m p-values times (m - k + 1), kept monotone, capped at 1."""
    tested = [i for i, p in enumerate(p_values) if not math.isnan(p)]
    order = sorted(tested, key=lambda i: p_values[i])
    m = len(order)
    adjusted = [math.nan] * len(p_values)
    highest = 0.0
    for k, i in enumerate(order, start=1):
        highest = max(highest, min(1.0, (m - k + 1) * p_values[i]))
        adjusted[i] = highest
    return adjusted


def scipy_one_sided(better: dict, worse: dict, higher_is_better: bool) -> float:
    """p that ``worse`` is worse than ``better``: scipy's paired test on the same seeds, else Welch's."""
    alternative = "greater" if higher_is_better else "less"
    if set(better) == set(worse) and len(better) >= 2:
        seeds = sorted(better)
        return float(scipy_stats.ttest_rel([better[s] for s in seeds], [worse[s] for s in seeds],
                                           alternative=alternative).pvalue)
    return float(scipy_stats.ttest_ind(list(better.values()), list(worse.values()), equal_var=False,
                                       alternative=alternative).pvalue)


def reference_rank_groups(per_row: list[dict], higher_is_better: bool):
    """Issue 10's procedure from its words: every ordered pair, one-sided, Holm together, rank 1 = rows that
    no test finds significantly worse than another row."""
    k = len(per_row)
    pairs = [(i, j) for i in range(k) for j in range(k) if i != j]  # (worse?, better?)
    raw = [scipy_one_sided(per_row[j], per_row[i], higher_is_better) for i, j in pairs]
    adjusted = hand_holm(raw)
    rank1, p_of = [True] * k, [math.nan] * k
    for (i, _), p in zip(pairs, adjusted, strict=True):
        if not math.isnan(p):
            p_of[i] = min(p_of[i], p) if not math.isnan(p_of[i]) else p
            rank1[i] = rank1[i] and p >= 0.05
    return rank1, p_of


def random_block(rng: random.Random) -> list[dict]:
    rows = []
    for _ in range(rng.randint(2, 7)):
        n = rng.choice([1, 2, 3, 5, 8])
        offset = 0 if rng.random() < 0.7 else 100  # most rows share seeds (paired), some do not (Welch)
        centre, spread = rng.uniform(0.6, 0.9), rng.choice([0.005, 0.02, 0.05])
        rows.append({offset + s: centre + rng.gauss(0, spread) for s in range(n)})
    return rows


@pytest.mark.parametrize("seed", range(40))
def test_rank_groups_against_scipy_and_a_hand_holm(seed):
    rng = random.Random(seed)
    block = random_block(rng)
    for up in (True, False):
        best, rank1, p_values = stats.rank_groups(block, up)
        expected_rank1, expected_p = reference_rank_groups(block, up)
        means = [np.mean(list(v.values())) for v in block]
        top = max(means) if up else min(means)
        assert best == [m == pytest.approx(top, abs=0) for m in means]
        assert rank1 == expected_rank1, (block, up)
        for got, want in zip(p_values, expected_p, strict=True):
            assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, rel=1e-9, abs=1e-15)


def test_hand_holm_on_a_textbook_example():
    # Holm 1979 style: 0.01, 0.02, 0.03, 0.04, 0.05 -> x5, x4, x3, x2, x1 = 0.05, 0.08, 0.09, 0.08 (-> 0.09), 0.05
    assert hand_holm([0.01, 0.02, 0.03, 0.04, 0.05]) == pytest.approx([0.05, 0.08, 0.09, 0.09, 0.09])
    assert stats.holm([0.01, 0.02, 0.03, 0.04, 0.05]) == pytest.approx(hand_holm([0.01, 0.02, 0.03, 0.04, 0.05]))


# --- interquartile mean ------------------------------------------------------------------------------------


def test_iqm_on_hand_data():
    # 8 runs over two datasets, sorted 1..7, 100: the middle half is 3, 4, 5, 6
    assert across.iqm([[1, 2, 3, 4], [5, 6, 7, 100]]) == 4.5
    # 12 runs: drop the 3 lowest and the 3 highest of all
    scores = [[0.1, 0.9, 0.5], [0.3, 0.7, 0.2], [0.8, 0.4, 0.6], [0.0, 1.0, 0.55]]
    middle = sorted(v for runs in scores for v in runs)[3:9]
    assert across.iqm(scores) == pytest.approx(sum(middle) / 6)
    assert across.iqm(scores) == pytest.approx(scipy_stats.trim_mean([v for r in scores for v in r], 0.25))


def test_iqm_equals_rliables_aggregate_iqm():
    metrics = pytest.importorskip("rliable.metrics")
    rng = np.random.default_rng(1)
    matrix = rng.uniform(0.5, 1.0, size=(10, 6))  # rliable's shape: runs x tasks
    assert across.iqm(matrix.T.tolist()) == pytest.approx(metrics.aggregate_iqm(matrix), rel=1e-12)


def test_stratified_bootstrap_interval_agrees_with_rliable():
    library = pytest.importorskip("rliable.library")
    metrics = pytest.importorskip("rliable.metrics")
    rng = np.random.default_rng(2)
    matrix = rng.normal(0.8, 0.05, size=(8, 5))
    ours = across.stratified_bootstrap_ci(across._iqm, [matrix.T.tolist()], reps=4000)
    _, intervals = library.get_interval_estimates(
        {"m": matrix}, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=4000,
        random_state=np.random.RandomState(0))
    theirs = intervals["m"][:, 0]
    width = theirs[1] - theirs[0]
    assert ours[0] < across.iqm(matrix.T.tolist()) < ours[1]
    # two Monte Carlo estimates of the same percentiles: equal within a few per cent of the width
    assert ours == pytest.approx(tuple(theirs), abs=0.06 * width)


def test_stratified_bootstrap_resamples_within_each_dataset():
    # each dataset is constant: a resample within a dataset keeps its values and its count, so every replicate
    # has the same IQM (of 0.5, 0.5, 0.5, 0.9, 0.9), and the interval is that point; a resample across
    # datasets would vary it
    point = across.iqm([[0.5, 0.5, 0.5], [0.9, 0.9]])
    assert point == pytest.approx((0.5 + 0.5 + 0.9) / 3)
    assert across.stratified_bootstrap_ci(across._iqm, [[[0.5, 0.5, 0.5], [0.9, 0.9]]]) == (point, point)


def test_shared_draws_give_the_numbers_of_independent_ones():
    rng = random.Random(8)
    methods = [[[rng.random() for _ in range(rng.choice([9, 10]))] for _ in range(6)] for _ in range(8)]
    draws = across.Draws()
    shared = [across.stratified_bootstrap_ci(across._iqm, [m], draws=draws) for m in methods]
    assert shared == [across.stratified_bootstrap_ci(across._iqm, [m]) for m in methods]
    base = methods[0]
    draws = across.Draws()
    shared = [across.stratified_bootstrap_ci(across._improvement, [m, base], draws=draws) for m in methods]
    assert shared == [across.stratified_bootstrap_ci(across._improvement, [m, base]) for m in methods]


def test_intervals_are_drawn_only_when_read():
    from test_compare_contract import across_results

    from losszoo.comparison.render.text import to_csv, to_json
    from losszoo.comparison.table import compare_results

    comparison = compare_results(across_results(), baseline="c")
    to_csv(comparison)
    assert "iqm_ci" not in vars(comparison.across[0]) and "improvement" not in vars(comparison.across[0])
    to_json(comparison)
    assert "iqm_ci" in vars(comparison.across[0]) and "improvement" in vars(comparison.across[0])


# --- probability of improvement ----------------------------------------------------------------------------


def slow_improvement(x: list[list[float]], y: list[list[float]]) -> float:
    total = 0.0
    for xs, ys in zip(x, y, strict=True):
        wins = 0.0
        for a in xs:
            for b in ys:
                wins += 1.0 if a > b else 0.5 if a == b else 0.0
        total += wins / (len(xs) * len(ys))
    return total / len(x)


def test_probability_of_improvement_against_a_double_loop():
    rng = random.Random(4)
    for _ in range(30):
        datasets = rng.randint(1, 5)
        x = [[round(rng.random(), 1) for _ in range(rng.randint(1, 6))] for _ in range(datasets)]  # ties too
        y = [[round(rng.random(), 1) for _ in range(rng.randint(1, 6))] for _ in range(datasets)]
        assert across.probability_of_improvement(x, y) == pytest.approx(slow_improvement(x, y), rel=1e-12)
    assert across.probability_of_improvement([[1, 2]], [[1, 2]]) == 0.5


def test_probability_of_improvement_against_rliable():
    library = pytest.importorskip("rliable.library")
    metrics = pytest.importorskip("rliable.metrics")
    rng = np.random.default_rng(5)
    x, y = rng.normal(0.82, 0.03, size=(6, 4)), rng.normal(0.80, 0.03, size=(6, 4))
    assert across.probability_of_improvement(x.T.tolist(), y.T.tolist()) == pytest.approx(
        metrics.probability_of_improvement(x, y), rel=1e-12)
    ours = across.stratified_bootstrap_ci(across._improvement, [x.T.tolist(), y.T.tolist()], reps=4000)
    # rliable runs one Mann-Whitney test per replicate: a few hundred replicates take seconds
    _, intervals = library.get_interval_estimates(
        {"x,y": (x, y)}, lambda a, b: np.array([metrics.probability_of_improvement(a, b)]), reps=800,
        random_state=np.random.RandomState(0))
    theirs = intervals["x,y"][:, 0]
    # P(X > Y) takes few values (multiples of 1/144 per dataset): percentiles move in steps
    assert ours == pytest.approx(tuple(theirs), abs=0.12 * (theirs[1] - theirs[0]))


def test_across_datasets_flips_the_direction_of_a_lower_is_better_metric():
    result = across.across_datasets("test.nll", ["a", "b"], ["d1", "d2"],
                                    [[[0.1, 0.2], [0.3, 0.2]], [[0.5, 0.6], [0.7, 0.8]]], False, baseline="b")
    assert result.average_rank == [1.0, 2.0]
    assert [p for p, _, _ in result.improvement] == [1.0, 0.5]


# --- critical difference -----------------------------------------------------------------------------------

#: Demšar 2006, Table 5(a): q_0.05 of the two-tailed Nemenyi test for k = 2..10 classifiers.
DEMSAR_Q05 = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]


@pytest.mark.parametrize(("k", "q"), list(enumerate(DEMSAR_Q05, start=2)))
def test_nemenyi_critical_difference_against_demsars_table(k, q):
    n = 14
    scale = math.sqrt(k * (k + 1) / (6 * n))
    # the table gives q to three decimals
    assert across.nemenyi_critical_difference(k, n) == pytest.approx(q * scale, abs=1e-3 * scale)


@pytest.mark.parametrize("k", [2, 3, 4, 7, 10, 25, 50, 120])
@pytest.mark.parametrize("p", [0.9, 0.95, 0.99])
def test_studentized_range_quantile_equals_scipys(k, p):
    assert across.studentized_range_quantile(p, k) == pytest.approx(
        scipy_stats.studentized_range.ppf(p, k, math.inf), rel=1e-9)


@pytest.mark.parametrize(("k", "n"), [(2, 5), (3, 10), (5, 7), (8, 20), (12, 30)])
def test_nemenyi_critical_difference_against_autorank(k, n):
    util = pytest.importorskip("autorank._util")
    assert across.nemenyi_critical_difference(k, n) == pytest.approx(util._critical_distance(0.05, k, n), rel=2e-3)


def test_friedman_and_average_ranks_of_across_datasets_against_scipy():
    rng = np.random.default_rng(6)
    scores = rng.normal(0.8, 0.05, size=(4, 5, 3)).tolist()  # 4 methods, 5 datasets, 3 runs
    result = across.across_datasets("test.accuracy", list("abcd"), [f"d{i}" for i in range(5)], scores, True)
    means = np.mean(np.asarray(scores), axis=2)  # methods x datasets
    assert result.friedman_p == pytest.approx(scipy_stats.friedmanchisquare(*means).pvalue, rel=1e-12)
    ranks = np.mean([scipy_stats.rankdata(-means[:, d]) for d in range(5)], axis=0)
    assert result.average_rank == pytest.approx(ranks.tolist())
    assert result.iqm == pytest.approx([scipy_stats.trim_mean(np.ravel(s), 0.25) for s in scores])
