"""Statistics across several datasets (blocks), the way the field now reports them.

Agarwal et al. 2021, "Deep Reinforcement Learning at the Edge of the
Statistical Precipice" (library ``rliable``): aggregate with the interquartile
mean (IQM, the mean of the middle 50% of all runs of all datasets) and give it
a 95% *stratified* bootstrap interval (runs resampled with replacement within
each dataset); the probability of improvement P(X > Y) of one method over
another is the Mann-Whitney statistic averaged over datasets. Demšar 2006:
average ranks over datasets, the Friedman test, and the Nemenyi critical
difference that a critical-difference diagram draws.

Written with numpy and ``scipy.special`` (``scipy.stats``' ``trim_mean`` and
``studentized_range`` spelled out: that module alone takes half a second to
import) rather than imported from rliable or autorank: rliable pulls in ``arch`` and pandas for a
20-line bootstrap, and autorank pandas and a Bayesian test suite; the tests
check these functions against both libraries' definitions (rliable's own code
in the test references, Demšar's table of q values).

Scores are taken as measured (no normalisation between datasets): compare
metrics with a shared scale (accuracy, F1), and read the ranks otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0
ALPHA = 0.05


class Resample(NamedTuple):
    """Replicates of one method's runs, every dataset side by side: ``runs`` is (replicates, all runs), the
    first ``sizes[0]`` columns dataset 0's, and so on."""

    runs: Any
    sizes: tuple[int, ...]

    def datasets(self) -> list:
        """Each dataset's (replicates, runs) block, as views."""
        import numpy as np

        return np.split(self.runs, np.cumsum(self.sizes)[:-1], axis=1)


def _whole(scores: Sequence[Sequence[float]]) -> Resample:
    """The runs as they are: one replicate."""
    import numpy as np

    return Resample(np.asarray([v for runs in scores for v in runs], dtype=float)[None, :],
                    tuple(len(runs) for runs in scores))


def iqm(scores: Sequence[Sequence[float]]) -> float:
    """Interquartile mean of every score of every dataset (``scores[d]``: the runs of dataset d)."""
    return float(_iqm(_whole(scores))[0])


def _iqm(sample: Resample):
    """IQM of each replicate (it sorts ``sample.runs`` in place).

    ``scipy.stats.trim_mean(runs, 0.25, axis=1)``: the mean of the middle half, cut as scipy cuts
    (``int(0.25 n)`` at each end). The middle is taken from the sorted runs, not partitioned: numpy sorts
    rows of floats with SIMD, five times as fast as a two-point partition, and the sorted order is
    canonical (scipy's partition order may differ from it in the last bit of a mean)."""
    import numpy as np

    runs = sample.runs
    n = runs.shape[1]
    low = int(0.25 * n)
    if low >= n - low:  # scipy's rule: nothing left between the cuts
        raise ValueError("proportiontocut too big")
    runs.sort(axis=1)
    return np.mean(runs[:, low:n - low], axis=1)


def probability_of_improvement(x: Sequence[Sequence[float]], y: Sequence[Sequence[float]]) -> float:
    """P(X > Y): over datasets, the mean of P(x > y) for a run x of X and a run y of Y (ties count half)."""
    return float(_improvement(_whole(x), _whole(y))[0])


def _improvement(x: Resample, y: Resample):
    """P(X > Y) of each replicate: per dataset, the share of pairs (x, y) with x > y, ties counting half,
    counted in integers (2 wins + ties over 2 pairs: the exact share, rounded once)."""
    import numpy as np

    total = 0.0
    for a, b in zip(x.datasets(), y.datasets(), strict=True):
        a, b = np.ascontiguousarray(a)[:, :, None], np.ascontiguousarray(b)[:, None, :]
        wins, ties = (a > b).sum(axis=(1, 2)), (a == b).sum(axis=(1, 2))
        total = total + (2 * wins + ties) / (2 * a.shape[1] * b.shape[2])
    return total / len(x.sizes)


