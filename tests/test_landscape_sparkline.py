"""``losszoo.sparkline``, the one sparkline of every table, against a slow obvious drawing."""

from __future__ import annotations

import math

import pytest

from losszoo.sparkline import BLOCKS, FLAT, sparkline, sparklines


def obvious(series: list[list[float]], width: int, log: bool = False, missing: str = " ") -> list[str]:
    """Scale every finite value (log10 if asked) from the lowest to the highest over all series, after
    averaging consecutive buckets down to ``width``; eight levels."""
    scaled = []
    for values in series:
        values = [math.nan if v is None else float(v) for v in values]
        if log:
            values = [v if math.isnan(v) or v == math.inf else math.log10(max(v, 1e-12)) for v in values]
        if len(values) > width:
            squeezed = []
            for i in range(width):
                bucket = [v for v in values[i * len(values) // width:(i + 1) * len(values) // width]
                          if not math.isnan(v)]
                squeezed.append(sum(bucket) / len(bucket) if bucket else math.nan)
            values = squeezed
        scaled.append(values)
    finite = [v for s in scaled for v in s if math.isfinite(v)]
    out = []
    for s in scaled:
        line = ""
        for v in s:
            if math.isnan(v):
                line += missing
            elif math.isinf(v):
                line += "!"
            elif max(finite) == min(finite):
                line += FLAT
            else:
                level = int((v - min(finite)) / (max(finite) - min(finite)) * 8)
                line += BLOCKS[min(level, 7)]
        out.append(line)
    return out


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("log", [False, True])
def test_sparklines_match_the_obvious_drawing(seed, log):
    import random

    rng = random.Random(seed)
    series = [[rng.choice([rng.uniform(1e-4, 50), math.nan, None]) if rng.random() < 0.15 else rng.uniform(1e-4, 50)
               for _ in range(rng.randint(3, 60))] for _ in range(3)]
    for width in (5, 12, 25):
        assert sparklines(series, width, log=log) == obvious(series, width, log)


def test_a_shared_scale_keeps_series_comparable():
    low, high = sparklines([[1, 1, 1], [1, 2, 3]])
    assert low == "▁▁▁" and high == "▁▅█"
    assert sparkline([5, 5, 5]) == FLAT * 3


def test_blown_up_values_and_missing_ones():
    assert sparkline([1.0, math.inf, 2.0], log=True) == "▁!█"
    assert sparklines([[1.0, math.nan, 2.0]], missing="!") == ["▁!█"]
    assert sparkline([None, None]) == "  "
    with pytest.raises(ValueError, match="width"):
        sparkline([1, 2], width=0)
