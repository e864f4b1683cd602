"""csv, json and CommonMark renderings of a comparison (``compare --format``)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from losszoo.comparison.render import LEGEND_MARKERS, cell_parts, header, number
from losszoo.comparison.table import Comparison


def to_json(comparison: Comparison) -> str:
    data = {"rows": comparison.records(), "legend": [*comparison.legend(), LEGEND_MARKERS],
            "warnings": comparison.warnings, "notes": comparison.notes,
            "across_datasets": [_across(a) for a in comparison.across]}
    if comparison.correlation is not None:
        data["correlation"] = comparison.correlation.record()
    return json.dumps(data, indent=2, default=str) + "\n"


def _across(across: Any) -> dict[str, Any]:
    rows = []
    for i, method in enumerate(across.methods):
        row = {"method": method, "iqm": across.iqm[i], "iqm_ci95_low": across.iqm_ci[i][0],
               "iqm_ci95_high": across.iqm_ci[i][1], "average_rank": across.average_rank[i]}
        if across.improvement is not None:
            p, low, high = across.improvement[i]
            row.update(probability_of_improvement=p, improvement_ci95_low=low, improvement_ci95_high=high)
        rows.append(row)
    return {"metric": across.metric, "datasets": across.datasets, "baseline": across.baseline,
            "friedman_p": across.friedman_p, "critical_difference": across.critical_difference, "methods": rows}


def to_csv(comparison: Comparison) -> str:
    records = comparison.records()
    out = io.StringIO()
    if records:
        writer = csv.DictWriter(out, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return out.getvalue()


def _md_escape(text: str) -> str:
    """Literal text in a CommonMark table cell: no emphasis, links or column breaks from user text."""
    for char in "\\`*_[]<>|#+!~":
        text = text.replace(char, "\\" + char)
    return text


def to_markdown(comparison: Comparison, with_ci: bool = False) -> str:
    """A CommonMark (GFM) table with the legend below; rank markers are escaped text, bold only adds."""
    head = comparison.label_columns + [header(c) for c in comparison.columns] + ["n"]
    lines = ["| " + " | ".join(_md_escape(h) for h in head) + " |", "|" + "---|" * len(head)]
    for row in comparison.rows:
        cells = [_md_escape(row.label[k]) for k in comparison.label_columns]
        for column in comparison.columns:
            cell = row.cells.get(column)
            if cell is None:
                cells.append("-")
                continue
            text = _md_escape(" ".join(p for p in cell_parts(cell, with_ci) if p))
            cells.append(f"**{text}**" if cell.rank1 and cell.testable else text)
        cells.append(_md_escape(runs_text(row)))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    first, *rest = comparison.legend()
    lines += [_md_escape(line) + "  " for line in (first, LEGEND_MARKERS, *rest)]
    lines += [""] + [f"> {_md_escape(w)}" for w in comparison.warnings]
    lines += [""] + [_md_escape(n) for n in comparison.notes]
    for across in comparison.across:
        lines += ["", across_markdown(across)]
    return "\n".join(lines).rstrip() + "\n"


def across_cells(across: Any) -> tuple[str, list[str], list[list[str]]]:
    """The across-datasets table as plain text: its title, header and rows (every renderer's one source)."""
    head = ["method", f"IQM {header(across.metric)} [95% CI]", "average rank"]
    if across.improvement is not None:
        head.append(f"P(better than {across.baseline}) [95% CI]")
    rows = []
    for i, method in enumerate(across.methods):
        low, high = across.iqm_ci[i]
        cells = [method, f"{number(across.iqm[i])} [{number(low)}, {number(high)}]", f"{across.average_rank[i]:.2f}"]
        if across.improvement is not None:
            p, lo, hi = across.improvement[i]
            cells.append(f"{p:.2f} [{lo:.2f}, {hi:.2f}]")
        rows.append(cells)
    return f"Across {len(across.datasets)} datasets ({', '.join(across.datasets)}):", head, rows


def across_markdown(across: Any) -> str:
    """User text escaped; the brackets of "[95% CI]" are no link."""
    title, head, rows = across_cells(across)
    lines = [_md_escape(title), "", "| " + " | ".join(_md_escape(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_md_escape(c) for c in cells) + " |" for cells in rows]
    return "\n".join(lines)


def runs_text(row: Any, stacked: bool = False) -> str:
    """The completed runs, and those left out: ``3 (+1 diverged)``; ``stacked``, one part a line."""
    failed = {k: v for k, v in row.statuses.items() if k != "completed"}
    done = row.statuses.get("completed", 0)
    if not failed:
        return str(done)
    return str(done) + ("\n(+" if stacked else " (+") + (",\n" if stacked else ", ").join(
        f"{v} {k}" for k, v in failed.items()) + ")"
