"""The comparison as Rich tables that fit the terminal, whatever its width.

Numbers are never cut. When the table is too wide, in this order: the
val-curve sparkline goes; each cell's ``± std`` moves under its mean; the
metric columns are split over several tables (each repeating the row labels);
last, long row labels wrap. Label columns that hold one value for every row
move into the title. Rank markers are text (``*``, ``+``, ``?``), so they
survive pipes and logs; colour only repeats them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.table import Table
from rich.text import Text

from losszoo.comparison.render import LEGEND_MARKERS, cell_parts, header
from losszoo.comparison.render.text import runs_text
from losszoo.comparison.table import Comparison, Row

#: The val-curve sparkline reads every run's metrics.jsonl: shown for tables a person reads.
SPARKLINE_MAX_ROWS = 60
SPARKLINE_WIDTH = 12
_LABEL_MIN = 12  # a label column wraps down to this width before a table is split


@dataclass
class _Layout:
    curves: bool
    stacked: bool


def render_tables(comparison: Comparison, width: int, title: str = "", root: Path | None = None,
                  with_ci: bool = False) -> list[Table | Text]:
    """One table when it fits ``width`` columns, else several, each with the row labels; then the legend
    (as text that wraps at the console's width, not at the table's, as a caption would)."""
    constant = {k: comparison.rows[0].label[k] for k in comparison.label_columns
                if len({r.label[k] for r in comparison.rows}) == 1 and len(comparison.rows) > 1}
    labels = [k for k in comparison.label_columns if k not in constant]
    full_title = ", ".join([title] * bool(title) + [f"{k} {v}" for k, v in constant.items()])
    curves_possible = root is not None and bool(comparison.columns) and len(comparison.rows) <= SPARKLINE_MAX_ROWS
    sparks = _sparklines(comparison, root) if curves_possible else {}
    if not any(sparks.values()):  # no run logged a curve: no empty column
        sparks = {}
    fixed = max(len(runs_text(r)) for r in comparison.rows) + 3 + 1  # the n column (runs, failures), the edge
    natural_labels = sum(_natural_label(comparison, k) + 3 for k in labels)
    for layout in (_Layout(True, False), _Layout(False, False), _Layout(False, True)):
        if layout.curves and not sparks:
            continue
        widths = [_column_width(comparison, c, layout.stacked, with_ci) for c in comparison.columns]
        natural = natural_labels + fixed + sum(w + 3 for w in widths) + (SPARKLINE_WIDTH + 3 if layout.curves else 0)
        if natural <= width or layout.stacked:
            break
    # Split the metric columns over tables beside whole labels; labels wrap only where not one column would fit.
    label_width = fixed + (natural_labels if natural_labels + fixed + max(widths, default=0) + 3 <= width else sum(
        min(_natural_label(comparison, k), max(len(k), _LABEL_MIN)) + 3 for k in labels))
    chunks: list[list[str]] = [[]]
    used = label_width
    for column, w in zip(comparison.columns, widths, strict=True):
        if chunks[-1] and used + w + 3 > width:
            chunks.append([])
            used = label_width
        chunks[-1].append(column)
        used += w + 3
    tables = []
    for i, columns in enumerate(chunks):
        part = f" ({i + 1}/{len(chunks)})" if len(chunks) > 1 else ""
        tables.append(_table(comparison, labels, columns, layout, full_title + part, sparks if layout.curves
                             else {}, with_ci))
    return [*tables, Text(_legend(comparison, bool(sparks) and layout.curves, with_ci), style="dim")]


def _natural_label(comparison: Comparison, key: str) -> int:
    return max([len(key)] + [len(r.label[key]) for r in comparison.rows])


def _column_width(comparison: Comparison, column: str, stacked: bool, with_ci: bool) -> int:
    width = len(header(column))
    for row in comparison.rows:
        cell = row.cells.get(column)
        if cell is None:
            continue
        head, spread = cell_parts(cell, with_ci)
        width = max(width, max(len(head), len(spread)) if stacked else len(head) + 1 + len(spread))
    return width


def _sparklines(comparison: Comparison, root: Path) -> dict[int, str]:
    from losszoo.comparison.curves import row_sparkline, selection_metric

    column = comparison.columns[0]
    return {id(row): row_sparkline(row, root, selection_metric(row, column), SPARKLINE_WIDTH)
            for row in comparison.rows}


def _table(comparison: Comparison, labels: list[str], columns: list[str], layout: _Layout, title: str,
           sparks: dict[int, str], with_ci: bool) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for key in labels:
        table.add_column(key, style="cyan" if key == "label" else None, overflow="fold", min_width=min(
            _LABEL_MIN, _natural_label(comparison, key)))
    for column in columns:
        table.add_column(header(column), justify="right", no_wrap=True)
    table.add_column("n", justify="right", no_wrap=True)
    if sparks:
        table.add_column("val curve", no_wrap=True)
    for row in comparison.rows:
        cells: list[Text | str] = [row.label[k] for k in labels]
        cells += [_cell(row, column, layout.stacked, with_ci) for column in columns]
        cells.append(runs_text(row))
        if sparks:
            cells.append(sparks[id(row)])
        table.add_row(*cells)
    return table


def _cell(row: Row, column: str, stacked: bool, with_ci: bool) -> Text:
    cell = row.cells.get(column)
    if cell is None:
        return Text("-", style="dim")
    head, spread = cell_parts(cell, with_ci)
    text = head if not spread else (f"{head}\n{spread}" if stacked else f"{head} {spread}")
    return Text(text, style="bold green" if cell.rank1 and cell.testable else "")


def _legend(comparison: Comparison, curves: bool, with_ci: bool) -> str:
    first, *rest = comparison.legend()
    lines = [first, LEGEND_MARKERS, *rest]
    if comparison.columns and all(c.startswith("test.") for c in comparison.columns):
        lines[0] += "; metrics on the test split"
    if with_ci:
        lines[0] += "; [low, high]: 95% t interval of the mean, within the metric's range"
    if curves:
        lines.append("val curve: the seed-mean validation metric that picks each run's epoch, per epoch")
    return "\n".join(lines)