def stratified_bootstrap_ci(statistic, samples: Sequence[Sequence[Sequence[float]]], reps: int = BOOTSTRAP_SAMPLES,
                            seed: int = BOOTSTRAP_SEED, level: float = 0.95,
                            draws: Draws | None = None) -> tuple[float, float]:
    """Percentile interval of a statistic, each sample's runs resampled with replacement within each dataset.

    ``samples[k][d]`` holds the runs of dataset d for method k; each is resampled independently, as
    rliable's ``StratifiedIndependentBootstrap`` does. ``statistic`` takes one :class:`Resample` per sample
    and returns one value per replicate (``_iqm``, ``_improvement``). Calls that share ``draws`` reuse the
    positions they drew (the same numbers: see :class:`Draws`).
    """
    import numpy as np

    draws = draws or Draws(seed, reps)
    if (draws.seed, draws.reps) != (seed, reps):
        raise ValueError("draws were made for another seed or number of replicates")
    resamples, sizes_so_far = [], ()
    for sample in samples:
        sizes = tuple(len(runs) for runs in sample)
        values = np.asarray([v for runs in sample for v in runs], dtype=float)
        resamples.append(Resample(values[draws.positions(sizes_so_far, sizes)], sizes))
        sizes_so_far += sizes
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(statistic(*resamples), [tail, 100 - tail])
    return float(low), float(high)


class Draws:
    """The resampled positions of a bootstrap, shared between the calls of one table.

    The positions drawn for a dataset depend only on the seed and the run counts of the datasets drawn
    before it (one generator, datasets in order), so methods with the same counts get the same positions:
    drawn once here, and kept as one index into all of a method's runs, the counts tell which. Fifty
    methods with complete runs cost one draw; a method that lost a run shares the draws before it.
    """

    def __init__(self, seed: int = BOOTSTRAP_SEED, reps: int = BOOTSTRAP_SAMPLES, keep: int = 8) -> None:
        import numpy as np

        self.seed, self.reps, self.keep = seed, reps, keep
        self.rng = np.random.default_rng(seed)
        self.start = self.rng.bit_generator.state
        self.by_prefix: dict[tuple[int, ...], tuple[Any, dict]] = {}  # counts so far -> (positions, rng state)
        self.index: dict[tuple, Any] = {}  # (counts before, counts) -> the whole index, the last few

    def positions(self, before: tuple[int, ...], sizes: tuple[int, ...]):
        import numpy as np

        key = (before, sizes)
        if key not in self.index:
            prefix, parts, offset = before, [], 0
            for size in sizes:
                parts.append(self._draw(prefix, size) + offset)
                prefix, offset = prefix + (size,), offset + size
            if len(self.index) >= self.keep:
                self.index.pop(next(iter(self.index)))
            self.index[key] = np.concatenate(parts, axis=1)
        return self.index[key]

    def _draw(self, before: tuple[int, ...], size: int):
        import numpy as np

        key = before + (size,)
        if key not in self.by_prefix:
            self.rng.bit_generator.state = self.by_prefix[before][1] if before else self.start
            positions = self.rng.integers(0, size, (self.reps, size))
            small = np.int8 if size <= 127 else np.int16 if size <= 32767 else np.int64  # kept small
            self.by_prefix[key] = positions.astype(small), self.rng.bit_generator.state
        return self.by_prefix[key][0].astype(np.intp)


def nemenyi_critical_difference(k: int, n: int, alpha: float = ALPHA) -> float:
    """Demšar's critical difference of average ranks for k methods over n datasets:
    q_alpha sqrt(k (k + 1) / (6 n)), q_alpha the studentized range quantile over sqrt 2."""
    q = studentized_range_quantile(1 - alpha, k) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6 * n)))


