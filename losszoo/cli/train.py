"""``losszoo train RECIPE``: expand, train what is missing, show the comparison."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from losszoo.cli import console as output
from losszoo.cli.console import console, err_console, line, warn
from losszoo.errors import RunError
from losszoo.training.store import check_runs_dir, is_completed, runs_dir

if TYPE_CHECKING:
    from losszoo.recipe.load import RunSpec

_STATUS_STYLE = {"completed": "green", "diverged": "yellow", "failed": "red", "interrupted": "magenta",
                 "claimed": "cyan", "pruned": "blue"}


class RichReporter:
    """A progress bar per run: epoch, train loss and the val metric that picks the best epoch."""

    def __init__(self, runs: list[RunSpec], planned: int | None = None):
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}", markup=False),
            TimeElapsedColumn(),
            console=err_console,
            disable=output.QUIET,
        )
        self.tasks: dict[str, Any] = {}
        self.number = {run.run_id: i for i, run in enumerate(runs, start=1)}  # runs in flight share no number
        self.planned = planned or len(runs)  # tuning proposes its runs as it goes: numbered as they come

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _name(self, run: RunSpec) -> str:
        dataset = run.config["dataset"]["name"]
        number = self.number.setdefault(run.run_id, len(self.number) + 1)
        what = f"trial {run.config['trial']['number']}" if run.config.get("trial") else f"seed {run.seed}"
        return f"[{number}/{self.planned}] {dataset} {run.label} {what}"

    def start(self, run: RunSpec, epochs: int) -> None:
        self.tasks[run.run_id] = self.progress.add_task(self._name(run), total=epochs, info="")

    def epoch(self, run: RunSpec, epoch: int, epochs: int, train_loss: float, metric: str,
              value: float | None) -> None:
        shown = "-" if value is None else f"{value:.4f}"
        info = f"loss {train_loss:.4f}  val {metric} {shown}"
        self.progress.update(self.tasks[run.run_id], completed=epoch, info=info)

    def finish(self, run: RunSpec, result: dict[str, Any], skipped: bool) -> None:
        if skipped:
            if not output.QUIET:
                self.progress.console.print(f"{self._name(run)}: already completed ({run.run_id}), skipped",
                                            style="dim")
        else:
            task = self.tasks.pop(run.run_id)
            status = result["status"]
            note = f" - {result['error']}" if result.get("error") else f" in {result['train_seconds']:.1f}s"
            self.progress.update(task, description=self._name(run) + f" {status}{note}")


def _dry_run_table(runs: list[RunSpec], root: Path) -> Table:
    from losszoo.comparison.labels import describe
    from losszoo.training.stack_rules import plan_units, stack_problem

    table = Table(title=f"{len(runs)} runs", title_justify="left", header_style="bold")
    named = describe([run.config for run in runs], [run.label for run in runs])  # the comparison's row labels
    parts = list(dict.fromkeys(part for label in named for part in label))
    for column in ("run", *("loss" if p == "label" else p for p in parts), "seed", "epochs", "stack", "state"):
        table.add_column(column)
    stacks: dict[str, str] = {}
    units = plan_units(runs)
    for number, unit in enumerate((u for u in units if len(u) > 1), start=1):
        stacks.update({run.run_id: f"stack {number} of {len(unit)}" for run in unit})
    for run, label in zip(runs, named, strict=True):
        done = is_completed(root / run.experiment / run.run_id, run.run_id)
        alone = stack_problem(run.config) or (
            "not stacked: train.stack is off" if run.config["train"].get("stack") in ("off", 1)
            else "alone: nothing of its shape to stack with")
        table.add_row(run.run_id, *(label.get(p, "") for p in parts),
                      str(run.seed), str(run.config["train"]["epochs"]), stacks.get(run.run_id, alone),
                      Text("completed, will skip", style="dim") if done else "to train")
    return table


def _studies_table(studies: list) -> Table:
    table = Table(title=f"{len(studies)} studies: trials selected on val, the best retrained on the final seeds",
                  title_justify="left", header_style="bold")
    from losszoo.comparison.labels import describe

    named = describe([study.base for study in studies], [study.label for study in studies])
    parts = list(dict.fromkeys(part for label in named for part in label))  # a sweep point's keys too
    for column in (*("loss" if p == "label" else p for p in parts), "space", "trials", "by", "final seeds"):
        table.add_column(column)
    for study, label in zip(studies, named, strict=True):
        space = ", ".join(f"{d.key} [{d.low:g}, {d.high:g}]{' log' if d.log else ''}" for d in study.space)
        table.add_row(*(label.get(p, "") for p in parts), space, str(study.trials), f"val.{study.metric}",
                      ", ".join(map(str, study.final_seeds)))
    return table


def train(
    recipe: Path = typer.Argument(..., help="the recipe YAML file"),
    set_: list[str] = typer.Option([], "--set", help="override a key, e.g. --set train.epochs=5", metavar="KEY=VALUE"),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="runs trained at once, in separate processes"),
    address: str = typer.Option(None, "--address", help="a Dask scheduler, tcp://host:port"),
    runs_dir_: Path = typer.Option(None, "--runs-dir", help="where runs are stored [default: $LOSSZOO_RUNS or ./runs]"),
    force: bool = typer.Option(False, "--force", help="retrain runs that are already completed"),
    dry_run: bool = typer.Option(False, "--dry-run", help="list the runs without training"),
    log: list[str] = typer.Option([], "--log", help="also log every run to tensorboard or mlflow (as train.log); "
                                  "repeatable", metavar="TRACKER"),
) -> None:
    """Train every pairing of the recipe (datasets x losses x seeds), then compare them."""
    from losszoo.recipe.load import load_recipe

    if address is not None:  # `--address "$UNSET"` is a mistake, not a request to train here
        from losszoo.training.backends.dask import check_address

        check_address(address)
    spec = load_recipe(recipe, [*set_, *([f"train.log=[{', '.join(log)}]"] if log else [])])
    root = runs_dir(runs_dir_)
    for warning in spec.warnings:
        warn(warning)
    if dry_run:
        check_runs_dir(root, write=False)
        console.print(_studies_table(spec.studies) if spec.studies else _dry_run_table(spec.runs, root))
        output.note(f"experiment {spec.experiment!r} in {root / spec.experiment}")
        return
    check_runs_dir(root, write=True)

    from losszoo.training.grid import train_grid

    with RichReporter(spec.runs, spec.planned) as reporter:
        results = train_grid(spec, root, force=force, jobs=jobs, address=address, reporter=reporter)
    counts: dict[str, int] = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    parts: list = []
    for status, count in counts.items():
        parts += [", "] if parts else []
        parts.append((f"{count} {status}", _STATUS_STYLE.get(status, "")))
    err_console.print(line(*parts))

    from losszoo.cli.compare import render_experiment

    render_experiment(spec.experiment, root)
    output.note(f"runs in {root / spec.experiment}")
    failed = [r for r in results if r["status"] == "failed"]
    for r in failed:  # in full: the progress line cuts a long reason to the terminal's width
        warn(f"{r['label']} seed {r['seed']} ({r['run_id']}) failed: {r['error']}")
    if failed:
        raise RunError(f"{len(failed)} of {len(results)} runs failed (each named above); run the same command "
                       "again to retry them")
