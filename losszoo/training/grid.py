"""The grid: which runs of a recipe to train, claimed and recorded, whichever
backend trains them (``losszoo.training.backends``: here, ``--jobs`` worker
processes, or a Dask cluster).

    losszoo train recipes/digits-margin.yaml                 # one run at a time, in this process
    losszoo train recipes/digits-margin.yaml --jobs 2        # two worker processes
    losszoo train recipes/digits-margin.yaml --address tcp://10.0.0.5:8786

A grid goes the same way on every backend, in recipe order:

1. a run already completed with the same config is reported as skipped;
2. any other run whose folder cannot be used (a file where the folder or one of its
   files should be) is reported ``failed`` with the reason, never written,
   and the others go on;
3. the rest are claimed one at a time (``claims.py``) just before they train, so
   two ``losszoo train`` processes on one runs folder split the work; a run
   another live process holds is put aside and looked at again at the end:
   by then it is completed (skipped), free (trained here) or still held, and
   then it is returned with the status ``claimed`` and a note naming the
   holder. ``claimed`` is never written to disk: the folder belongs to the
   holder, and running the command again later picks up its result;
4. progress (start, each epoch, finish) reaches the ``Reporter`` in this
   process, in this thread, whichever backend trains;
5. a run's ``result.json`` is written last, then the claim is released.

Ctrl-C stops every run in flight: each is recorded ``interrupted`` (with the
epochs it ran), never ``completed``; any other error in this process records
them ``failed`` with that error. Runs already finished stay, and the error
goes on to the caller. Running the command again trains only what is missing
and retries the failed, diverged and interrupted runs.
"""

from __future__ import annotations

import contextlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from losszoo.recipe.load import Recipe
from losszoo.spec import RunSpec
from losszoo.training.backends import Backend
from losszoo.training.backends.dask import RUN_FILES
from losszoo.training.claims import Claim, ClaimError, claim_holder, try_claim
from losszoo.training.runner import BY_THE_USER, Reporter, make_result, record_stopped, run_dir_of
from losszoo.training.stack_rules import plan_units
from losszoo.training.store import (
    clear_attempt_folders,
    is_completed,
    read_result,
    result_signature,
    save_recipe,
    unusable,
    write_atomic,
    write_json,
)

#: Returned (never stored) for a run that another live process is training.
CLAIMED = "claimed"


