"""Where the runs of a grid train: here, one after another; in ``jobs`` spawned
processes; or on a Dask cluster.

    losszoo train recipes/digits-margin.yaml                 # one run at a time, in this process
    losszoo train recipes/digits-margin.yaml --jobs 2        # two worker processes
    losszoo train recipes/digits-margin.yaml --address tcp://10.0.0.5:8786

Whatever trains them, a grid goes the same way, in recipe order:

1. a run already completed with the same config is reported as skipped;
2. the rest are claimed one at a time (``claims.py``) just before they train, so
   two ``losszoo train`` processes on one runs folder split the work; a run
   another live process holds is put aside and looked at again at the end:
   by then it is completed (skipped), free (trained here) or still held, and
   then it is returned with the status ``claimed`` and a note naming the
   holder. ``claimed`` is never written to disk: the folder belongs to the
   holder, and running the command again later picks up its result;
3. progress (start, each epoch, finish) reaches the ``Reporter`` in this
   process, in this thread, whichever backend trains;
4. a run's ``result.json`` is written last, then the claim is released.

Ctrl-C (or any error in this process) stops every run in flight: each is
recorded ``interrupted``, never ``completed``, runs already finished stay, and
the KeyboardInterrupt goes on to the caller. Running the command again trains
only what is missing and retries the failed, diverged and interrupted runs.

``jobs > 1`` uses the spawn start method (a fresh interpreter per worker, safe
with torch threads and CUDA); each run trains on ``train.threads`` torch
threads (1 unless the recipe says otherwise), so ``--jobs`` up to the number
of cores keeps the workers from fighting over them. As always with spawn, a
script that calls ``train_grid(jobs=...)`` must do so under
``if __name__ == "__main__":``.

With ``address`` the runs go to a Dask distributed scheduler (``pip install
'losszoo[dask]'``). Each worker trains into a temporary folder and returns the
result with the run's files (config.yaml, metrics.jsonl, checkpoint.pt); this
process writes them into the run store, so workers need no shared disk, only
losszoo and the recipe's plugins importable. A worker process trains one run at
a time (seeding is process-wide, so two runs in threads of one process would
draw from each other's random numbers): start workers with one thread each,
``dask worker ADDRESS --nworkers N --nthreads 1``. Ctrl-C cancels the runs in
flight (a task already training finishes on its worker; its result is dropped).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from losszoo.errors import RunError
from losszoo.recipe.load import Recipe, RunSpec
from losszoo.training.claims import Claim, claim_holder, try_claim
from losszoo.training.runner import Reporter, make_result, run_dir_of, run_one
from losszoo.training.store import is_completed, read_result, write_atomic, write_json

#: Returned (never stored) for a run that another live process is training.
CLAIMED = "claimed"
#: Seconds to reach a Dask scheduler before giving up with a RunError.
CONNECT_TIMEOUT = 5.0
#: Seconds interrupted worker processes get to record their runs before they are killed.
STOP_GRACE = 15.0
#: The files of a run folder a Dask worker ships back (result.json is written from the result).
RUN_FILES = ("config.yaml", "metrics.jsonl", "checkpoint.pt")

#: A progress event: ("start" | "epoch" | "finish", run_id, *details).
Emit = Callable[..., None]


def train_grid(recipe: Recipe, root: Path, force: bool = False, jobs: int = 1, address: str | None = None,
               reporter: Reporter | None = None) -> list[dict[str, Any]]:
    """Train every run of ``recipe`` under ``root`` and return one result per run, in recipe order.

    Completed runs are reused unless ``force``. ``jobs`` runs train at once in
    separate processes; ``address`` (``tcp://host:port``) sends them to a Dask
    cluster instead. A returned result has one of the store's statuses, or
    ``claimed`` when another process was training that run (see the module
    docstring). Raises KeyboardInterrupt after recording the runs in flight as
    ``interrupted``; RunError when the Dask scheduler cannot be reached.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if address:
        backend: _Backend = _Dask(address, jobs, root, recipe)
    elif jobs > 1:
        backend = _Processes(jobs, root, recipe)
    else:
        backend = _InProcess(root)
    return _Grid(recipe, root, force, reporter, backend).run()


# --- the grid: skip, claim, launch, record -------------------------------------------------------


@dataclass
class _Flight:
    """A run claimed by this process and handed to the backend."""

    run: RunSpec
    claim: Claim
    before: tuple[int, ...] | None  # the result.json it found (see `_signature`)
    started: bool = False


class _Grid:
    def __init__(self, recipe: Recipe, root: Path, force: bool, reporter: Reporter | None, backend: _Backend):
        self.runs = recipe.runs
        self.root = root
        self.force = force
        self.reporter = reporter
        self.backend = backend
        self.flights: dict[str, _Flight] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.held: dict[str, tuple[int, ...] | None] = {}  # run put aside -> its result.json then

    def run(self) -> list[dict[str, Any]]:
        pending, held_elsewhere, last_look = deque(self.runs), [], False
        try:
            while True:
                while pending and len(self.flights) < self.backend.slots:
                    run = pending.popleft()
                    if not self._launch(run, last_look):
                        held_elsewhere.append(run)
                if self.flights:
                    self.backend.wait(self._on_event)
                elif held_elsewhere and not last_look:
                    pending, held_elsewhere, last_look = deque(held_elsewhere), [], True
                elif not pending:
                    break
        except BaseException as error:
            self._stop(error)
            raise
        finally:
            self.backend.close()
        return [self.results[run.run_id] for run in self.runs]

    def _launch(self, run: RunSpec, last_look: bool) -> bool:
        """Skip, claim and hand ``run`` to the backend; False when another process holds it."""
        folder = run_dir_of(self.root, run)
        if not self.force and is_completed(folder, run.run_id):
            self._skipped(run, read_result(folder))
            return True
        claim = try_claim(folder)
        if claim is None:
            if not last_look:
                self.held[run.run_id] = _signature(folder)
                return False
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
                and _signature(folder) != self.held.get(run.run_id)):
            claim.release()  # the holder we put it aside for finished it (diverged or failed): that stands
            self._record(run, done, start=True)
            return True
        self.flights[run.run_id] = _Flight(run, claim, _signature(folder))
        try:
            self.backend.submit(run)
        except BaseException:
            self.flights.pop(run.run_id).claim.release()
            raise
        return True

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
        """Stop the runs in flight and record each: its own outcome if it had one, else interrupted."""
        if not self.flights:
            return
        reason = "interrupted by the user" if isinstance(error, KeyboardInterrupt) else (
            f"interrupted: {type(error).__name__}: {error}")
        try:
            with contextlib.suppress(Exception):  # whatever stop met, the runs below get recorded
                self.backend.stop(self._on_event)
        finally:
            for flight in list(self.flights.values()):
                folder = run_dir_of(self.root, flight.run)
                result = read_result(folder)
                if result is None or _signature(folder) == flight.before:  # nothing recorded since it launched
                    result = make_result(flight.run, "interrupted", reason)
                    write_json(folder / "result.json", result)
                with contextlib.suppress(Exception):  # a broken view must not keep a claim
                    if not flight.started:
                        flight.started = True
                        if self.reporter is not None:
                            self.reporter.start(flight.run, flight.run.config["train"]["epochs"])
                    self._finish(flight, result)
                if flight.run.run_id in self.flights:
                    self.flights.pop(flight.run.run_id).claim.release()