def studentized_range_quantile(p: float, k: int) -> float:
    """``scipy.stats.studentized_range.ppf(p, k, inf)``: the p-quantile of the range of k standard normals.

    Its distribution function is F(q) = k ∫ φ(z) (Φ(z) - Φ(z - q))^(k-1) dz; the integrand is smooth and
    decays like φ, so the trapezoid rule on a fine grid is exact to about 1e-12, and F is increasing, so
    bisection finds q. Written out because ``scipy.stats`` takes half a second to import, a quarter of
    what ``losszoo compare`` may take over 10,000 runs; ``scipy.special`` is imported for the t-tests anyway.
    """
    import numpy as np
    from scipy.special import ndtr

    z = np.linspace(-12.0, 12.0, 2401)
    weight = np.exp(-z * z / 2) / math.sqrt(2 * math.pi) * (z[1] - z[0])
    below = ndtr(z)

    def cdf(q: float) -> float:
        return float(k * np.sum(weight * (below - ndtr(z - q)) ** (k - 1)))

    low, high = 0.0, 1.0
    while cdf(high) < p:
        high *= 2
    for _ in range(100):
        middle = (low + high) / 2
        if middle in (low, high):
            break
        low, high = (middle, high) if cdf(middle) < p else (low, middle)
    return (low + high) / 2


@dataclass
class Across:
    """One metric across datasets: per method, IQM with its interval, average rank; the test and the CD; with a
    baseline, each method's probability of improving on it.

    The bootstrap intervals are drawn when first read: a renderer that shows none of them (csv) pays nothing.
    """

    metric: str
    methods: list[str]
    datasets: list[str]
    iqm: list[float]
    average_rank: list[float]
    friedman_p: float
    critical_difference: float
    baseline: str | None = None
    scores: list[list[list[float]]] = field(default_factory=list, repr=False)  # [method][dataset]: the runs
    higher_is_better: bool = True

    @cached_property
    def iqm_ci(self) -> list[tuple[float, float]]:
        """Each method's 95% stratified bootstrap interval of its IQM."""
        draws = Draws()
        return [stratified_bootstrap_ci(_iqm, [s], draws=draws) for s in self.scores]

    @cached_property
    def improvement(self) -> list[tuple[float, float, float]] | None:
        """P(method > baseline) with its 95% stratified bootstrap interval, per method; None without a baseline."""
        if self.baseline is None:
            return None
        sign = 1.0 if self.higher_is_better else -1.0

        def flip(s: list[list[float]]) -> list[list[float]]:
            return [[sign * v for v in runs] for runs in s]

        base = flip(self.scores[self.methods.index(self.baseline)])
        out, draws = [], Draws()
        for s in self.scores:
            p = probability_of_improvement(flip(s), base)
            low, high = stratified_bootstrap_ci(_improvement, [flip(s), base], draws=draws)
            out.append((p, low, high))
        return out


def across_datasets(metric: str, methods: list[str], datasets: list[str], scores: list[list[list[float]]],
                    higher_is_better: bool, baseline: str | None = None) -> Across:
    """``scores[m][d]``: the runs of method m on dataset d (every method on every dataset)."""
    from losszoo.comparison import stats

    iqms = [iqm(s) for s in scores]
    # the rows' means as the table computes them, so that ties there are ties here
    means = [[stats.mean_std(scores[m][d])[0] for m in range(len(methods))] for d in range(len(datasets))]
    ranks = stats.average_ranks(means, higher_is_better)
    friedman = stats.friedman_p(means)
    cd = nemenyi_critical_difference(len(methods), len(datasets)) if len(methods) >= 2 else math.nan
    return Across(metric, methods, datasets, iqms, ranks, friedman, cd, baseline, scores, higher_is_better)


def method_name(label: dict[str, str], other: bool = False) -> str:
    """A row's label without its dataset: what is compared across datasets (``other``: keep the keys that
    are neither dataset, model, loss nor training, such as a plugin's content hash). A tuned loss is one
    method on every dataset, whatever values its tuning found on each: the ``tuned`` column describes, it
    does not name."""
    dropped = ("dataset", "experiment", "tuned") if other else ("dataset", "experiment", "other", "tuned")
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
