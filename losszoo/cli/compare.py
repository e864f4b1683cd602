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
            console.print(_across_table(across))
    elif fmt == "md":
        console.file.write(text.to_markdown(comparison, with_ci))
    else:
        console.file.write(text.to_json(comparison) if fmt == "json" else text.to_csv(comparison))
    console.file.flush()
    for warning in comparison.warnings:
        warn(warning)


def _across_table(across) -> object:
    """The across-datasets table for a terminal: the cells ``--format md`` writes, as a Rich table."""
    from rich.table import Table

    from losszoo.comparison.render.text import across_cells

    title, head, rows = across_cells(across)
    table = Table(title=title, title_justify="left", header_style="bold")
    for i, name in enumerate(head):
        table.add_column(name, justify="left" if i == 0 else "right")
    for cells in rows:
        table.add_row(*cells)
    return table


def render_experiment(experiment: str, root: Path) -> None:
    """The comparison table `losszoo train` ends with: what `losszoo compare EXPERIMENT` prints (nothing yet,
    when another process holds every run: then a note)."""
    from losszoo.training.store import iter_results

    if not iter_results(root, [experiment])[0]:
        output.note(f"no finished runs of {experiment} yet: another process is training them; run the same "
                    "command again later for the table")
        return
    print_comparison(load(root, [experiment]), title=f"experiment {experiment}")


def _tuned_studies(root: Path, experiments: list[str] | None, filters: list[str] | None = None) -> list:
    """The tuned losses' studies among the runs that pass ``--filter``."""
    from losszoo.comparison.keys import matches, parse_filters
    from losszoo.comparison.tuning import studies
    from losszoo.training.store import iter_results

    results = iter_results(root, experiments)[0]
    parsed = parse_filters(filters or [], results)
    return studies([r for r in results if matches(r, parsed)])


def _print_trials(root: Path, experiments: list[str] | None, filters: list[str] | None, name: str, fmt: str,
                  plot: Path | None) -> None:
    """``--trials LOSS``: the trials of one tuned loss, as a table or data."""
    import csv
    import io
    import json

    from rich.table import Table

    from losszoo.comparison.render import number
    from losszoo.comparison.tuning import trial_rows, trials_of

    study = trials_of(_tuned_studies(root, experiments, filters), name)
    rows = trial_rows(study)
    if fmt in ("json", "csv"):
        if fmt == "json":
            console.file.write(json.dumps({"loss": study.label, "metric": study.metric, "trials": rows},
                                          indent=2, default=str) + "\n")
        else:
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
            console.file.write(out.getvalue())
    else:
        table = Table(title=f"{len(rows)} trials of {study.label}, selected on val.{study.metric}",
                      title_justify="left", header_style="bold")
        for key in rows[0]:
            table.add_column(str(key), justify="right" if key not in ("status",) else "left")
        for row in rows:
            table.add_row(*(number(v) if isinstance(v, float) else str(v) for v in row.values()))
        console.print(table)
    if plot is not None:
        from losszoo.comparison.plot import plot_trials

        output.note(f"wrote {plot_trials([study], plot)}")


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
    trials: str = typer.Option(None, "--trials", metavar="LOSS", help="a tuned experiment: every trial of this "
                               "loss (its values, val score, the best so far) instead of the comparison"),
    correlate: str = typer.Option(None, "--correlate", metavar="KEY", help="Kendall's tau between a stored "
                                  "figure (e.g. landscape.lambda_max) and the runs' generalisation gap"),
    plugins: list[str] = PLUGINS_OPTION,
) -> None:
    """Aggregate finished runs over seeds: mean ± std, n, rank groups; best per column."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}", param_hint="--format")
    if plot is not None:
        check_output_file(plot, "--plot", PLOT_SUFFIXES)
    load_cli_plugins(plugins)
    root = runs_dir(runs_dir_)
    if trials is not None:
        _print_trials(root, experiments or None, filter_, trials, fmt, plot)
        return
    loaded = load(root, experiments or None, metric or None, _keys(group_by), _keys(block_by), sort, filter_,
                  baseline)
    found = None
    if correlate is not None:
        from losszoo.comparison.correlation import correlate as correlated

        found = correlated([r for row in loaded.comparison.rows for r in row.results], correlate)
        loaded.comparison.correlation = found
        loaded.comparison.notes.append(found.words())
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
        if found is not None:
            from losszoo.comparison.plot import plot_correlation

            written.append(plot_correlation(found, plot.with_name(f"{plot.stem}-correlate{plot.suffix}")))
        studies = _tuned_studies(root, experiments or None, filter_)
        if studies:
            from losszoo.comparison.plot import plot_trials

            written.append(plot_trials(studies, plot.with_name(f"{plot.stem}-trials{plot.suffix}")))
        output.note("wrote " + ", ".join(str(p) for p in written))