def _signature(folder: Path) -> tuple[int, ...] | None:
    """Which result.json is in ``folder`` (each atomic write makes a new file), or None.

    Comparing it before and after tells a result recorded since from an old one
    without trusting clocks (an NFS server's may differ from ours).
    """
    try:
        stat = (folder / "result.json").stat()
    except OSError:
        return None
    return (stat.st_ino, stat.st_dev, stat.st_mtime_ns, stat.st_size)


def _write_run_files(folder: Path, files: dict[str, bytes], result: dict[str, Any]) -> None:
    """Write a run shipped back from a worker: its files, then result.json last."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").unlink(missing_ok=True)
    for name in RUN_FILES:
        if name in files:
            write_atomic(folder / name, files[name])
        elif name != "config.yaml":
            (folder / name).unlink(missing_ok=True)  # left by an earlier attempt, not this one's
    write_json(folder / "result.json", result)


# --- backends ------------------------------------------------------------------------------------


class _Backend:
    """What trains the runs the grid hands over, and reports back through ``emit``."""

    slots: int  # runs in flight at once

    def submit(self, run: RunSpec) -> None:
        raise NotImplementedError

    def wait(self, emit: Emit) -> None:
        """Block until something happened (or a short while passed) and emit it."""
        raise NotImplementedError

    def stop(self, emit: Emit) -> None:
        """Interrupt the runs in flight; emit the finish of those that record an outcome."""

    def close(self) -> None:
        """Give back processes and connections (after ``stop`` when the grid was interrupted)."""


class _Forward:
    """A Reporter for ``run_one`` that turns its epoch calls into events."""

    def __init__(self, emit: Emit):
        self.emit = emit

    def start(self, run: RunSpec, epochs: int) -> None:
        pass

    def epoch(self, run: RunSpec, epoch: int, epochs: int, train_loss: float, metric: str,
              value: float | None) -> None:
        self.emit("epoch", run.run_id, epoch, epochs, train_loss, metric, value)

    def finish(self, run: RunSpec, result: dict[str, Any], skipped: bool) -> None:
        pass


class _InProcess(_Backend):
    """One run at a time, in this process; ``run_one`` records a Ctrl-C itself."""

    slots = 1

    def __init__(self, root: Path):
        self.root = root
        self.queue: deque[RunSpec] = deque()

    def submit(self, run: RunSpec) -> None:
        self.queue.append(run)

    def wait(self, emit: Emit) -> None:
        run = self.queue.popleft()
        emit("start", run.run_id)
        result = run_one(run, self.root, _Forward(emit))
        emit("finish", run.run_id, result, None)


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


@dataclass
class _Worker:
    index: int
    process: Any
    tasks: Any
    run: RunSpec | None = None


class _Processes(_Backend):
    """``jobs`` spawned worker processes, each fed one run at a time through its own queue.

    Each worker sends (kind, worker index, run_id, *details) on one shared
    event queue; the grid knows at every moment which worker holds which run,
    so a worker that dies takes no run with it unrecorded.
    """

    def __init__(self, jobs: int, root: Path, recipe: Recipe):
        self.slots = jobs
        self.root = root.absolute()
        self.plugins = (list(recipe.plugins), str(recipe.base_dir))
        self.threads = max(1, _usable_cores() // jobs)  # for imports and set-up; a run uses train.threads
        # Workers follow this process: where it ignores SIGINT (a background job of a script), they do too.
        self.interruptible = signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, None)
        self.context = multiprocessing.get_context("spawn")
        self.events = self.context.Queue()
        self.workers: dict[int, _Worker] = {}
        self.spawned = 0

    def submit(self, run: RunSpec) -> None:
        worker = next((w for w in self.workers.values() if w.run is None), None) or self._spawn()
        worker.run = run
        worker.tasks.put(run)

    def _spawn(self) -> _Worker:
        tasks = self.context.Queue()
        process = self.context.Process(
            target=_worker_main, name=f"losszoo-worker-{self.spawned}", daemon=True,
            args=(self.spawned, tasks, self.events, self.root, self.threads, self.plugins, self.interruptible),
        )
        process.start()
        worker = self.workers[self.spawned] = _Worker(self.spawned, process, tasks)
        self.spawned += 1
        return worker

    def wait(self, emit: Emit, timeout: float = 0.5) -> None:
        try:
            kind, index, run_id, *details = self.events.get(timeout=timeout)
        except queue.Empty:
            pass
        else:
            worker = self.workers.get(index)
            if kind == "finish" and worker is not None and worker.run is not None and worker.run.run_id == run_id:
                worker.run = None
            emit(kind, run_id, *details)
        self._bury_dead(emit)

    def _bury_dead(self, emit: Emit) -> None:
        """Record the run of a worker that died without reporting it (killed, out of memory, a crash)."""
        for index, worker in list(self.workers.items()):
            if worker.process.is_alive():
                continue
            with contextlib.suppress(queue.Empty):  # its last words may still be in the queue
                while True:
                    kind, sender, run_id, *details = self.events.get(timeout=0.05)
                    if kind == "finish" and sender in self.workers and self.workers[sender].run is not None:
                        self.workers[sender].run = None
                    emit(kind, run_id, *details)
            del self.workers[index]
            worker.tasks.cancel_join_thread()
            run = worker.run
            if run is not None:
                folder = run_dir_of(self.root, run)
                result = make_result(run, "failed", f"its worker process died (exit code {worker.process.exitcode})")
                write_json(folder / "result.json", result)
                emit("finish", run.run_id, result, None)

    def stop(self, emit: Emit) -> None:
        busy = [w for w in self.workers.values() if w.run is not None]
        if not self.interruptible:
            return  # `close` kills them; the grid records their runs interrupted
        for worker in busy:
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(worker.process.pid, signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE
        while any(w.run is not None and w.process.is_alive() for w in busy) and time.monotonic() < deadline:
            self.wait(emit, timeout=0.2)
        self._bury_dead(emit)

    def close(self) -> None:
        for worker in self.workers.values():
            if worker.run is not None:  # still busy after `stop`: the grid records its run interrupted
                worker.process.kill()
            elif worker.process.is_alive():
                with contextlib.suppress(Exception):
                    worker.tasks.put(None)
        deadline = time.monotonic() + 5.0
        for worker in self.workers.values():
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=5.0)
            worker.tasks.cancel_join_thread()
        self.events.cancel_join_thread()
        self.workers.clear()


def _interrupt_once(signum: int, frame: Any) -> None:
    """The first SIGINT stops the run; later ones must not cut its recording short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _worker_main(index: int, tasks: Any, events: Any, root: Path, threads: int,
                 plugins: tuple[list[str], str], interruptible: bool) -> None:
    """A worker process: train the runs it is given until it gets None or a SIGINT.

    Between runs SIGINT is ignored (the parent decides what stops); during a run
    it raises KeyboardInterrupt once, and ``run_one`` records the run
    ``interrupted``. A worker whose parent died (killed, so it released its
    claims) stops too, at the next epoch, rather than train on unclaimed.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    import torch

    torch.set_num_threads(threads)
    if plugins[0]:
        from losszoo.plugins import load_plugins

        load_plugins(plugins[0], Path(plugins[1]))

    def orphaned() -> bool:
        if parent is None or parent.is_alive():
            return False
        events.cancel_join_thread()  # nobody reads the events any more: exit without flushing them
        return True

    def emit(kind: str, run_id: str, *details: Any) -> None:
        if kind == "epoch" and orphaned():
            raise KeyboardInterrupt
        events.put((kind, index, run_id, *details))

    while True:
        try:
            run = tasks.get(timeout=1.0)
        except queue.Empty:
            if orphaned():
                return
            continue
        if run is None:
            return
        emit("start", run.run_id)
        folder = run_dir_of(root, run)
        before = _signature(folder)
        try:
            signal.signal(signal.SIGINT, _interrupt_once if interruptible else signal.SIG_IGN)
            result = run_one(run, root, _Forward(emit))
        except KeyboardInterrupt:
            result = read_result(folder)
            if result is None or _signature(folder) == before:
                result = make_result(run, "interrupted", "interrupted by the user")
                write_json(folder / "result.json", result)
            emit("finish", run.run_id, result, None)
            return
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        emit("finish", run.run_id, result, None)


class _Dask(_Backend):
    """Runs as tasks on a Dask distributed cluster; progress comes back as worker events."""

    def __init__(self, address: str, jobs: int, root: Path, recipe: Recipe):
        self.root = root
        try:
            import distributed
        except ImportError:
            raise RunError("--address needs Dask distributed, which is not installed: "
                           "pip install 'losszoo[dask]'") from None
        try:
            self.client = distributed.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except Exception as error:
            raise RunError(f"cannot reach the Dask scheduler at {address} within {CONNECT_TIMEOUT:g} s "
                           f"({type(error).__name__}: {error}); start one with `dask scheduler` or check "
                           "--address") from None
        threads = sum(self.client.nthreads().values())
        self.slots = 2 * max(jobs, threads, 1)  # a queue on the cluster keeps workers busy while we write files
        self.plugins = (list(recipe.plugins), str(recipe.base_dir))
        self.topic = f"losszoo-{uuid.uuid4().hex}"
        self.inbox: queue.Queue = queue.Queue()
        self.client.subscribe_topic(self.topic, lambda event: self.inbox.put(event[1]))
        self.futures: dict[str, tuple[RunSpec, Any]] = {}

    def submit(self, run: RunSpec) -> None:
        folder = run_dir_of(self.root, run)  # unfinished from here on, as run_one does locally
        (folder / "result.json").unlink(missing_ok=True)
        write_atomic(folder / "config.yaml", yaml.safe_dump(run.config, sort_keys=False))
        future = self.client.submit(_train_remote, run, self.plugins, self.topic,
                                    key=f"losszoo-{run.run_id}-{uuid.uuid4().hex[:8]}", pure=False)
        self.futures[run.run_id] = (run, future)

    def wait(self, emit: Emit) -> None:
        try:
            message = self.inbox.get(timeout=0.1)
        except queue.Empty:
            pass
        else:
            emit(*message)
            self._drain(emit)
        for run_id, (run, future) in list(self.futures.items()):
            if future.done():
                del self.futures[run_id]
                self._drain(emit)
                emit("finish", run_id, *self._outcome(run, future))

    def _drain(self, emit: Emit) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                emit(*self.inbox.get_nowait())

    @staticmethod
    def _outcome(run: RunSpec, future: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
        try:
            return future.result()
        except Exception as error:  # the task itself broke: a plugin missing on the worker, a lost worker
            return make_result(run, "failed", f"on the Dask cluster: {type(error).__name__}: {error}"), {}

    def stop(self, emit: Emit) -> None:
        finished = [(run, f) for run, f in self.futures.values() if f.done()]
        with contextlib.suppress(Exception):
            self.client.cancel([f for _, f in self.futures.values() if not f.done()])
        for run, future in finished:
            del self.futures[run.run_id]
            emit("finish", run.run_id, *self._outcome(run, future))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.unsubscribe_topic(self.topic)
        with contextlib.suppress(Exception):
            self.client.close(timeout=2)


#: One run at a time per Dask worker process: torch's random state is global to the process.
_ONE_RUN_AT_A_TIME = threading.Lock()


def _train_remote(run: RunSpec, plugins: tuple[list[str], str], topic: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """On a Dask worker: train ``run`` in a temporary folder; return its result and files."""
    from distributed import get_worker

    worker = get_worker()

    def emit(kind: str, run_id: str, *details: Any) -> None:
        worker.log_event(topic, [kind, run_id, *details])

    with _ONE_RUN_AT_A_TIME, tempfile.TemporaryDirectory(prefix="losszoo-") as tmp:
        if plugins[0]:
            from losszoo.plugins import load_plugins

            load_plugins(plugins[0], Path(plugins[1]))
        emit("start", run.run_id)
        result = run_one(run, Path(tmp), _Forward(emit))
        folder = run_dir_of(Path(tmp), run)
        files = {name: (folder / name).read_bytes() for name in RUN_FILES if (folder / name).is_file()}
    files.setdefault("config.yaml", yaml.safe_dump(run.config, sort_keys=False).encode())
    return result, files
