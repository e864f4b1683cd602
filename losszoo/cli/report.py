"""``losszoo report EXPERIMENT... -o report.html``: the comparison as one file to share."""

from __future__ import annotations

from pathlib import Path

import typer

from losszoo.cli import console as output
from losszoo.cli.console import warn
from losszoo.cli.paths import check_output_file
from losszoo.cli.plugins import PLUGINS_OPTION, load_cli_plugins
from losszoo.comparison.load import load
from losszoo.training.store import runs_dir


def report(
    experiments: list[str] = typer.Argument(..., help="experiment names (folders of the runs dir)"),
    out: Path = typer.Option(Path("report.html"), "--output", "-o", help="the HTML file to write"),
    metric: list[str] = typer.Option(None, "--metric", "-m", help="a column, as for compare; repeat for more"),
    baseline: str = typer.Option(None, "--baseline", help="across datasets: probability of improving on this row"),
    runs_dir_: Path = typer.Option(None, "--runs-dir", help="where runs are stored [default: $LOSSZOO_RUNS or ./runs]"),
    plugins: list[str] = PLUGINS_OPTION,
) -> None:
    """Write one self-contained HTML report: recipes, tables, plots, landscape figures, provenance, commands."""
    check_output_file(out, "--output", (".html", ".htm"))
    load_cli_plugins(plugins)
    loaded = load(runs_dir(runs_dir_), experiments, metric or None, baseline=baseline)
    for folder, why in loaded.skipped:
        warn(f"skipped {folder}: {why}")
    from losszoo.report import write_report

    write_report(loaded, out, "losszoo report: " + ", ".join(experiments))
    output.note(f"wrote {out}")
