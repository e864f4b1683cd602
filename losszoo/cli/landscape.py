"""``losszoo landscape RUN...``: the geometry of trained minima, runs side by side.

    losszoo landscape digits-resnet-skip                 # every completed run of an experiment
    losszoo landscape 3f2a9c1d0b7e 77d0e1a2b3c4 --budget 30 --top-k 5
    losszoo landscape RUN --trajectory                   # the saved checkpoints, measured and drawn
    losszoo landscape --between RUN_A RUN_B --curve bezier --align

The work lives in ``losszoo.landscape.command``; this module parses the
options, shows progress and renders the tables. Every piece of user text (a
path, a label, a run id) is printed as plain text, never as markup.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from losszoo.cli import console as out
from losszoo.cli.console import console, err_console
from losszoo.cli.plugins import PLUGINS_OPTION
from losszoo.landscape import NEGATIVE_FRACTION
from losszoo.sparkline import sparklines
from losszoo.training.store import runs_dir

SPARK_WIDTH = 25


class _Progress:
    """``command.Progress`` on the terminal: a spinner, notes and warnings, all on stderr (stdout carries
    the tables); ``losszoo --quiet`` keeps only the warnings."""

    @contextmanager
    def status(self, text: str) -> Iterator[Callable[[str], None]]:
        if out.QUIET:
            yield lambda _: None
            return
        with err_console.status(Text(text)) as status:
            yield lambda new: status.update(Text(new))

    def note(self, text: str) -> None:
        out.note(text)

    def warn(self, text: str) -> None:
        out.warn(text)


def _num(value: float | None, digits: int = 4) -> Text:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Text("-", style="dim")
    return Text(f"{value:.{digits}g}")


def _low(lambda_min: float, saddle: bool) -> Text:
    """lambda_min, flagged when it proves negative curvature."""
    return Text.assemble((f"{lambda_min:.4g}", "bold red"), " saddle") if saddle else _num(lambda_min)


def _table(title: str, caption: str) -> Table:
    return Table(title=Text(title), title_justify="left", header_style="bold", caption=Text(caption),
                 caption_justify="left")


def render(outcome, barriers: dict[str, dict[str, Any]]) -> Table:
    """Runs side by side: a column per run, a row per measurement."""
    measured, plan = outcome.measured, outcome.plan
    probe = measured[0]["probe"]
    table = _table("loss landscape (training loss on the probe set, eval mode)",
                   f"probe: {probe['samples']} training samples (seed {probe['seed']}), weights: "
                   f"{measured[0]['weights']}; {plan.describe()}\n"
                   f"λmin below -{NEGATIVE_FRACTION:.0%} of λmax: a direction of negative curvature (a saddle); "
                   "radius: step along a filter-normalized direction before the loss rises by 0.1 "
                   "(1 = the weights' own norm; larger is flatter)")
    table.add_column("", style="cyan")
    for m, name in zip(measured, outcome.names, strict=True):
        table.add_column(Text.assemble(name, "\n", (m["run_id"], "dim")), justify="right")
    summaries = [m["summary"] for m in measured]

    def row(title: str, cells: list[Text]) -> None:
        table.add_row(Text(title), *cells)

    row("loss", [_num(s["loss"]) for s in summaries])
    row("accuracy", [_num(s["accuracy"]) for s in summaries])
    row("λmax", [_num(s["lambda_max"]) for s in summaries])
    row("λmin", [_low(s["lambda_min"], m["saddle"]) for m, s in zip(measured, summaries, strict=True)])
    row("trace", [Text(f"{s['trace']:.4g} ± {s['trace_se']:.2g}") for s in summaries])
    row("radius", [_num(s["radius"], 3) for s in summaries])
    row("SAM (ρ=0.05)", [_num(s["sam"], 3) for s in summaries])
    if plan.top_k:
        row(f"top {plan.top_k}", [Text(", ".join(f"{v:.3g}" for v in m["spectrum"]["top_k"]["values"]))
                                  for m in measured])
        row("negative share", [_num(s["negative_share"], 3) for s in summaries])
    if barriers:
        row("barrier", [Text.assemble(f"{barriers[m['run_id']]['barrier']:.3g}",
                                      (f" to {barriers[m['run_id']]['with']}", "dim"))
                        if m["run_id"] in barriers else _num(None) for m in measured])
    lines = sparklines([m["profiles"][0]["loss"] for m in measured], SPARK_WIDTH, log=True, missing="!")
    row("1-D profile", [Text(line) for line in lines])
    row("seconds", [Text(f"{m['seconds']['total']:.1f}") for m in measured])
    return table


def render_paths(outcome) -> Table:
    """Loss and test accuracy along every path, t by t; the barriers in the caption."""
    paths = outcome.paths
    line = paths["line"]
    notes = ["barrier: max over t of the value minus the straight interpolation of its endpoint values "
             "(test error unless said)"]
    for name, path in paths.items():
        notes.append(f"{name}: {path['barrier']:.4g} (train error {path.get('train_barrier', math.nan):.4g}, "
                     f"train loss {path['loss_barrier']:.4g})")
    if line["batch_norm_reestimated"]:
        notes.append("BatchNorm statistics re-estimated at every point")
    if outcome.curve_training:
        c = outcome.curve_training
        notes.append(f"curve: {c['curve']} trained {c['epochs']} epochs ({c['steps']} steps, {c['seconds']:.1f}s) "
                     f"with {c['optimizer']['name']}")
    if outcome.alignment:
        units = outcome.alignment["units"]
        moved = ", ".join(f"{p} {n}/{units[p]}" for p, n in outcome.alignment["units_moved"].items())
        notes.append(f"aligned: weight matching in {outcome.alignment['passes']} passes; units moved {moved}")
    table = _table(f"paths from {line['run_a']} (t=0) to {line['run_b']} (t=1)", "\n".join(notes))
    table.add_column("t", justify="right")
    for name in paths:
        table.add_column(Text(f"{name}\ntrain loss"), justify="right")
        table.add_column(Text(f"{name}\ntest accuracy"), justify="right")
    for i, t in enumerate(line["t"]):
        table.add_row(Text(f"{t:.2f}"), *[cell for p in paths.values()
                                          for cell in (_num(p["train_loss"][i]), _num(p["test_accuracy"][i]))])
    return table


def render_trajectory(trajectory: dict[str, Any], name: str, plan) -> Table:
    explained = trajectory["explained_variance"]
    table = _table(f"trajectory of {trajectory['run_id']} {name}",
                   f"probe: {trajectory['probe']} training samples; {plan.describe()}\n"
                   f"principal directions explain {100 * explained[0]:.1f}% and {100 * explained[1]:.1f}% "
                   "of the path's variance; x, y: coordinates in them (weight units)")
    for column in ("point", "loss", "accuracy", "λmax", "λmin", "negative share", "x", "y"):
        table.add_column(column, justify="right")
    for p in trajectory["points"]:
        table.add_row(Text(p["name"]), _num(p["loss"]), _num(p["accuracy"]), _num(p["lambda_max"]),
                      _low(p["lambda_min"], p["saddle"]), _num(p["negative_share"], 3), _num(p["x"], 3),
                      _num(p["y"], 3))
    return table


def landscape(
    runs: list[str] = typer.Argument(None, metavar="RUN",
                                     help="run folders, run ids or experiment names (all their completed runs)"),
    between: tuple[str, str] | None = typer.Option(None, "--between", metavar="RUN_A RUN_B",
                                                   help="loss and accuracy on the straight line between two runs, "
                                                        "and the barrier height"),
    curve: str = typer.Option(None, "--curve", metavar="bezier", help="with --between: also train a quadratic "
                              "Bezier curve between the two minima and measure it (Garipov et al. 2018)"),
    curve_epochs: int = typer.Option(None, "--curve-epochs", help="epochs to train the curve [default: run A's]"),
    align: bool = typer.Option(False, "--align", help="with --between: permute B's hidden units to match A's "
                               "(weight matching, Git Re-Basin) and measure the line again; mlp and cnn"),
    top_k: int = typer.Option(None, "--top-k", metavar="K", help="also the K largest Hessian eigenvalues and "
                              "the eigenvalue density (stochastic Lanczos quadrature)"),
    trajectory: bool = typer.Option(False, "--trajectory", help="measure the run's saved checkpoints and draw "
                                    "its path on the loss surface (runs trained with train.save_every)"),
    weights: str = typer.Option("best", "--weights", metavar="best|last",
                                help="measure checkpoint.pt (the best epoch) or last.pt (the last epoch)"),
    budget: float = typer.Option(60.0, "--budget", min=1.0, help="seconds per run; sizes the trace, profiles, "
                                 "spectrum and 2-D surface from a timed forward pass"),
    probe: int = typer.Option(1024, "--probe", min=2, help="training samples every run is measured on"),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps"),
    threads: int = typer.Option(1, "--threads", help="CPU threads torch uses while measuring"),
    plot: Path = typer.Option(None, "--plot", help="also draw the runs side by side into this folder"),
    plugins: list[str] = PLUGINS_OPTION,
    runs_dir_: Path = typer.Option(None, "--runs-dir", help="where runs are stored [default: $LOSSZOO_RUNS or ./runs]"),
) -> None:
    """Measure trained minima: Hessian extremes, trace and spectrum, flatness radius, SAM sharpness, 1-D/2-D
    slices; paths between two minima; the path a run took.

    Writes landscape.json and PNGs into each run folder, and a "landscape" summary into its result.json.
    """
    from losszoo.landscape.command import Request, run

    request = Request(runs=list(runs or []), root=runs_dir(runs_dir_), between=list(between or ()), budget=budget,
                      probe=probe, device=device, plot=plot, weights=weights, top_k=top_k, curve=curve,
                      curve_epochs=curve_epochs, align=align, trajectory=trajectory, plugins=list(plugins or []),
                      threads=threads)
    outcome = run(request, _Progress())
    barriers = {}
    if outcome.paths:
        line = outcome.paths["line"]
        barriers = {line["run_a"]: {"barrier": line["barrier"], "with": line["run_b"]},
                    line["run_b"]: {"barrier": line["barrier"], "with": line["run_a"]}}
    if outcome.measured:
        console.print(render(outcome, barriers))
    for measured, name in zip(outcome.trajectories, outcome.names, strict=False):
        console.print(render_trajectory(measured, name, outcome.trajectory_plan))
    if outcome.paths:
        console.print(render_paths(outcome))
