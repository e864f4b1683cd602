"""The comparison as HTML tables, for the one-file report (``losszoo report``).

Every piece of text is escaped; markers are text, as in the terminal, and the
rank-1 and best cells also carry a class the report's style sheet colours.
"""

from __future__ import annotations

from html import escape
from typing import Any

from losszoo.comparison.render import LEGEND_MARKERS, cell_parts, header
from losszoo.comparison.render.text import across_cells, runs_text
from losszoo.comparison.table import Comparison


def comparison_table(comparison: Comparison, with_ci: bool = True) -> str:
    head = "".join(f"<th>{escape(k)}</th>" for k in comparison.label_columns)
    head += "".join(f'<th class="num">{escape(header(c))}</th>' for c in comparison.columns) + '<th class="num">n</th>'
    body = []
    for row in comparison.rows:
        cells = [f"<td>{escape(row.label[k])}</td>" for k in comparison.label_columns]
        for column in comparison.columns:
            cell = row.cells.get(column)
            if cell is None:
                cells.append('<td class="num missing">-</td>')
                continue
            mean, spread = cell_parts(cell, with_ci)
            kind = "best" if cell.best else "rank1" if cell.rank1 and cell.testable else "other"
            cells.append(f'<td class="num {kind}">{escape(mean)}<br><span class="spread">{escape(spread)}</span></td>')
        cells.append(f'<td class="num">{escape(runs_text(row))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    legend = [comparison.legend()[0], LEGEND_MARKERS, comparison.legend()[1]]
    if with_ci:
        legend[0] += "; [low, high]: 95% t interval, within the metric's range"
    parts = [f'<table class="comparison"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>',
             '<p class="legend">' + "<br>".join(escape(line) for line in legend) + "</p>"]
    parts += [f'<p class="warning">warning: {escape(w)}</p>' for w in comparison.warnings]
    parts += [f'<p class="note">{escape(n)}</p>' for n in comparison.notes]
    parts += [across_table(a) for a in comparison.across]
    return "\n".join(parts)


def across_table(across: Any) -> str:
    _, head, cells = across_cells(across)
    rows = ["<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in cells]
    caption = escape(f"across {len(across.datasets)} datasets ({', '.join(across.datasets)}): interquartile mean "
                     "with a stratified bootstrap interval, average rank (Friedman + Nemenyi)")
    return (f'<table class="across"><caption>{caption}</caption><thead><tr>'
            + "".join(f"<th>{escape(h)}</th>" for h in head) + f"</tr></thead><tbody>{''.join(rows)}</tbody></table>")
