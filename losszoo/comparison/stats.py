"""Statistics for comparing losses over seeds, in plain functions.

Rank groups (``rank_groups``): in each column and block, rank 1 is every row
not significantly worse than any other row. "Significantly" is a one-sided
test at 5% after Holm's correction over all ordered pairs in that block: a
paired t-test when both rows ran the same seeds (the split and the label
noise are then shared, which removes their variance), Welch's otherwise.

The tests are written out with numpy and ``scipy.special`` in the exact
arithmetic of ``scipy.stats.ttest_1samp``, ``ttest_ind(equal_var=False)``,
``rankdata`` and ``friedmanchisquare`` (same values, bit for bit): a table of
10,000 runs makes thousands of tiny tests, where the generic ``scipy.stats``
wrappers cost milliseconds each and its import most of a second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from typing import Any

ALPHA = 0.05


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value).

    Sums are exactly rounded (``math.fsum``), so the same values in any order give the same mean to the
    last bit: exact ties stay ties whatever order the run folders are read in."""
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, 0.0
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


def ci_halfwidth(std: float, n: int, level: float = 0.95) -> float:
    """Half-width of the two-sided t interval of the mean; nan for n < 2."""
    if n < 2:
        return float("nan")
    return float(_t_quantile(0.5 + level / 2, n - 1) * std / math.sqrt(n))


@cache
def _t_quantile(q: float, df: int) -> float:
    """``scipy.stats.t.ppf(q, df)``, which is ``stdtrit(df, q)``, once per n."""
    from scipy.special import stdtrit

    return stdtrit(df, q)


def _mean_var(rows):
    """Row-wise numpy mean and ddof-1 variance of a 2-D array, as ``scipy.stats`` computes them."""
    import numpy as np

    n = rows.shape[1]
    var = np.mean((rows - np.mean(rows, axis=1, keepdims=True)) ** 2, axis=1)
    var *= np.float64(n) / np.float64(n - 1)
    return np.mean(rows, axis=1), var, n


