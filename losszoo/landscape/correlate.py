"""Does a landscape figure predict generalization? Kendall's rank correlation with a bootstrap interval.

Jiang, Neyshabur, Mobahi, Krishnan and Bengio (Fantastic Generalization
Measures and Where to Find Them, ICLR 2020) rank measures such as sharpness by
Kendall's tau between the measure and the generalization gap over many trained
networks. Here ``x`` and ``y`` are paired values, one pair per run.

Kendall's tau-b (Kendall 1945, the version with ties, as ``scipy.stats.kendalltau``):

    tau_b = (C - D) / sqrt((n0 - n1) (n0 - n2))

with ``C - D = sum_{i<j} sign(x_i - x_j) sign(y_i - y_j)``, ``n0 = n (n - 1) / 2``
pairs, ``n1`` and ``n2`` the pairs tied in ``x`` and in ``y``. The 95% interval is
the percentile bootstrap over pairs (Efron 1979): resample the n pairs with
replacement, recompute tau_b, take the 2.5% and 97.5% quantiles. Resamples
repeat pairs, which are ties in both variables; tau_b counts them as such.

>>> result = kendall_tau_with_ci([1, 2, 3, 4, 5], [1, 3, 2, 4, 5], n_boot=200)
>>> round(result.tau, 3)
0.8
>>> result.low <= result.tau <= result.high
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Bootstrap resamples computed together: n_boot x n x n entries per chunk stay small.
_CHUNK_ENTRIES = 2**22


@dataclass(frozen=True)
class KendallTau:
    """Kendall's tau-b of ``n`` pairs, and its percentile bootstrap interval at ``confidence``."""

    tau: float
    low: float
    high: float
    n: int
    n_boot: int
    confidence: float = 0.95


def _signs(values: np.ndarray) -> np.ndarray:
    """``sign(v_i - v_j)`` for every i, j, as int8."""
    return np.sign(values[:, None] - values[None, :]).astype(np.int8)


def _tau_b(sx: np.ndarray, sy: np.ndarray) -> np.ndarray:
    """tau_b of each resample from its pairwise sign matrices, shape (..., n, n); NaN where a variable
    is constant (tau is undefined)."""
    n = sx.shape[-1]
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    concordance = (sx.astype(np.int64) * sy)[..., upper].sum(-1)
    untied_x = (sx[..., upper] != 0).sum(-1)
    untied_y = (sy[..., upper] != 0).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return concordance / np.sqrt(untied_x.astype(float) * untied_y)


def kendall_tau_with_ci(x: Sequence[float], y: Sequence[float], n_boot: int = 2000, seed: int = 0,
                        confidence: float = 0.95) -> KendallTau:
    """Kendall's tau-b of the pairs ``(x_i, y_i)`` and a percentile bootstrap interval over pairs.

    Pairs where either value is NaN or infinite are left out. With fewer than 2 pairs, or a constant
    variable, tau is NaN; the interval is NaN where more than half of the resamples are undefined
    (otherwise the undefined ones are left out of the quantiles).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError(f"x and y must be paired 1-D sequences, got shapes {xs.shape} and {ys.shape}")
    keep = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[keep], ys[keep]
    n = len(xs)
    if n < 2:
        return KendallTau(math.nan, math.nan, math.nan, n, n_boot, confidence)
    sx, sy = _signs(xs), _signs(ys)
    tau = float(_tau_b(sx, sy))

    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ENTRIES // (n * n))
    taus = []
    for start in range(0, n_boot, chunk):
        index = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        # the sign matrix of a resample is the original one read at the resampled rows and columns
        rows, cols = index[:, :, None], index[:, None, :]
        taus.append(_tau_b(sx[rows, cols], sy[rows, cols]))
    boot = np.concatenate(taus)
    defined = boot[np.isfinite(boot)]
    if len(defined) * 2 < n_boot:
        return KendallTau(tau, math.nan, math.nan, n, n_boot, confidence)
    tail = (1 - confidence) / 2
    low, high = np.quantile(defined, [tail, 1 - tail])
    return KendallTau(tau, float(low), float(high), n, n_boot, confidence)
