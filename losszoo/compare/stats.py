"""Statistics for comparing losses over seeds, in plain functions.

Rank groups: in each column the best loss (by mean) and every loss not
significantly worse than it share rank 1. "Significantly" is a one-sided
test at 5% after Holm's correction over the comparisons in that column: a
paired t-test when both losses ran the same seeds (the split and the label
noise are then shared, which removes their variance), Welch's otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

ALPHA = 0.05


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def ci_halfwidth(std: float, n: int, level: float = 0.95) -> float:
    """Half-width of the two-sided t interval of the mean; nan for n < 2."""
    if n < 2:
        return float("nan")
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, n - 1) * std / math.sqrt(n))


def p_worse(best: dict[int, float], other: dict[int, float], higher_is_better: bool) -> float:
    """One-sided p-value that ``other`` is worse than ``best`` (values keyed by seed)."""
    from scipy import stats

    shared = sorted(set(best) & set(other))
    sign = 1.0 if higher_is_better else -1.0
    if len(shared) >= 2 and len(shared) == len(best) == len(other):
        diffs = [sign * (best[s] - other[s]) for s in shared]
        if all(d == diffs[0] for d in diffs):  # no variance: the sign alone decides
            return 0.0 if diffs[0] > 0 else 1.0
        return float(stats.ttest_1samp(diffs, 0.0, alternative="greater").pvalue)
    a, b = [sign * v for v in best.values()], [sign * v for v in other.values()]
    if len(a) < 2 or len(b) < 2:
        return float("nan")  # cannot test: not enough seeds
    if mean_std(a)[1] == 0 and mean_std(b)[1] == 0:
        return 0.0 if mean_std(a)[0] > mean_std(b)[0] else 1.0
    return float(stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)


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


def rank_one_group(per_seed: list[dict[int, float]], higher_is_better: bool) -> tuple[int, list[bool], list[float]]:
    """Index of the best row, which rows share rank 1, and their adjusted p-values."""
    means = [sum(v.values()) / len(v) for v in per_seed]
    best = max(range(len(means)), key=lambda i: means[i] if higher_is_better else -means[i])
    others = [i for i in range(len(per_seed)) if i != best]
    adjusted = holm([p_worse(per_seed[best], per_seed[i], higher_is_better) for i in others])
    in_group = [False] * len(per_seed)
    p_of = [float("nan")] * len(per_seed)
    in_group[best] = True
    for i, p in zip(others, adjusted):
        p_of[i] = p
        in_group[i] = math.isnan(p) or p >= ALPHA  # untestable rows are not excluded on no evidence
    return best, in_group, p_of


def average_ranks(table: list[list[float]], higher_is_better: bool) -> list[float]:
    """Average rank of each column (loss) over rows (datasets); ties share ranks."""
    from scipy.stats import rankdata

    n_losses = len(table[0])
    totals = [0.0] * n_losses
    for row in table:
        ranks = rankdata([-v if higher_is_better else v for v in row])
        for j in range(n_losses):
            totals[j] += ranks[j]
    return [t / len(table) for t in totals]


def friedman_p(table: list[list[float]]) -> float:
    """Friedman test p-value that all losses (columns) rank alike over datasets (rows)."""
    from scipy.stats import friedmanchisquare

    if len(table) < 2 or len(table[0]) < 3:
        return float("nan")
    return float(friedmanchisquare(*zip(*table)).pvalue)
