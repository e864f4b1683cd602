"""Statistics across several datasets (blocks), the way the field now reports them.

Agarwal et al. 2021, "Deep Reinforcement Learning at the Edge of the
Statistical Precipice" (library ``rliable``): aggregate with the interquartile
mean (IQM, the mean of the middle 50% of all runs of all datasets) and give it
a 95% *stratified* bootstrap interval (runs resampled with replacement within
each dataset); the probability of improvement P(X > Y) of one method over
another is the Mann-Whitney statistic averaged over datasets. Demšar 2006:
average ranks over datasets, the Friedman test, and the Nemenyi critical
difference that a critical-difference diagram draws.

Written with numpy and scipy (``trim_mean``, ``studentized_range``) rather than
imported from rliable or autorank: rliable pulls in ``arch`` and pandas for a
20-line bootstrap, and autorank pandas and a Bayesian test suite; the tests
check these functions against both libraries' definitions (rliable's own code
in the test references, Demšar's table of q values).

Scores are taken as measured (no normalisation between datasets): compare
metrics with a shared scale (accuracy, F1), and read the ranks otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0
ALPHA = 0.05


def iqm(scores: Sequence[Sequence[float]]) -> float:
    """Interquartile mean of every score of every dataset (``scores[d]``: the runs of dataset d)."""
    import numpy as np

    return float(_iqm([np.asarray(s, dtype=float)[None, :] for s in scores])[0])


def _iqm(drawn):
    """IQM of each bootstrap replicate: ``drawn[d]`` is (replicates, runs of dataset d)."""
    import numpy as np
    from scipy.stats import trim_mean

    return trim_mean(np.concatenate(drawn, axis=1), 0.25, axis=1)


def probability_of_improvement(x: Sequence[Sequence[float]], y: Sequence[Sequence[float]]) -> float:
    """P(X > Y): over datasets, the mean of P(x > y) for a run x of X and a run y of Y (ties count half)."""
    import numpy as np

    return float(_improvement([np.asarray(r, dtype=float)[None, :] for r in x],
                              [np.asarray(r, dtype=float)[None, :] for r in y])[0])


def _improvement(x, y):
    """P(X > Y) of each bootstrap replicate (``x[d]``, ``y[d]``: (replicates, runs))."""
    total = 0.0
    for a, b in zip(x, y, strict=True):
        a, b = a[:, :, None], b[:, None, :]
        total = total + ((a > b) + 0.5 * (a == b)).mean(axis=(1, 2))
    return total / len(x)


def stratified_bootstrap_ci(statistic, samples: Sequence[Sequence[Sequence[float]]], reps: int = BOOTSTRAP_SAMPLES,
                            seed: int = BOOTSTRAP_SEED, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of a statistic, each sample's runs resampled with replacement within each dataset.

    ``samples[k][d]`` holds the runs of dataset d for method k; each is resampled independently, as
    rliable's ``StratifiedIndependentBootstrap`` does. ``statistic`` takes, per sample, a list over datasets
    of (replicates, runs) arrays and returns one value per replicate (``_iqm``, ``_improvement``).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    drawn = [[np.asarray(runs, dtype=float)[rng.integers(0, len(runs), (reps, len(runs)))] for runs in sample]
             for sample in samples]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(statistic(*drawn), [tail, 100 - tail])
    return float(low), float(high)


def nemenyi_critical_difference(k: int, n: int, alpha: float = ALPHA) -> float:
    """Demšar's critical difference of average ranks for k methods over n datasets:
    q_alpha sqrt(k (k + 1) / (6 n)), q_alpha the studentized range quantile over sqrt 2."""
    from scipy.stats import studentized_range

    q = studentized_range.ppf(1 - alpha, k, math.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6 * n)))


@dataclass
class Across:
    """One metric across datasets: per method, IQM with its interval, average rank; the test and the CD."""

    metric: str
    methods: list[str]
    datasets: list[str]
    iqm: list[float]
    iqm_ci: list[tuple[float, float]]
    average_rank: list[float]
    friedman_p: float
    critical_difference: float
    baseline: str | None = None
    improvement: list[tuple[float, float, float]] | None = None  # P(method > baseline) and its interval


def across_datasets(metric: str, methods: list[str], datasets: list[str], scores: list[list[list[float]]],
                    higher_is_better: bool, baseline: str | None = None) -> Across:
    """``scores[m][d]``: the runs of method m on dataset d (every method on every dataset)."""
    from losszoo.comparison import stats

    iqms = [iqm(s) for s in scores]
    intervals = [stratified_bootstrap_ci(_iqm, [s]) for s in scores]
    means = [[sum(scores[m][d]) / len(scores[m][d]) for m in range(len(methods))] for d in range(len(datasets))]
    ranks = stats.average_ranks(means, higher_is_better)
    friedman = stats.friedman_p(means)
    cd = nemenyi_critical_difference(len(methods), len(datasets)) if len(methods) >= 2 else math.nan
    improvement = None
    if baseline is not None:
        base = scores[methods.index(baseline)]
        sign = 1.0 if higher_is_better else -1.0

        def flip(s: list[list[float]]) -> list[list[float]]:
            return [[sign * v for v in runs] for runs in s]

        improvement = []
        for s in scores:
            p = probability_of_improvement(flip(s), flip(base))
            low, high = stratified_bootstrap_ci(_improvement, [flip(s), flip(base)])
            improvement.append((p, low, high))
    return Across(metric, methods, datasets, iqms, intervals, ranks, friedman, cd, baseline, improvement)


def method_name(label: dict[str, str], other: bool = False) -> str:
    """A row's label without its dataset: what is compared across datasets (``other``: keep the keys that
    are neither dataset, model, loss nor training, such as a plugin's content hash)."""
    dropped = ("dataset", "experiment") if other else ("dataset", "experiment", "other")
    return " ".join(v for k, v in label.items() if k not in dropped) or "-"


def method_names(rows: list) -> dict[int, str]:
    """Each row's method name; with its "other" keys where two rows of one block would otherwise share one."""
    for other in (False, True):
        names = {id(row): method_name(row.label, other) for row in rows}
        seen = {(row.block, names[id(row)]) for row in rows}
        if len(seen) == len(rows):
            break
    return names


def across_blocks(rows: list, columns: list[str], directions: dict[str, bool], baseline: str | None) -> list[Across]:
    """The across-datasets statistics of each column, over the methods present in every block (dataset);
    nothing when the table holds a single dataset."""
    from losszoo.errors import LosszooError

    methods_of = method_names(rows)
    dataset_of = {row.block: row.block_name or str(row.block) for row in rows}
    out = []
    for column in columns:
        by_method: dict[str, dict[object, list[float]]] = {}
        datasets: dict[object, None] = {}
        for row in rows:
            cell = row.cells.get(column)
            if cell is None:
                continue
            datasets.setdefault(row.block, None)
            by_method.setdefault(methods_of[id(row)], {})[row.block] = list(cell.values.values())
        if len(datasets) < 2:
            if baseline is not None:
                raise LosszooError(f"--baseline {baseline!r}: compares rows across datasets, and this table holds "
                                   "one dataset")
            continue
        methods = [m for m, per in by_method.items() if len(per) == len(datasets)]
        if baseline is not None and baseline not in methods:
            raise LosszooError(f"--baseline {baseline!r}: not a row present on every dataset "
                               f"(rows: {', '.join(methods) or 'none'})")
        if len(methods) < 2:
            continue
        scores = [[by_method[m][d] for d in datasets] for m in methods]
        out.append(across_datasets(column, methods, [dataset_of[d] for d in datasets], scores, directions[column],
                                   baseline))
    return out
