"""What ``losszoo landscape`` does, step by step; the CLI parses the options and renders what comes back.

    losszoo landscape RUN... [--top-k K] [--weights best|last] [--trajectory]
    losszoo landscape --between RUN_A RUN_B [--curve bezier] [--align]

In order: every option is checked and the ``--plot`` folder proved writable;
the ``--plugins`` the user named are imported (a run's own files never cause an
import); the runs are found and their files checked, and a damaged run is
skipped with its reason (the command fails only when nothing is left, or when
a run it cannot do without -- one of a ``--between`` pair -- is damaged); the
runs are rebuilt; every problem with the new options (runs of different
models for a curve, a model without a permutation spec, a run without saved
checkpoints) is found before any measuring starts. Then the measurements, each
written to its run folder as soon as it is done, and the side-by-side plots.

Progress reaches the person waiting through a :class:`Progress` (plain text,
never markup: paths and labels are the user's).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from losszoo.errors import LosszooError
from losszoo.landscape.runs import WEIGHTS, BadRun, Run, find_runs, finished_result, headers, load_run


class Progress:
    """Where the command reports: a status line that changes, notes and warnings. Silent by default."""

    @contextmanager
    def status(self, text: str) -> Iterator[Callable[[str], None]]:
        yield lambda _: None

    def note(self, text: str) -> None:
        pass

    def warn(self, text: str) -> None:
        pass


@dataclass
class Request:
    """The options of one ``losszoo landscape`` command."""

    runs: list[str]
    root: Path
    between: list[str] = field(default_factory=list)
    budget: float = 60.0
    probe: int = 1024
    device: str = "auto"
    plot: Path | None = None
    weights: str = "best"
    top_k: int | None = None
    curve: str | None = None
    curve_epochs: int | None = None
    align: bool = False
    trajectory: bool = False
    plugins: list[str] = field(default_factory=list)
    threads: int = 1  # torch CPU threads while measuring (see run)


@dataclass
class Outcome:
    """What the command measured, for the CLI to render."""

    measured: list[dict[str, Any]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    plan: Any = None
    paths: dict[str, dict[str, Any]] = field(default_factory=dict)  # "line", "curve", "aligned"
    alignment: dict[str, Any] | None = None
    curve_training: dict[str, Any] | None = None
    trajectories: list[dict[str, Any]] = field(default_factory=list)
    trajectory_plan: Any = None
    skipped: list[BadRun] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)


# --- checks before any work ----------------------------------------------------------------------


def check_plot_folder(path: Path) -> None:
    """``--plot``: a folder that exists or can be made, and can be written; a LosszooError otherwise.
    Proved by writing (and removing) a file there, which also catches read-only file systems."""
    if path.exists() and not path.is_dir():
        raise LosszooError(f"--plot {path}: is a file, not a folder")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise LosszooError(f"--plot {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise LosszooError(f"--plot {path}: {existing} is not writable")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise LosszooError(f"--plot {path}: cannot write there ({error.strerror or error})") from None


def check_request(request: Request) -> None:
    """Every option on its own and with the others; a LosszooError for the first problem."""
    from losszoo.landscape.curve import CURVES

    if not request.runs and not request.between:
        raise LosszooError("give at least one RUN (a run folder, run id or experiment), or --between RUN_A RUN_B")
    if request.weights not in WEIGHTS:
        raise LosszooError(f"--weights must be one of {', '.join(WEIGHTS)}, got {request.weights!r}")
    if request.top_k is not None and request.top_k < 1:
        raise LosszooError(f"--top-k must be at least 1 (the number of largest eigenvalues), got {request.top_k}")
    if request.curve is not None and request.curve not in CURVES:
        raise LosszooError(f"--curve must be one of {', '.join(CURVES)}, got {request.curve!r}")
    if request.curve_epochs is not None and request.curve_epochs < 1:
        raise LosszooError(f"--curve-epochs must be at least 1, got {request.curve_epochs}")
    for flag, given in (("--curve", request.curve), ("--align", request.align)):
        if given and not request.between:
            raise LosszooError(f"{flag} works on a pair of runs: add --between RUN_A RUN_B")
    if request.trajectory and not request.runs:
        raise LosszooError("--trajectory measures the saved checkpoints of RUN...: give at least one RUN")
    if request.trajectory and request.top_k:
        raise LosszooError("--trajectory and --top-k do not go together: a trajectory measures the negative "
                           "share at every saved point, not the top eigenvalues")
    if request.plot is not None:
        check_plot_folder(request.plot)


def _load_plugins(specs: list[str]) -> None:
    if specs:
        from losszoo.plugins import load_plugins

        load_plugins(list(specs), Path.cwd())


def _checked(folders: list[Path], weights: str, outcome: Outcome, progress: Progress) -> list[Path]:
    """The folders whose files are fine; the others are skipped with a warning."""
    kept = []
    for folder in folders:
        try:
            finished_result(folder, weights)
            kept.append(folder)
        except BadRun as problem:
            outcome.skipped.append(problem)
            progress.warn(f"skipped {problem}")
    return kept


# --- the command ---------------------------------------------------------------------------------


def run(request: Request, progress: Progress | None = None) -> Outcome:
    """Do what ``request`` asks: check, load, measure, write. A LosszooError for what is the user's to fix.

    Torch uses ``request.threads`` CPU threads meanwhile (1 by default, as the trainer): the products
    are small, and on a shared machine a second thread that has to wait for a busy core makes each
    product up to 100 times slower (measured on the 2-core development machine under load: 1.3 ms on
    one thread, 130 ms on two), which would overrun every budget planned from an earlier timing.
    """
    import torch

    if request.threads < 1:
        raise LosszooError(f"--threads must be at least 1, got {request.threads}")
    threads = torch.get_num_threads()
    torch.set_num_threads(request.threads)
    try:
        return _run(request, progress or Progress())
    finally:
        torch.set_num_threads(threads)


def _run(request: Request, progress: Progress) -> Outcome:
    check_request(request)
    _load_plugins(request.plugins)
    outcome = Outcome()
    folders = find_runs(list(request.runs), request.root)
    pair = find_runs(list(request.between), request.root) if request.between else []
    if request.between and len(pair) != 2:
        raise LosszooError("--between needs two different runs")
    folders = _checked(folders, request.weights, outcome, progress)
    if pair and len(_checked(pair, request.weights, outcome, progress)) < 2:
        raise LosszooError(f"--between: {outcome.skipped[-1]}")

    loaded: dict[Path, Run] = {}

    def load(folder: Path) -> Run | None:
        key = folder.resolve()
        if key not in loaded:
            with progress.status(f"loading {folder}"):
                try:
                    loaded[key] = load_run(folder, request.probe, request.device, request.weights)
                except BadRun as problem:
                    outcome.skipped.append(problem)
                    progress.warn(f"skipped {problem}")
                    return None
        return loaded[key]

    runs = [r for r in (load(f) for f in folders) if r is not None]
    ends = [load(f) for f in pair]
    if None in ends:
        raise LosszooError(f"--between: {outcome.skipped[-1]}")
    if not runs and not ends:
        raise LosszooError("nothing left to measure: every run was skipped (see the warnings above)")
    from losszoo.landscape.pair import check_pair, measure_pair
    from losszoo.landscape.trajectory import trajectory_points

    if ends:
        check_pair(ends[0], ends[1], request)
    if request.trajectory:
        for r in runs:
            trajectory_points(r)

    if runs and request.trajectory:
        measure_trajectories(runs, request, outcome, progress)
    elif runs:
        measure_runs(runs, request, outcome, progress)
    if ends:
        measure_pair(ends[0], ends[1], request, outcome, progress)
    if request.plot is not None:
        outcome.plots = write_plots(request.plot, outcome)
        progress.note("plots: " + ", ".join(str(p) for p in outcome.plots))
    return outcome


def _timing(runs: list[Run], progress: Progress):
    """The slowest run's timed forward pass and Hessian-vector product: one plan for all of them, so runs
    measured together are measured alike."""
    from losszoo.landscape.measure import Timing, time_surface

    with progress.status("timing a forward pass and a Hessian-vector product"):
        timings = [time_surface(r.surface()) for r in runs]
    return Timing(max(t.forward for t in timings), max(t.hvp for t in timings), all(t.batched for t in timings),
                  max(t.sequential for t in timings))


def measure_runs(runs: list[Run], request: Request, outcome: Outcome, progress: Progress) -> None:
    """Measure every run with one plan; write landscape.json, the PNGs and result.json's summary as each
    run is done."""
    from losszoo.landscape.measure import measure_run, plan_for, write_measurement

    outcome.plan = plan_for(_timing(runs, progress), request.budget, request.top_k or 0)
    names = run_names(runs)
    for i, (r, name) in enumerate(zip(runs, names, strict=True), 1):
        prefix = f"[{i}/{len(runs)}] {r.run_id} {name}"
        with progress.status(prefix) as update:
            measured = measure_run(r, outcome.plan, lambda step, p=prefix: update(f"{p}: {step}"))
            try:
                write_measurement(r, measured, title=f"{r.run_id} {name}")
            except BadRun as problem:  # trained again meanwhile: its figures belong to no result; the rest go on
                outcome.skipped.append(problem)
                progress.warn(f"skipped {problem}")
                continue
        outcome.measured.append(measured)
        outcome.names.append(name)
        progress.note(f"{prefix}: measured in {measured['seconds']['total']:.1f}s -> {r.folder / 'landscape.json'}")


def measure_trajectories(runs: list[Run], request: Request, outcome: Outcome, progress: Progress) -> None:
    """Measure every run's saved points (``trajectory.py``); write trajectory.json and .png per run."""
    from losszoo.landscape.plots import plot_trajectory
    from losszoo.landscape.trajectory import measure_trajectory, trajectory_plan, trajectory_points
    from losszoo.training.store import write_json

    points = max(len(trajectory_points(r)) for r in runs)
    outcome.trajectory_plan = trajectory_plan(_timing(runs, progress), request.budget, points)
    outcome.names = run_names(runs)
    for i, (r, name) in enumerate(zip(runs, outcome.names, strict=True), 1):
        prefix = f"[{i}/{len(runs)}] {r.run_id} {name}"
        with progress.status(prefix) as update:
            measured = measure_trajectory(r, outcome.trajectory_plan, lambda step, p=prefix: update(f"{p}: {step}"))
            write_json(r.folder / "trajectory.json", measured)
            plot_trajectory([measured], [f"{r.run_id} {name}"], r.folder / "trajectory.png")
        outcome.trajectories.append(measured)
        progress.note(f"{prefix}: {len(measured['points'])} points in {measured['seconds']:.1f}s -> "
                      f"{r.folder / 'trajectory.json'} and .png")


def write_plots(folder: Path, outcome: Outcome) -> list[Path]:
    """The runs side by side in ``folder`` (checked writable up front)."""
    from losszoo.landscape import plots

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    measured, names = outcome.measured, outcome.names
    if measured:
        plots.plot_profiles(measured, names, folder / "landscape-1d.png")
        written.append(folder / "landscape-1d.png")
        if all(m["plane"] is not None for m in measured):
            plots.plot_plane(measured, names, folder / "landscape-2d.png")
            written.append(folder / "landscape-2d.png")
        if all(m.get("spectrum") for m in measured):
            plots.plot_spectrum(measured, names, folder / "spectrum.png")
            written.append(folder / "spectrum.png")
    if outcome.trajectories:
        plots.plot_trajectory(outcome.trajectories, names, folder / "trajectory.png")
        written.append(folder / "trajectory.png")
    if outcome.paths:
        line = outcome.paths["line"]
        plots.plot_paths(outcome.paths, folder / "between.png", f"{line['run_a']} -> {line['run_b']}")
        written.append(folder / "between.png")
    return written


def run_names(runs: list[Run]) -> list[str]:
    """One line per run for tables and plot titles: what differs between them."""
    return [n.replace("\n", ", ") for n in headers([r.config for r in runs])]
