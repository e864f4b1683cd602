"""``losszoo compare``: the comparison of finished runs, as tables or data.

The CLI parses, calls ``comparison.load`` and renders; the statistics live in
``losszoo.comparison``."""

from __future__ import annotations

from pathlib import Path

import typer

from losszoo.cli import console as output
from losszoo.cli.console import console, warn
from losszoo.cli.paths import check_output_file
from losszoo.cli.plugins import PLUGINS_OPTION, load_cli_plugins
from losszoo.comparison.load import Loaded, load
from losszoo.training.store import runs_dir

FORMATS = ("table", "csv", "json", "md")
PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def _keys(text: str | None) -> list[str] | None:
    return [k.strip() for k in text.split(",") if k.strip()] if text else None


def print_comparison(loaded: Loaded, fmt: str = "table", with_ci: bool = False, title: str = "",
                     curves: bool = True) -> None:
    """The comparison on stdout in ``fmt``; warnings on stderr."""
    from losszoo.comparison.render import text

    comparison = loaded.comparison
    if fmt == "table":
        from losszoo.comparison.render.terminal import render_tables

        for table in render_tables(comparison, console.width, title, loaded.root if curves else None, with_ci):
            console.print(table)
        for line in comparison.notes:
            console.print(line, style="dim")
        for across in comparison.across:
            console.print(text.across_markdown(across))
    elif fmt == "md":
        console.file.write(text.to_markdown(comparison, with_ci))
    else:
        console.file.write(text.to_json(comparison) if fmt == "json" else text.to_csv(comparison))
    console.file.flush()
    for warning in comparison.warnings:
        warn(warning)


def render_experiment(experiment: str, root: Path) -> None:
    """The comparison table `losszoo train` ends with: what `losszoo compare EXPERIMENT` prints (nothing yet,
    when another process holds every run: then a note)."""
    from losszoo.training.store import iter_results

    if not iter_results(root, [experiment])[0]:
        output.note(f"no finished runs of {experiment} yet: another process is training them; run the same "
                    "command again later for the table")
        return
    print_comparison(load(root, [experiment]), title=f"experiment {experiment}")


def compare(
    experiments: list[str] = typer.Argument(None, help="experiment names (folders of the runs dir); all if none"),
    metric: list[str] = typer.Option(None, "--metric", "-m", help="a column: accuracy (= test.accuracy), "
                                     "val.macro_f1, ...; repeat for more"),
    group_by: str = typer.Option(None, "--group-by", help="comma-separated keys that make a row, e.g. "
                                 "dataset,loss.name (pools every other difference; the table says which)"),
    block_by: str = typer.Option(None, "--block-by", help="comma-separated keys held fixed within a block of "
                                 "rows ranked together [default: the dataset configuration]"),
    sort: str = typer.Option(None, "--sort", help="a column or label to sort by (best first)"),
    filter_: list[str] = typer.Option([], "--filter", help="keep runs where key=value (or key!=value); repeatable"),
    baseline: str = typer.Option(None, "--baseline", help="across datasets: each row's probability of improving "
                                 "on this row (its label without the dataset)"),
    fmt: str = typer.Option("table", "--format", help="table, csv, json or md"),
    ci: bool = typer.Option(False, "--ci", help="add the 95% confidence interval (t distribution)"),
    plot: Path = typer.Option(None, "--plot", help="write learning curves and a bar chart to this file "
                              "(.png, .svg or .pdf); with several datasets also FILE-cd.png, the "
                              "critical-difference diagram"),
    runs_dir_: Path = typer.Option(None, "--runs-dir", help="where runs are stored [default: $LOSSZOO_RUNS or ./runs]"),
    plugins: list[str] = PLUGINS_OPTION,
) -> None:
    """Aggregate finished runs over seeds: mean ± std, n, rank groups; best per column."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}", param_hint="--format")
    if plot is not None:
        check_output_file(plot, "--plot", PLOT_SUFFIXES)
    load_cli_plugins(plugins)
    root = runs_dir(runs_dir_)
    loaded = load(root, experiments or None, metric or None, _keys(group_by), _keys(block_by), sort, filter_,
                  baseline)
    for folder, why in loaded.skipped:
        warn(f"skipped {folder}: {why}")
    title = ", ".join(experiments) if experiments else str(root)
    print_comparison(loaded, fmt, ci, title)
    if plot is not None:
        from losszoo.comparison.plot import plot_comparison, plot_critical_difference

        plot_comparison(loaded.comparison, root, plot)
        written = [plot]
        for across in loaded.comparison.across[:1]:
            written.append(plot_critical_difference(across, plot.with_name(f"{plot.stem}-cd{plot.suffix}")))
        output.note("wrote " + ", ".join(str(p) for p in written))
