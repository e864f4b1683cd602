"""The comparison as Rich tables that fit the terminal, whatever its width.

Numbers are never cut. When the table is too wide, in this order: the
val-curve sparkline goes; each cell's ``± std`` moves under its mean; the
metric columns are split over several tables (each repeating the row labels);
last, long row labels wrap. Label columns that hold one value for every row
move into the title. Rank markers are text (``*``, ``+``, ``?``), so they
survive pipes and logs; colour only repeats them. The legend follows the
tables as text that wraps at the terminal's width.

Every width is computed here, so a table that fits is drawn line by line
(:class:`Drawn`, character for character what Rich would draw, a thousand
rows in a tenth of the time); one whose labels must wrap is Rich's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
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
    natural_labels = sum(_natural_label(comparison, k) + 3 for k in labels)
    for layout in (_Layout(True, False), _Layout(False, False), _Layout(False, True)):
        if layout.curves and not sparks:
            continue
        n_width = max(cell_len(line) for r in comparison.rows for line in runs_text(r, layout.stacked).split("\n"))
        fixed = n_width + 3 + 1  # the n column (runs, failures) and the table's edge
        widths = [_column_width(comparison, c, layout.stacked, with_ci) for c in comparison.columns]
        natural = natural_labels + fixed + sum(w + 3 for w in widths) + (SPARKLINE_WIDTH + 3 if layout.curves else 0)
        if natural <= width or layout.stacked:
            break
    # Split the metric columns over tables beside whole labels; labels wrap only where not one column would fit.
    whole_labels = natural_labels + fixed + max(widths, default=0) + 3 <= width
    label_width = fixed + (natural_labels if whole_labels else sum(
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
        table = _table(comparison, labels, columns, layout, full_title + part, sparks if layout.curves else {},
                       with_ci, dict(zip(comparison.columns, widths, strict=True)), whole_labels, n_width)
        tables.append(Drawn(table) if whole_labels else table)
    return [*tables, Text(_legend(comparison, bool(sparks) and layout.curves, with_ci), style="dim")]


def _natural_label(comparison: Comparison, key: str) -> int:
    return max([cell_len(key)] + [cell_len(r.label[key]) for r in comparison.rows])


def _column_width(comparison: Comparison, column: str, stacked: bool, with_ci: bool) -> int:
    width = cell_len(header(column))
    for row in comparison.rows:
        cell = row.cells.get(column)
        if cell is None:
            continue
        head, spread = cell_parts(cell, with_ci)
        width = max(width, max(len(head), len(spread)) if stacked else len(head) + 1 + len(spread))
    return width


class Drawn:
    """A table whose columns all have a fixed width that fits, drawn line by line as ``rich.table.Table`` draws
    it (the same characters; the same styles on every character but padding). Rich measures, wraps, pads and
    crops each cell on its own: half a second for the thousand rows of ``compare`` over 10,000 runs, where a
    row here is a few segments. A table that does not fit, or whose widths are not all fixed, draws itself."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table, columns = self.table, self.table.columns
        widths = [c.width + 2 for c in columns if c.width is not None]  # padding (0, 1)
        table_width = sum(widths) + len(widths) + 1
        if len(widths) < len(columns) or table_width > options.max_width or not table.box or table.show_footer:
            yield table
            return
        box = table.box.substitute(options, safe=console.safe_box if table.safe_box is None else table.safe_box)
        if table.title:
            title = console.render_str(table.title, style="table.title", highlight=False)
            yield from console.render(title, options.update(width=table_width, justify=table.title_justify,
                                                            highlight=False, height=None))
        line = Segment.line()
        yield Segment(box.get_top(widths))
        yield line
        header_style = console.get_style(table.header_style or "")
        rows = [[(header_style + console.get_style(c.header_style), c.header) for c in columns]]
        styles = [console.get_style(c.style or "") for c in columns]
        rows += [[(style, c._cells[r]) for c, style in zip(columns, styles, strict=True)]
                 for r in range(table.row_count)]
        for index, row in enumerate(rows):
            left, divider, right = ((box.head_left, box.head_vertical, box.head_right) if index == 0 else
                                    (box.foot_left, box.foot_vertical, box.foot_right) if index == len(rows) - 1 else
                                    (box.mid_left, box.mid_vertical, box.mid_right))
            cells = [_cell_lines(console, renderable, style, width - 2, column.justify)
                     for (style, renderable), width, column in zip(row, widths, columns, strict=True)]
            for line_no in range(max(len(c) for c in cells)):
                yield Segment(left)
                for k, (cell, (style, _)) in enumerate(zip(cells, row, strict=True)):
                    if k:
                        yield Segment(divider)
                    yield from cell[line_no] if line_no < len(cell) else [Segment(" " * widths[k], style)]
                yield Segment(right)
                yield line
            if index == 0:
                yield Segment(box.get_row(widths, "head", edge=True))
                yield line
        yield Segment(box.get_bottom(widths))
        yield line


def _cell_lines(console: Console, renderable: Text | str, style: Style, width: int,
                justify: str | None) -> list[list[Segment]]:
    """One cell's lines as Rich pads them: a space each side, the text justified with its own style."""
    text = console.render_str(renderable, highlight=False) if isinstance(renderable, str) else renderable
    base = style + console.get_style(text.style) if text.style else style
    pad = Segment(" ", style)
    out = []
    for part in text.split("\n", allow_blank=True) if text.spans or "\n" in text.plain else [text]:
        # a line of one style (every cell of the table) is one segment; spans go through Rich's own render
        segments = (list(Segment.apply_style(part.render(console), style)) if part.spans
                    else [Segment(part.plain, base)] if part.plain else [])
        fill = Segment(" " * (width - part.cell_len), base)
        out.append([pad, fill, *segments, pad] if justify == "right" else [pad, *segments, fill, pad])
    return out


def _sparklines(comparison: Comparison, root: Path) -> dict[int, str]:
    from losszoo.comparison.curves import row_sparkline, selection_metric

    column = comparison.columns[0]
    return {id(row): row_sparkline(row, root, selection_metric(row, column), SPARKLINE_WIDTH)
            for row in comparison.rows}


def _table(comparison: Comparison, labels: list[str], columns: list[str], layout: _Layout, title: str,
           sparks: dict[int, str], with_ci: bool, widths: dict[str, int], whole_labels: bool, n_width: int) -> Table:
    # Every width is known here: given to Rich, it need not measure each of a thousand rows' cells again.
    table = Table(title=title, title_justify="left", header_style="bold")
    for key in labels:
        if whole_labels:
            table.add_column(key, style="cyan" if key == "label" else None, no_wrap=True,
                             width=_natural_label(comparison, key))
        else:
            table.add_column(key, style="cyan" if key == "label" else None, overflow="fold", min_width=min(
                _LABEL_MIN, _natural_label(comparison, key)))
    for column in columns:
        table.add_column(header(column), justify="right", no_wrap=True, width=widths[column])
    table.add_column("n", justify="right", no_wrap=True, width=n_width)
    if sparks:
        table.add_column("val curve", no_wrap=True, width=max(SPARKLINE_WIDTH, len("val curve")))
    for row in comparison.rows:
        cells: list[Text | str] = [row.label[k] for k in labels]
        cells += [_cell(row, column, layout.stacked, with_ci) for column in columns]
        cells.append(runs_text(row, layout.stacked))
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