def _ttest_1samp_greater(diffs: list[list[float]]) -> list[float]:
    """``scipy.stats.ttest_1samp(d, 0.0, alternative="greater").pvalue`` for each row ``d`` (rows of one length)."""
    import numpy as np
    from scipy.special import stdtr

    mean, var, n = _mean_var(np.asarray(diffs, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.divide(mean - 0.0, np.sqrt(var / n))
    return stdtr(np.float64(n - 1), -t).tolist()


def _welch_greater(a: list[float], b: list[list[float]]) -> list[float]:
    """``scipy.stats.ttest_ind(a, b_i, equal_var=False, alternative="greater").pvalue`` for each row ``b_i``
    (rows of one length)."""
    import numpy as np
    from scipy.special import stdtr

    with np.errstate(divide="ignore", invalid="ignore"):
        m1, v1, n1 = _mean_var(np.asarray([a] * len(b), dtype=np.float64))
        m2, v2, n2 = _mean_var(np.asarray(b, dtype=np.float64))
        vn1, vn2 = v1 / n1, v2 / n2
        # Welch-Satterthwaite df on numpy scalars, as scipy computes it per test: a scalar's ** 2 is C pow(),
        # an array's is x * x, and the two differ in the last bit now and then.
        df = np.array([(x + y) ** 2 / (x ** 2 / (n1 - 1) + y ** 2 / (n2 - 1)) for x, y in zip(vn1, vn2, strict=True)])
        df = np.where(np.isnan(df), 1.0, df)  # both variances zero: any df will do
        t = np.divide(m1 - m2, np.sqrt(vn1 + vn2))
    return stdtr(df, -t).tolist()


def p_worse(best: dict[int, float], other: dict[int, float], higher_is_better: bool) -> float:
    """One-sided p-value that ``other`` is worse than ``best`` (values keyed by seed)."""
    return p_worse_many(best, [other], higher_is_better)[0]


def p_worse_many(best: dict[int, float], others: list[dict[int, float]], higher_is_better: bool) -> list[float]:
    """``p_worse(best, other)`` for each of ``others``, the t-tests batched by sample size."""
    sign = 1.0 if higher_is_better else -1.0
    a = [sign * v for v in best.values()]
    p_values = [float("nan")] * len(others)  # nan: cannot test, not enough seeds
    paired: dict[int, list[tuple[int, list[float]]]] = {}
    welch: dict[int, list[tuple[int, list[float]]]] = {}
    for j, other in enumerate(others):
        shared = sorted(set(best) & set(other))
        if len(shared) >= 2 and len(shared) == len(best) == len(other):
            diffs = [sign * (best[s] - other[s]) for s in shared]
            if all(d == diffs[0] for d in diffs):  # no variance: the sign alone decides
                p_values[j] = 0.0 if diffs[0] > 0 else 1.0
            else:
                paired.setdefault(len(diffs), []).append((j, diffs))
            continue
        b = [sign * v for v in other.values()]
        if len(a) < 2 or len(b) < 2:
            continue
        if mean_std(a)[1] == 0 and mean_std(b)[1] == 0:
            p_values[j] = 0.0 if mean_std(a)[0] > mean_std(b)[0] else 1.0
        else:
            welch.setdefault(len(b), []).append((j, b))
    for batch in paired.values():
        for (j, _), p in zip(batch, _ttest_1samp_greater([diffs for _, diffs in batch]), strict=True):
            p_values[j] = p
    for batch in welch.values():
        for (j, _), p in zip(batch, _welch_greater(a, [b for _, b in batch]), strict=True):
            p_values[j] = p
    return p_values


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (nan stays nan)."""
    order = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [float("nan")] * len(p_values)
    running = 0.0
    m = len(order)
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def rank_groups(per_row: list[dict[Any, float]], higher_is_better: bool
                ) -> tuple[list[bool], list[bool], list[float]]:
    """Which rows have the best mean, which are in the rank-1 group, and each row's adjusted p-value.

    Best: every row whose mean equals the best mean (exact ties share it; means
    are exactly rounded sums, so the order of the values does not matter).
    Rank 1: every row that is not significantly worse than *any* other row.
    The family of tests is every ordered pair (i, j), i != j: a one-sided test
    that i is worse than j (paired t-test on shared seeds, Welch's otherwise),
    all k (k - 1) of them Holm-adjusted together at 5% (which direction to test
    is not chosen from the data, so the family holds both). A row is out of
    rank 1 as soon as one of its tests rejects, whatever the order in which
    the rows were read; a row that cannot be tested (one seed) is not excluded
    on no evidence. The p-value of a row is its smallest adjusted one (nan
    when none of its tests could be made).
    """
    sign = 1.0 if higher_is_better else -1.0
    means = [sign * math.fsum(v.values()) / len(v) for v in per_row]
    top = max(means)
    best = [m == top for m in means]
    pairs = [(i, j) for i in range(len(per_row)) for j in range(len(per_row)) if i != j]
    raw: list[float] = [float("nan")] * len(pairs)
    by_better: dict[int, list[int]] = {}
    for k, (_, j) in enumerate(pairs):
        by_better.setdefault(j, []).append(k)
    for j, ks in by_better.items():
        for k, p in zip(ks, p_worse_many(per_row[j], [per_row[pairs[k][0]] for k in ks], higher_is_better),
                        strict=True):
            raw[k] = p
    adjusted = holm(raw)
    rank1 = [True] * len(per_row)
    p_of = [float("nan")] * len(per_row)
    for (i, _), p in zip(pairs, adjusted, strict=True):
        if math.isnan(p):
            continue
        p_of[i] = p if math.isnan(p_of[i]) else min(p_of[i], p)
        if p < ALPHA:
            rank1[i] = False
    return best, rank1, p_of


def rankdata(values: Sequence[float]) -> list[float]:
    """Ranks from 1, ties sharing their average rank (``scipy.stats.rankdata``, finite values)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for i in order[start:end + 1]:
            ranks[i] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def average_ranks(table: list[list[float]], higher_is_better: bool) -> list[float]:
    """Average rank of each column (loss) over rows (datasets); ties share ranks."""
    n_losses = len(table[0])
    totals = [0.0] * n_losses
    for row in table:
        ranks = rankdata([-v if higher_is_better else v for v in row])
        for j in range(n_losses):
            totals[j] += ranks[j]
    return [t / len(table) for t in totals]


def friedman_p(table: list[list[float]]) -> float:
    """Friedman test p-value that all losses (columns) rank alike over datasets (rows)."""
    if len(table) < 2 or len(table[0]) < 3:
        return float("nan")
    import numpy as np
    from scipy.special import chdtrc

    n, k = len(table), len(table[0])
    ranks = [rankdata(row) for row in table]
    # tie correction: a group of t tied losses in a dataset counts t (t^2 - 1)
    ties = np.float64(sum(t * (t * t - 1) for r in ranks for t in _tie_sizes(r)))
    c = 1 - ties / (k * (k * k - 1) * n)
    ssbn = np.float64(sum(sum(r[j] for r in ranks) ** 2 for j in range(k)))
    statistic = (12.0 / (k * n * (k + 1)) * ssbn - 3 * n * (k + 1)) / c
    return float(chdtrc(np.float64(k - 1), statistic))


def _tie_sizes(ranks: list[float]) -> list[int]:
    counts: dict[float, int] = {}
    for r in ranks:
        counts[r] = counts.get(r, 0) + 1
    return list(counts.values())
