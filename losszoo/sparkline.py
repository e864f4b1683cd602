"""Unicode sparklines: one block character per value, for tables.

One implementation for every table that draws a series in a cell: the
learning curves of ``losszoo compare`` and the loss profiles of ``losszoo
landscape``. Several series can share one scale (``sparklines``), so two
cells read against each other; ``log=True`` draws log10 of the values, so a
bowl stays a bowl when the loss spans decades.

    >>> sparkline([0, 1, 2, 3, 4, 5, 6, 7])
    '▁▂▃▄▅▆▇█'
    >>> sparkline([1.0, float("nan"), 3.0])
    '▁ █'
    >>> sparklines([[1, 10, 100], [1, 1, 1]], log=True)
    ['▁▅█', '▁▁▁']
    >>> sparkline([1.0, float("inf"), 2.0])
    '▁!█'
"""

from __future__ import annotations

import math
from collections.abc import Sequence

BLOCKS = "▁▂▃▄▅▆▇█"
FLAT = "▄"  # a constant series: a level line halfway up, not a floor that reads as "zero"
OFF_SCALE = "!"  # an infinite value: the series blew up there
LOG_FLOOR = 1e-12  # log scale: values at or below this (a loss of exactly 0) sit at the floor


def _finite_mean(values: list[float]) -> float:
    """The mean of the non-NaN values (an infinity stays infinite); NaN when there are none."""
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def _points(values: Sequence[float | None], width: int, log: bool) -> list[float]:
    """The values as floats (None and NaN: NaN), on the log scale if asked, squeezed to ``width`` by
    averaging neighbours: bucket i averages points[i*L/width : (i+1)*L/width]."""
    points = [math.nan if v is None or math.isnan(v) else float(v) for v in values]
    if log:
        points = [v if math.isnan(v) or v == math.inf else math.log10(max(v, LOG_FLOOR)) for v in points]
    if len(points) > width:
        points = [_finite_mean(points[i * len(points) // width:(i + 1) * len(points) // width]) for i in range(width)]
    return points


def sparklines(series: Sequence[Sequence[float | None]], width: int = 12, log: bool = False,
               missing: str = " ") -> list[str]:
    """One sparkline per series, all on one scale from the lowest to the highest finite value.

    Series longer than ``width`` are squeezed to ``width`` characters by averaging neighbours; shorter
    ones keep one character per value. None and NaN are ``missing`` (a space: a gap in a learning
    curve; the landscape passes "!", since there a NaN loss means the network blew up); an infinite
    value is "!". When every finite value is the same, the series are a flat line.
    """
    if width < 1:
        raise ValueError(f"sparkline width must be >= 1, got {width}")
    scaled = [_points(values, width, log) for values in series]
    finite = [v for points in scaled for v in points if math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 0.0)
    levels = len(BLOCKS)

    def block(v: float) -> str:
        if math.isnan(v):
            return missing
        if math.isinf(v):
            return OFF_SCALE
        if high == low:
            return FLAT
        return BLOCKS[min(levels - 1, int((v - low) / (high - low) * levels))]

    return ["".join(block(v) for v in points) for points in scaled]


def sparkline(values: Sequence[float | None], width: int = 12, log: bool = False) -> str:
    """The sparkline of one series on its own scale (see :func:`sparklines`)."""
    return sparklines([values], width, log)[0]