def train_grid(recipe: Recipe, root: Path, force: bool = False, jobs: int = 1, address: str | None = None,
               reporter: Reporter | None = None) -> list[dict[str, Any]]:
    """Train every run of ``recipe`` under ``root`` and return one result per run, in recipe order.

    Completed runs are reused unless ``force``. ``jobs`` runs train at once in
    separate processes; ``address`` (``tcp://host:port``) sends them to a Dask
    cluster instead. A returned result has one of the store's statuses, or
    ``claimed`` when another process was training that run (see the module
    docstring). A recipe with ``tune:`` trains its trials round by round on the
    same backend, then each loss's best on the final seeds
    (``losszoo.training.tune``); the results are then the trials' and the
    finals'. Raises KeyboardInterrupt after recording the runs in flight as
    ``interrupted``; RunError when the Dask scheduler cannot be reached.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    backend = open_backend(recipe, root, jobs, address)
    try:
        source = recipe.source if recipe.source == "<recipe>" else str(Path(recipe.source).resolve())
        save_recipe(root, recipe.experiment, source, recipe.text, recipe.overrides)
        if recipe.studies:
            from losszoo.training.tune import run_studies

            return run_studies(recipe.studies, lambda runs: run_grid(runs, root, force, reporter, backend))
        return run_grid(recipe.runs, root, force, reporter, backend)
    finally:
        backend.close()


def open_backend(recipe: Recipe, root: Path, jobs: int, address: str | None) -> Backend:
    if address:
        from losszoo.training.backends.dask import Dask

        return Dask(address, jobs, root, recipe)
    if jobs > 1:
        from losszoo.training.backends.processes import Processes

        return Processes(jobs, root, recipe)
    from losszoo.training.backends.local import Local

    return Local(root)


def run_grid(runs: list[RunSpec], root: Path, force: bool, reporter: Reporter | None,
             backend: Backend) -> list[dict[str, Any]]:
    """Train ``runs`` on ``backend`` (which stays open for the caller's next grid)."""
    return _Grid(runs, root, force, reporter, backend).run()


# --- the grid: skip, claim, launch, record -------------------------------------------------------


@dataclass
class _Flight:
    """A run claimed by this process and handed to the backend."""

    run: RunSpec
    claim: Claim
    before: tuple[int, ...] | None  # the result.json it found (see `result_signature`)
    started: bool = False
    unit: int = 0  # the unit of work it trains in (runs that stack share one)


class _Grid:
    def __init__(self, runs: list[RunSpec], root: Path, force: bool, reporter: Reporter | None, backend: Backend):
        self.runs = runs
        self.root = root
        self.force = force
        self.reporter = reporter
        self.backend = backend
        self.flights: dict[str, _Flight] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.held: dict[str, tuple[int, ...] | None] = {}  # run put aside -> its result.json then
        self.units = 0  # units of work submitted: a run, or runs that train stacked

    def run(self) -> list[dict[str, Any]]:
        pending, held_elsewhere, last_look = deque(plan_units(self.runs)), [], False
        try:
            while True:
                while pending and len({f.unit for f in self.flights.values()}) < self.backend.slots:
                    held_elsewhere += [[run] for run in self._launch(pending.popleft(), last_look)]
                if self.flights:
                    self.backend.wait(self._on_event)
                elif held_elsewhere and not last_look:
                    pending, held_elsewhere, last_look = deque(held_elsewhere), [], True
                elif not pending:
                    break
        except BaseException as error:
            self._stop(error)
            raise
        return [self.results[run.run_id] for run in self.runs]

    def _launch(self, unit: list[RunSpec], last_look: bool) -> list[RunSpec]:
        """Skip, claim and hand the unit's runs to the backend; returns those another process holds."""
        ready, held = [], []
        for run in unit:
            outcome = self._claim(run, last_look)
            if outcome is None:
                held.append(run)
            elif isinstance(outcome, _Flight):
                ready.append(outcome)
        if ready:
            self.units += 1
            for flight in ready:
                flight.unit = self.units
                self.flights[flight.run.run_id] = flight
            try:
                self.backend.submit([flight.run for flight in ready])
            except BaseException:
                for flight in ready:
                    self.flights.pop(flight.run.run_id).claim.release()
                raise
        return held

    def _claim(self, run: RunSpec, last_look: bool) -> _Flight | bool | None:
        """A flight for ``run``, claimed; True when it needs no training (done, or recorded); None when
        another process holds it."""
        folder = run_dir_of(self.root, run)
        if not self.force and is_completed(folder, run.run_id):  # a stray file beside a result changes nothing
            self._skipped(run, read_result(folder))
            return True
        problem = unusable(folder)
        if problem is not None:
            self._record(run, make_result(run, "failed", f"cannot train into its folder: {problem}"), start=True)
            return True
        try:
            claim = try_claim(folder)
        except ClaimError as error:
            self._record(run, make_result(run, "failed", f"cannot train into its folder: {error}"), start=True)
            return True
        if claim is None:
            if not last_look:
                self.held[run.run_id] = result_signature(folder)
                return None
            holder = claim_holder(folder)
            self._record(run, make_result(run, CLAIMED, f"being trained by {holder}; run the command again "
                                                    "later to pick up its result"), start=True)
            return True
        # Another process may have recorded it between our look and our claim.
        done = read_result(folder)
        if not self.force and is_completed(folder, run.run_id):
            claim.release()
            self._skipped(run, done)
            return True
        if (last_look and done is not None and done["status"] != "interrupted"
                and result_signature(folder) != self.held.get(run.run_id)):
            claim.release()  # the holder we put it aside for finished it (diverged or failed): that stands
            self._record(run, done, start=True)
            return True
        return _Flight(run, claim, result_signature(folder))

    def _on_event(self, kind: str, run_id: str, *details: Any) -> None:
        flight = self.flights.get(run_id)
        if flight is None:  # a late event of a run already recorded
            return
        if not flight.started:
            flight.started = True
            if self.reporter is not None:
                self.reporter.start(flight.run, flight.run.config["train"]["epochs"])
        if kind == "epoch" and self.reporter is not None:
            self.reporter.epoch(flight.run, *details)
        elif kind == "finish":
            result, files = details
            if files is not None:  # from a Dask worker: this process writes the run store
                _write_run_files(run_dir_of(self.root, flight.run), files, result)
            self._finish(flight, result)

    def _finish(self, flight: _Flight, result: dict[str, Any]) -> None:
        del self.flights[flight.run.run_id]
        flight.claim.release()
        self._record(flight.run, result, start=False)

    def _record(self, run: RunSpec, result: dict[str, Any], start: bool) -> None:
        self.results[run.run_id] = result
        if self.reporter is not None:
            if start:
                self.reporter.start(run, run.config["train"]["epochs"])
            self.reporter.finish(run, result, skipped=False)

    def _skipped(self, run: RunSpec, result: dict[str, Any]) -> None:
        self.results[run.run_id] = result
        if self.reporter is not None:
            self.reporter.finish(run, result, skipped=True)

    def _stop(self, error: BaseException) -> None:
        """Stop the runs in flight and record each: its own outcome if it had one, else interrupted by the user
        (Ctrl-C) or failed with the error that stopped the grid."""
        if not self.flights:
            return
        if isinstance(error, KeyboardInterrupt):
            status, reason = "interrupted", BY_THE_USER
        else:
            status, reason = "failed", f"stopped because losszoo failed: {type(error).__name__}: {error}"
        try:
            with contextlib.suppress(Exception):  # whatever stop met, the runs below get recorded
                self.backend.stop(self._on_event)
        finally:
            for flight in list(self.flights.values()):
                result = record_stopped(run_dir_of(self.root, flight.run), flight.run, status, reason,
                                        before=flight.before)
                with contextlib.suppress(Exception):  # a broken view must not keep a claim
                    if not flight.started:
                        flight.started = True
                        if self.reporter is not None:
                            self.reporter.start(flight.run, flight.run.config["train"]["epochs"])
                    self._finish(flight, result)
                if flight.run.run_id in self.flights:
                    self.flights.pop(flight.run.run_id).claim.release()


def _write_run_files(folder: Path, files: dict[str, bytes], result: dict[str, Any]) -> None:
    """Write a run shipped back from a worker: its files, then result.json last."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").unlink(missing_ok=True)
    clear_attempt_folders(folder)
    for name in RUN_FILES:
        if name not in files and name != "config.yaml":
            (folder / name).unlink(missing_ok=True)  # left by an earlier attempt, not this one's
    for name, data in files.items():
        parts = PurePosixPath(name).parts
        if parts and not PurePosixPath(name).is_absolute() and ".." not in parts and name != "result.json":
            write_atomic(folder.joinpath(*parts), data)  # never outside the run folder
    write_json(folder / "result.json", result)


