"""``losszoo compare``: aggregate finished runs over seeds, as a table or data."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from losszoo.cli.console import console, err_console
from losszoo.comparison.table import Comparison, compare_results
from losszoo.errors import LosszooError
from losszoo.training.store import iter_results, runs_dir

FORMATS = ("table", "csv", "json", "md")


def _cell_text(cell, with_ci: bool) -> str:
    text = f"{cell.mean:.4f} ± {cell.std:.4f}"
    if with_ci and not math.isnan(cell.ci):
        text += f" [{cell.mean - cell.ci:.4f}, {cell.mean + cell.ci:.4f}]"
    return text


def _runs_text(row) -> str:
    failed = {k: v for k, v in row.statuses.items() if k != "completed"}
    done = row.statuses.get("completed", 0)
    return str(done) + (" (+" + ", ".join(f"{v} {k}" for k, v in failed.items()) + ")" if failed else "")


#: The val-curve sparkline column reads every run's metrics.jsonl: shown for tables a person reads.
SPARKLINE_MAX_ROWS = 60


def render_table(comparison: Comparison, with_ci: bool = False, title: str = "", root: Path | None = None) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold",
                  caption="mean ± std over n seeds; * best; bold: rank 1, not significantly worse than the best "
                          "(one-sided t-test, Holm-corrected, 5%)",
                  caption_justify="left")
    for key in comparison.group_by:
        table.add_column(key, style="cyan" if key in ("label", "loss.name") else None, no_wrap=True)
    for column in comparison.columns:
        table.add_column(column, justify="right")
    table.add_column("n", justify="right", no_wrap=True)
    curves = root is not None and comparison.columns and len(comparison.rows) <= SPARKLINE_MAX_ROWS
    if curves:
        from losszoo.comparison.curves import curve_metric, row_sparkline

        table.caption += f"; val curve: the seed-mean val {curve_metric(comparison.columns[0])} per epoch"
        table.add_column("val curve", no_wrap=True)
    for row in comparison.rows:
        cells = [str(row.group[k]) for k in comparison.group_by]
        for column in comparison.columns:
            cell = row.cells.get(column)
            if cell is None:
                cells.append(Text("-", style="dim"))
                continue
            text = _cell_text(cell, with_ci) + (" *" if cell.best else "  ")
            cells.append(Text(text, style="bold green" if cell.rank1 else ""))  # Text: no markup to parse
        cells.append(_runs_text(row))
        if curves:
            cells.append(row_sparkline(row, root, comparison.columns[0]))
        table.add_row(*cells)
    return table


def render(comparison: Comparison, fmt: str, with_ci: bool = False, title: str = "",
           root: Path | None = None) -> str | Table:
    if fmt == "table":
        return render_table(comparison, with_ci, title, root)
    records = comparison.records()
    if fmt == "json":
        return json.dumps({"rows": records, "warnings": comparison.warnings, "notes": comparison.notes}, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        if records:
            writer = csv.DictWriter(out, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
        return out.getvalue()
    # md: the table as a person reads it
    head = comparison.group_by + comparison.columns + ["n"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in comparison.rows:
        cells = [str(row.group[k]) for k in comparison.group_by]
        for column in comparison.columns:
            cell = row.cells.get(column)
            text = "-" if cell is None else _cell_text(cell, with_ci) + (" *" if cell.best else "")
            cells.append(f"**{text}**" if cell is not None and cell.rank1 else text)
        cells.append(_runs_text(row))
        lines.append("| " + " | ".join(cells) + " |")
    lines += [f"\n> {w}" for w in comparison.warnings] + [f"\n{n}" for n in comparison.notes]
    return "\n".join(lines) + "\n"


def render_experiment(experiment: str, root: Path) -> None:
    """The comparison table `losszoo train` ends with."""
    results, _ = iter_results(root, [experiment])
    if results:  # the recipe's plugins are loaded already
        # The metrics every loss reports; `losszoo compare` shows the rest.
        shared = set.intersection(*(set((r.get("metrics") or {}).get("test", {})) for r in results))
        order = [m for m in (results[0].get("metrics") or {}).get("test", {}) if m in shared]
        comparison = compare_results(results, metrics=order or None)
        console.print(render_table(comparison, title=f"experiment {experiment}", root=root))
        for warning in comparison.warnings:
            err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)


def compare(
    experiments: list[str] = typer.Argument(None, help="experiment names (folders of the runs dir); all if none"),
    metric: list[str] = typer.Option(None, "--metric", "-m", help="a column: accuracy (= test.accuracy), "
                                     "val.macro_f1, ...; repeat for more"),
    group_by: str = typer.Option(None, "--group-by", help="comma-separated keys, e.g. dataset,loss.name"),
    sort: str = typer.Option(None, "--sort", help="a column or group key to sort by (best first)"),
    filter_: list[str] = typer.Option([], "--filter", help="keep runs where key=value (or key!=value); repeatable"),
    fmt: str = typer.Option("table", "--format", help="table, csv, json or md"),
    ci: bool = typer.Option(False, "--ci", help="add the 95% confidence interval (t distribution)"),
    plot: Path = typer.Option(None, "--plot", help="write learning curves and a bar chart to this PNG"),
    runs_dir_: Path = typer.Option(None, "--runs-dir", help="where runs are stored [default: $LOSSZOO_RUNS or ./runs]"),
) -> None:
    """Aggregate finished runs over seeds: mean ± std, n, rank groups; best per column."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}", param_hint="--format")
    root = runs_dir(runs_dir_)
    if experiments:
        missing = [e for e in experiments if not (root / e).is_dir()]
        if missing:
            from losszoo.registry import close_matches

            known = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
            raise LosszooError(f"no experiment {missing[0]!r} in {root}{close_matches(missing[0], known)}"
                               + (f" (experiments: {', '.join(known)})" if known else ""))
    results, skipped = iter_results(root, experiments or None)
    for folder in skipped:
        err_console.print(f"[yellow]warning:[/] skipped {folder}: no finished result.json", highlight=False)
    from losszoo.plugins import load_plugins_of

    for warning in load_plugins_of(results):
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if not results:
        raise LosszooError(f"no finished runs in {root}" + (f" for {', '.join(experiments)}" if experiments else "")
                           + "; train a recipe first: losszoo train RECIPE.yaml")
    comparison = compare_results(
        results, metrics=metric or None, group_by=group_by.split(",") if group_by else None, sort=sort,
        filters=filter_,
    )
    if not comparison.rows:
        raise LosszooError("no runs match the filters")
    output = render(comparison, fmt, ci, title=", ".join(experiments) if experiments else str(root), root=root)
    if fmt == "table":
        console.print(output)
        for line in comparison.notes:
            console.print(line, style="dim", highlight=False)
        for warning in comparison.warnings:
            err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    else:
        typer.echo(output, nl=False)
    if plot is not None:
        from losszoo.comparison.plot import plot_comparison

        plot_comparison(comparison, root, plot)
        err_console.print(f"wrote {plot}", style="dim")
