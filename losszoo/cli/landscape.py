"""``losszoo landscape RUN...``: the geometry of trained minima, runs side by side.

    losszoo landscape digits-resnet-skip                 # every completed run of an experiment
    losszoo landscape 3f2a9c1d0b7e 77d0e1a2b3c4 --budget 30
    losszoo landscape --between RUN_A RUN_B              # the straight line between two runs

The measuring lives in ``losszoo.landscape``; this module finds the runs,
shows progress and renders the table.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from losszoo.cli.console import console
from losszoo.errors import LosszooError
from losszoo.training.store import runs_dir

SPARK = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 25


def sparklines(series: list[list[float]], width: int = SPARK_WIDTH) -> list[str]:
    """One sparkline per series, on one shared log scale (a bowl stays a bowl when losses span decades)."""
    def log(v: float) -> float:
        return math.log10(max(v, 1e-12)) if math.isfinite(v) else math.inf

    resampled = []
    for values in series:
        picks = [values[round(i * (len(values) - 1) / (width - 1))] for i in range(width)] if len(values) > width \
            else values
        resampled.append([log(v) for v in picks])
    finite = [v for s in resampled for v in s if math.isfinite(v)]
    if not finite:
        return ["" for _ in series]
    lo, hi = min(finite), max(finite)
    span = (hi - lo) or 1.0
    return ["".join(SPARK[min(len(SPARK) - 1, int((v - lo) / span * len(SPARK)))] if math.isfinite(v) else "!"
                    for v in s) for s in resampled]


def _num(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "[dim]-[/]"
    return f"{value:.{digits}g}"


def render(measured: list[dict[str, Any]], names: list[str], barriers: dict[str, dict[str, Any]],
           caption: str) -> Table:
    """Runs side by side: a column per run, a row per measurement."""
    table = Table(title="loss landscape (training loss on the probe set, eval mode)", title_justify="left",
                  header_style="bold", caption=caption, caption_justify="left")
    table.add_column("", style="cyan")
    for m, name in zip(measured, names, strict=True):
        table.add_column(f"{name}\n[dim]{m['run_id']}[/]", justify="right")
    summaries = [m["summary"] for m in measured]

    def row(title: str, cells: list[str]) -> None:
        table.add_row(title, *cells)

    row("loss", [_num(s["loss"]) for s in summaries])
    row("accuracy", [_num(s["accuracy"]) for s in summaries])
    row("λmax", [_num(s["lambda_max"]) for s in summaries])
    cells = []
    for s in summaries:
        text = _num(s["lambda_min"])
        saddle = s["lambda_min"] < -0.01 * abs(s["lambda_max"])  # a negative Rayleigh quotient is proof
        cells.append(f"[bold red]{text}[/] saddle" if saddle else text)
    row("λmin", cells)
    row("trace", [f"{_num(s['trace'])} ± {_num(s['trace_se'], 2)}" for s in summaries])
    row("radius", [_num(s["radius"], 3) for s in summaries])
    row("SAM (ρ=0.05)", [_num(s["sam"], 3) for s in summaries])
    if barriers:
        row("barrier", [_num(barriers[m["run_id"]]["barrier"], 3) + f" [dim]to {barriers[m['run_id']]['with']}[/]"
                        if m["run_id"] in barriers else "[dim]-[/]" for m in measured])
    lines = sparklines([m["profiles"][0]["loss"] for m in measured])
    row("1-D profile", lines)
    row("seconds", [f"{m['seconds']['total']:.1f}" for m in measured])
    return table


def render_path(path: dict[str, Any], name: str) -> Table:
    table = Table(title=f"the straight line {name}", title_justify="left", header_style="bold",
                  caption=f"barrier (Frankle et al. 2020, test error): {path['barrier']:.4g}; train error: "
                          f"{path.get('train_barrier', math.nan):.4g}; train loss: {path['loss_barrier']:.4g}"
                          + ("; BatchNorm statistics re-estimated at every point"
                             if path["batch_norm_reestimated"] else ""),
                  caption_justify="left")
    for column in ("t", "train loss", "train accuracy", "test loss", "test accuracy"):
        table.add_column(column, justify="right")
    for i, t in enumerate(path["t"]):
        table.add_row(f"{t:.2f}", _num(path["train_loss"][i]), _num(path["train_accuracy"][i]),
                      _num(path["test_loss"][i]), _num(path["test_accuracy"][i]))
    return table


def landscape(
    runs: list[str] = typer.Argument(None, metavar="RUN",
                                     help="run folders, run ids or experiment names (all their completed runs)"),
    between: tuple[str, str] | None = typer.Option(None, "--between", metavar="RUN_A RUN_B",
                                            help="loss and accuracy on the straight line between two runs, and "
                                                 "the barrier height"),
    budget: float = typer.Option(60.0, "--budget", min=1.0, help="seconds per run; sizes the trace, profiles "
                                 "and 2-D surface from a timed forward pass"),
    probe: int = typer.Option(1024, "--probe", min=2, help="training samples every run is measured on"),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps"),
    plot: Path = typer.Option(None, "--plot", help="also draw the runs side by side into this folder "
                              "(landscape-1d.png, landscape-2d.png)"),
    runs_dir_: Path = typer.Option(None, "--runs-dir", help="where runs are stored [default: $LOSSZOO_RUNS or ./runs]"),
) -> None:
    """Measure trained minima: Hessian extremes and trace, flatness radius, SAM sharpness, 1-D/2-D slices.

    Writes landscape.json and PNGs into each run folder, and a "landscape" summary into its result.json.
    """
    root = runs_dir(runs_dir_)
    pair = list(between or ())
    if not runs and not pair:
        raise LosszooError("give at least one RUN (a run folder, run id or experiment), or --between RUN_A RUN_B")
    from losszoo.landscape.runs import find_runs, finished_result

    folders = find_runs(list(runs or []), root)
    pair_folders = find_runs(pair, root) if pair else []
    if pair and len(pair_folders) != 2:
        raise LosszooError("--between needs two different runs")
    for folder in folders + pair_folders:
        finished_result(folder)  # every problem before any work

    from losszoo.landscape.measure import Timing, measure_run, merge_summary, plan_for, time_surface, write_measurement
    from losszoo.landscape.runs import headers, load_run

    loaded = {}

    def load(folder: Path):
        key = folder.resolve()
        if key not in loaded:
            with console.status(f"loading {folder}"):
                loaded[key] = load_run(folder, probe, device)
        return loaded[key]

    measured, names = [], []
    if folders:
        rebuilt = [load(f) for f in folders]
        with console.status("timing a forward pass and a Hessian-vector product"):
            timings = [time_surface(r.surface()) for r in rebuilt]
        slowest = Timing(max(t.forward for t in timings), max(t.hvp for t in timings),
                         all(t.batched for t in timings))
        plan = plan_for(slowest, budget)
        names = [n.replace("\n", ", ") for n in headers([r.config for r in rebuilt])]
        for i, (run, name) in enumerate(zip(rebuilt, names, strict=True), 1):
            prefix = f"[{i}/{len(rebuilt)}] {run.run_id} {name}"
            with console.status(prefix) as status:
                m = measure_run(run, plan, lambda step, s=status, p=prefix: s.update(f"{p}: {step}"))
                write_measurement(run, m, title=f"{run.run_id} {name}")
            measured.append(m)
            console.print(f"{prefix}: measured in {m['seconds']['total']:.1f}s -> {run.folder}/landscape.json",
                          markup=False, highlight=False, style="dim")

    barriers: dict[str, dict[str, Any]] = {}
    path = None
    if pair_folders:
        from losszoo.landscape.between import interpolate
        from losszoo.landscape.plots import plot_between
        from losszoo.training.store import write_json

        a, b = load(pair_folders[0]), load(pair_folders[1])
        with console.status(f"the line {a.run_id} -> {b.run_id}") as status:
            path = interpolate(a, b, on_point=lambda i: status.update(f"the line {a.run_id} -> {b.run_id}: "
                                                                       f"point {i}/21"))
        write_json(a.folder / f"between-{b.run_id}.json", path)
        plot_between(path, a.folder / f"between-{b.run_id}.png", f"{a.run_id} -> {b.run_id}")
        for run, other in ((a, b), (b, a)):
            merge_summary(run.folder, {"barrier": path["barrier"], "loss_barrier": path["loss_barrier"],
                                       "barrier_with": other.run_id})
            barriers[run.run_id] = {"barrier": path["barrier"], "with": other.run_id}
        console.print(f"the line -> {a.folder}/between-{b.run_id}.json and .png", markup=False, highlight=False,
                      style="dim")

    if measured:
        probe_text = f"probe: {measured[0]['probe']['samples']} training samples (seed 0)"
        caption = (f"{probe_text}; {plan.describe()}\nλmin < 0: a direction of negative curvature (a saddle); "
                   "radius: step along a filter-normalized direction before the loss rises by 0.1 "
                   "(1 = the weights' own norm)")
        console.print(render(measured, names, barriers, caption))
        if plot is not None:
            from losszoo.landscape.plots import plot_plane, plot_profiles

            plot.mkdir(parents=True, exist_ok=True)
            plot_profiles(measured, names, plot / "landscape-1d.png")
            written = [plot / "landscape-1d.png"]
            if all(m["plane"] is not None for m in measured):
                plot_plane(measured, names, plot / "landscape-2d.png")
                written.append(plot / "landscape-2d.png")
            console.print("plots: " + ", ".join(str(p) for p in written), markup=False, highlight=False)
    if path is not None:
        if plot is not None:
            plot.mkdir(parents=True, exist_ok=True)
            plot_between(path, plot / "between.png", f"{path['run_a']} -> {path['run_b']}")
        console.print(render_path(path, f"{path['run_a']} (t=0) -> {path['run_b']} (t=1)"))
