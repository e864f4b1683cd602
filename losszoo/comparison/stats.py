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
    if all(v == values[0] for v in values):  # no spread: the value itself, not a sum that rounded
        return float(values[0]), 0.0
    mean = math.fsum(values) / n
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


def _ttest_1samp_greater(diffs):
    """``scipy.stats.ttest_1samp(d, 0.0, alternative="greater").pvalue`` for each row ``d`` of a 2-D array, and
    the same for ``-d`` (``alternative="less"``)."""
    import numpy as np
    from scipy.special import stdtr

    mean, var, n = _mean_var(np.asarray(diffs, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.divide(mean - 0.0, np.sqrt(var / n))
    return stdtr(np.float64(n - 1), -t), stdtr(np.float64(n - 1), t)


def _welch_df(vn_better: list[float], vn_worse: list[float], n_better: list[int], n_worse: list[int]) -> list[float]:
    """Welch-Satterthwaite degrees of freedom, pair by pair in Python floats: scipy computes them per test on
    numpy scalars, where ``** 2`` is C ``pow()`` (as for a Python float), while an array's ``** 2`` is ``x * x``,
    and the two differ in the last bit now and then. Both variances zero: nan (any df will do)."""
    out = []
    for x, y, n1, n2 in zip(vn_better, vn_worse, n_better, n_worse, strict=True):
        top, bottom = (x + y) ** 2, x ** 2 / (n1 - 1) + y ** 2 / (n2 - 1)
        out.append(top / bottom if bottom else (math.nan if top == 0 else math.inf))
    return out


def pairwise_p_worse(per_row: list[dict[Any, float]], higher_is_better: bool):
    """``P[i, j]``: the one-sided p-value that row i is worse than row j, for every ordered pair (nan on the
    diagonal and where a test cannot be made: a row of one value).

    Rows with the same two or more seeds are paired: ``scipy.stats.ttest_1samp`` of the per-seed differences
    (all differences equal: no variance, the sign alone decides, 0 or 1). Other pairs: Welch's
    ``scipy.stats.ttest_ind(equal_var=False)`` (both rows constant: the means decide). The values equal
    scipy's bit for bit; the tests of a block run as a few numpy batches.
    """
    import numpy as np
    from scipy.special import stdtr

    k = len(per_row)
    sign = 1.0 if higher_is_better else -1.0
    p = np.full((k, k), np.nan)
    paired = np.eye(k, dtype=bool)
    by_seeds: dict[frozenset, list[int]] = {}
    for r, row in enumerate(per_row):
        if len(row) >= 2:
            by_seeds.setdefault(frozenset(row), []).append(r)
    # Each unordered pair is tested once: the other direction's statistic is the same one negated, exactly
    # (a - b is -(b - a) in floating point, and so are the means; the variances and df are equal), so its
    # p-value is stdtr(df, t) where this one's is stdtr(df, -t), as scipy would compute it.
    for seeds, members in by_seeds.items():
        if len(members) < 2:
            continue
        order = sorted(seeds, key=lambda s: (type(s).__name__, s))
        x = np.array([[per_row[r][s] for s in order] for r in members], dtype=np.float64)
        worse, better = np.triu_indices(len(members), k=1)
        diffs = sign * (x[better] - x[worse])  # per seed, how far `better` leads `worse`
        forward, backward = np.where(diffs[:, 0] > 0, 0.0, 1.0), np.where(diffs[:, 0] < 0, 0.0, 1.0)
        varies = ~(diffs == diffs[:, :1]).all(axis=1)
        if varies.any():
            forward[varies], backward[varies] = _ttest_1samp_greater(diffs[varies])
        rows = np.asarray(members)
        p[rows[worse], rows[better]], p[rows[better], rows[worse]] = forward, backward
        paired[np.ix_(members, members)] = True

    values = [[sign * v for v in row.values()] for row in per_row]
    n = np.array([len(v) for v in values])
    mean, vn = np.full(k, np.nan), np.full(k, np.nan)
    for size in {len(v) for v in values if len(v) >= 2}:
        rows = [r for r in range(k) if len(values[r]) == size]
        m, v, _ = _mean_var(np.asarray([values[r] for r in rows], dtype=np.float64))
        mean[rows], vn[rows] = m, v / size
    worse, better = np.nonzero(np.triu(~paired & (n >= 2)[:, None] & (n >= 2)[None, :], k=1))
    # rows without spread (mean_std's std is 0 exactly then, and its mean the value)
    constant = np.array([len(v) >= 2 and min(v) == max(v) for v in values])
    exact_mean = np.array([v[0] if len(v) else math.nan for v in values])
    both = constant[worse] & constant[better]
    w, b = worse[both], better[both]
    p[w, b] = np.where(exact_mean[b] > exact_mean[w], 0.0, 1.0)
    p[b, w] = np.where(exact_mean[w] > exact_mean[b], 0.0, 1.0)
    worse, better = worse[~both], better[~both]
    if len(worse):
        with np.errstate(divide="ignore", invalid="ignore"):
            df = np.array(_welch_df(vn[better].tolist(), vn[worse].tolist(), n[better].tolist(), n[worse].tolist()))
            df = np.where(np.isnan(df), 1.0, df)
            t = np.divide(mean[better] - mean[worse], np.sqrt(vn[better] + vn[worse]))
        p[worse, better], p[better, worse] = stdtr(df, -t), stdtr(df, t)
    np.fill_diagonal(p, np.nan)
    return p


def p_worse(best: dict[Any, float], other: dict[Any, float], higher_is_better: bool) -> float:
    """One-sided p-value that ``other`` is worse than ``best`` (values keyed by seed)."""
    return float(pairwise_p_worse([best, other], higher_is_better)[1, 0])


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (nan stays nan): the k-th smallest of m times (m - k + 1), kept
    monotone, at most 1."""
    import numpy as np

    p = np.asarray(p_values, dtype=np.float64)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    adjusted = np.full(len(p), np.nan)
    m = len(order)
    adjusted[order] = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    return adjusted.tolist()


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
    import numpy as np

    sign = 1.0 if higher_is_better else -1.0
    means = [sign * mean_std(list(v.values()))[0] for v in per_row]  # the cells' means, to the last bit
    top = max(means)
    best = [m == top for m in means]
    k = len(per_row)
    raw = pairwise_p_worse(per_row, higher_is_better)
    off_diagonal = ~np.eye(k, dtype=bool)  # row-major: the pairs (i, j) in order
    adjusted = np.full((k, k), np.nan)
    adjusted[off_diagonal] = holm(raw[off_diagonal])
    tested = ~np.isnan(adjusted)
    rank1 = (~(tested & (adjusted < ALPHA)).any(axis=1)).tolist()
    smallest = np.where(tested, adjusted, np.inf).min(axis=1)
    p_of = np.where(np.isinf(smallest), np.nan, smallest).tolist()
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
