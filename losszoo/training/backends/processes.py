"""The processes backend: ``--jobs N`` worker processes, each fed one run at a time.

Workers start from a fork server that has imported torch and the trainer
once (Linux and macOS; a fresh spawned interpreter elsewhere), so a worker
begins training at once instead of paying the imports itself: ``--jobs``
gains on small grids too. The fork server itself never runs torch code, so
forking from it is as safe as spawning (no threads, no CUDA context). Each
run trains on ``train.threads`` torch threads (1 unless the recipe says
otherwise), so ``--jobs`` up to the number of cores keeps the workers from
fighting over them. A script that calls ``train_grid(jobs=...)`` must do so
under ``if __name__ == "__main__":``.

A worker trains one unit at a time: a run, or runs that stack. Each worker
sends (kind, worker index, run_id, *details) on one shared event queue; the
grid knows at every moment which worker holds which runs, so a worker that
dies takes no run with it unrecorded.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from losszoo.recipe.load import Recipe
from losszoo.spec import RunSpec
from losszoo.training import interrupts
from losszoo.training.backends import Backend, Emit, Forward
from losszoo.training.runner import BY_THE_USER, record_stopped, run_dir_of, run_stack
from losszoo.training.store import result_signature

#: Seconds interrupted worker processes get to record their runs before they are killed.
STOP_GRACE = 15.0


class Orphaned(BaseException):
    """The worker's parent died (and so released its claims): stop training on unclaimed."""


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


#: What the fork server imports before it forks workers: everything a run needs, torch first.
PRELOAD = ["torch", "losszoo.training.trainer", "losszoo.training.stacked", "losszoo.training.runner"]


def _context() -> Any:
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


@dataclass
class _Worker:
    index: int
    process: Any
    tasks: Any
    runs: dict[str, RunSpec] = field(default_factory=dict)  # the unit it trains: the runs not yet finished
    before: dict[str, tuple[int, ...] | None] = field(default_factory=dict)  # each run's result.json when sent


class Processes(Backend):
    def __init__(self, jobs: int, root: Path, recipe: Recipe):
        self.slots = jobs
        self.root = root.absolute()
        self.plugins = (list(recipe.plugins), str(recipe.base_dir))
        self.threads = max(1, _usable_cores() // jobs)  # for imports and set-up; a run uses train.threads
        # Workers follow this process: where it ignores SIGINT (a background job of a script), they do too.
        self.interruptible = signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, None)
        self.context = _context()
        self.events = self.context.Queue()
        self.workers: dict[int, _Worker] = {}
        self.spawned = 0

    def submit(self, runs: list[RunSpec]) -> None:
        worker = next((w for w in self.workers.values() if not w.runs), None) or self._spawn()
        worker.runs = {run.run_id: run for run in runs}
        worker.before = {run.run_id: result_signature(run_dir_of(self.root, run)) for run in runs}
        worker.tasks.put(runs)

    def _spawn(self) -> _Worker:
        tasks = self.context.Queue()
        process = self.context.Process(
            target=_worker_main, name=f"losszoo-worker-{self.spawned}", daemon=True,
            args=(self.spawned, tasks, self.events, self.root, self.threads, self.plugins, self.interruptible,
                  dict(os.environ)),
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
            if kind == "finish" and worker is not None:
                worker.runs.pop(run_id, None)
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
                    if kind == "finish" and sender in self.workers:
                        self.workers[sender].runs.pop(run_id, None)
                    emit(kind, run_id, *details)
            del self.workers[index]
            worker.tasks.cancel_join_thread()
            for run in worker.runs.values():
                reason = f"its worker process died (exit code {worker.process.exitcode})"
                result = record_stopped(run_dir_of(self.root, run), run, "failed", reason,
                                        before=worker.before.get(run.run_id))  # not an earlier attempt's result
                emit("finish", run.run_id, result, None)

    def stop(self, emit: Emit) -> None:
        busy = [w for w in self.workers.values() if w.runs]
        if not self.interruptible:
            return  # `close` kills them; the grid records their runs
        for worker in busy:
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(worker.process.pid, signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE
        while any(w.runs and w.process.is_alive() for w in busy) and time.monotonic() < deadline:
            self.wait(emit, timeout=0.2)
        self._bury_dead(emit)

    def close(self) -> None:
        for worker in self.workers.values():
            if worker.runs:  # still busy after `stop`: the grid records its runs
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
    """The first SIGINT stops the unit; later ones must not cut its recording short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    interrupts.note()
    raise KeyboardInterrupt


def _worker_main(index: int, tasks: Any, events: Any, root: Path, threads: int,
                 plugins: tuple[list[str], str], interruptible: bool, environ: dict[str, str]) -> None:
    """A worker process: train the units it is given until it gets None or a SIGINT.

    Between units SIGINT is ignored (the parent decides what stops); during one
    it raises KeyboardInterrupt once, and ``run_stack`` records its runs
    ``interrupted``. A worker whose parent died (killed, so it released its
    claims) stops too, at the next epoch, and records its runs ``failed``.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.clear()  # the fork server started with the environment of its day: take the parent's of now
    os.environ.update(environ)
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
            raise Orphaned
        events.put((kind, index, run_id, *details))

    while True:
        try:
            runs = tasks.get(timeout=1.0)
        except queue.Empty:
            if orphaned():
                return
            continue
        if runs is None:
            return
        befores = {run.run_id: result_signature(run_dir_of(root, run)) for run in runs}
        for run in runs:
            emit("start", run.run_id)
        try:
            signal.signal(signal.SIGINT, _interrupt_once if interruptible else signal.SIG_IGN)
            run_stack(runs, root, Forward(emit))
        except KeyboardInterrupt:
            for run in runs:
                result = record_stopped(run_dir_of(root, run), run, "interrupted", BY_THE_USER,
                                        before=befores[run.run_id])
                emit("finish", run.run_id, result, None)
            return
        except Orphaned:
            for run in runs:
                record_stopped(run_dir_of(root, run), run, "failed", "the losszoo process that started it died",
                               before=befores[run.run_id])
            return
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
