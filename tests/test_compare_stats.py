"""losszoo.comparison.stats writes out scipy.stats' tests for speed: its values must
equal scipy.stats' own, bit for bit, on every kind of input the table gives it."""

from __future__ import annotations

import math
import random

import pytest
from scipy import stats as scipy_stats
from test_compare_references import hand_holm

from losszoo.comparison import stats

# scipy warns of precision loss on nearly identical seeds; the reference may, ours is silent
pytestmark = pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def scipy_p_worse(best, other, higher_is_better):
    """The reference: stats.p_worse as first written, on scipy.stats."""
    shared = sorted(set(best) & set(other))
    sign = 1.0 if higher_is_better else -1.0
    if len(shared) >= 2 and len(shared) == len(best) == len(other):
        diffs = [sign * (best[s] - other[s]) for s in shared]
        if all(d == diffs[0] for d in diffs):
            return 0.0 if diffs[0] > 0 else 1.0
        return float(scipy_stats.ttest_1samp(diffs, 0.0, alternative="greater").pvalue)
    a, b = [sign * v for v in best.values()], [sign * v for v in other.values()]
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    if len(set(a)) == 1 and len(set(b)) == 1:  # no spread on either side: the means decide
        return 0.0 if a[0] > b[0] else 1.0
    return float(scipy_stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)


def random_seeds(rng, n, base, spread, offset=0):
    return {s + offset: base + rng.gauss(0, spread) if rng.random() > 0.1 else round(base, 2) for s in range(n)}


@pytest.mark.parametrize("seed", range(2))
def test_p_worse_equals_scipy_paired_and_welch(seed):
    rng = random.Random(seed)
    for _ in range(150):
        n = rng.randint(1, 14)
        spread = rng.choice([0.0, 1e-9, 1e-3, 0.05])
        best = random_seeds(rng, n, rng.random(), spread)
        paired = rng.random() < 0.6
        other = random_seeds(rng, n if paired else rng.randint(1, 14), rng.random(), spread,
                             offset=0 if paired else rng.choice([0, 1]))
        for up in (True, False):
            assert same(stats.p_worse(best, other, up), scipy_p_worse(best, other, up)), (best, other, up)


@pytest.mark.parametrize("seed", range(2))
def test_rank_groups_batches_give_the_per_pair_values(seed):
    rng = random.Random(10 + seed)
    for _ in range(15):
        n = rng.randint(2, 20)
        block = [random_seeds(rng, n if rng.random() < 0.7 else rng.randint(1, n + 2), rng.random(),
                              rng.choice([1e-3, 0.05])) for _ in range(rng.randint(2, 25))]
        for up in (True, False):
            best, rank1, p_values = stats.rank_groups(block, up)
            pairs = [(i, j) for i in range(len(block)) for j in range(len(block)) if i != j]
            adjusted = hand_holm([scipy_p_worse(block[j], block[i], up) for i, j in pairs])
            expected = [math.nan] * len(block)
            for (i, _), p in zip(pairs, adjusted, strict=True):
                if not math.isnan(p):
                    expected[i] = p if math.isnan(expected[i]) else min(expected[i], p)
            assert all(same(g, e) for g, e in zip(p_values, expected, strict=True))
            assert rank1 == [not p < stats.ALPHA for p in expected]  # nan: never tested, stays in rank 1


def test_ci_halfwidth_equals_scipy_t_ppf():
    for n in range(2, 120):
        for std in (0.0, 0.0123, 2.5):
            expected = float(scipy_stats.t.ppf(0.975, n - 1) * std / math.sqrt(n))
            assert stats.ci_halfwidth(std, n) == expected
    assert math.isnan(stats.ci_halfwidth(1.0, 1))


def test_average_ranks_and_friedman_equal_scipy():
    rng = random.Random(5)
    for _ in range(100):
        n_datasets, n_losses = rng.randint(2, 8), rng.randint(3, 9)
        table = [[rng.choice([0.5, 0.6]) if rng.random() < 0.3 else rng.random() for _ in range(n_losses)]
                 for _ in range(n_datasets)]
        for up in (True, False):
            ranks = [0.0] * n_losses
            for row in table:
                for j, r in enumerate(scipy_stats.rankdata([-v if up else v for v in row])):
                    ranks[j] += r
            assert stats.average_ranks(table, up) == [r / n_datasets for r in ranks]
        assert same(stats.friedman_p(table), float(scipy_stats.friedmanchisquare(*zip(*table, strict=True)).pvalue))
