"""Renderers of a :class:`~losszoo.comparison.table.Comparison`: they format, never compute.

``terminal`` (Rich tables that fit any width), ``text`` (csv, json, CommonMark)
and ``html`` (the one-file report). Shared here: how a number and a cell read.
"""

from __future__ import annotations

import math

from losszoo.comparison.table import Cell

#: Markers after a cell's numbers, in every renderer (the legend explains them).
BEST, RANK1, UNTESTED = "*", "+", "?"


def number(value: float) -> str:
    """Four decimals for the usual metric; significant digits for large or tiny figures (Hessian eigenvalues)."""
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1000 or abs(value) < 1e-3):
        return f"{value:.4g}"
    return f"{value:.4f}"


def marker(cell: Cell) -> str:
    """``*`` best, ``+`` rank 1 (not best), ``?`` a single run; a best single run reads ``*?``."""
    if not cell.testable:
        return BEST + UNTESTED if cell.best else UNTESTED
    if cell.best:
        return BEST
    return RANK1 if cell.rank1 else ""


def cell_parts(cell: Cell, with_ci: bool) -> tuple[str, str]:
    """The mean with its marker, and the spread (``± std`` and the interval), as two pieces that may
    share a line or stack."""
    head = number(cell.mean) + (f" {marker(cell)}" if marker(cell) else "")
    if not cell.testable:
        return head, ""
    spread = f"± {number(cell.std)}"
    if with_ci and cell.ci is not None:
        spread += f" [{number(cell.ci[0])}, {number(cell.ci[1])}]"
    return head, spread


def header(column: str) -> str:
    """``test.accuracy`` reads ``accuracy`` (the test split is the default and the legend says so)."""
    return column.removeprefix("test.")


LEGEND_MARKERS = (f"{BEST} best mean of its block (ties share it); {RANK1} rank 1: not significantly worse than any "
                  f"other row of its block; {UNTESTED} a single run (n = 1): no spread, cannot be tested")
