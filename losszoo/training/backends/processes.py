"""The processes backend: ``--jobs N`` worker processes, each fed one run at a time.

Workers are spawned (a fresh interpreter each, safe with torch threads and
CUDA); each run trains on ``train.threads`` torch threads (1 unless the
recipe says otherwise), so ``--jobs`` up to the number of cores keeps the
workers from fighting over them. As always with spawn, a script that calls
``train_grid(jobs=...)`` must do so under ``if __name__ == "__main__":``.

Each worker sends (kind, worker index, run_id, *details) on one shared event
queue; the grid knows at every moment which worker holds which run, so a
worker that dies takes no run with it unrecorded.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from losszoo.recipe.load import Recipe
from losszoo.spec import RunSpec
from losszoo.training.backends import Backend, Emit, Forward
from losszoo.training.runner import BY_THE_USER, record_stopped, run_dir_of, run_one
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


@dataclass
class _Worker:
    index: int
    process: Any
    tasks: Any
    run: RunSpec | None = None


class Processes(Backend):
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
                reason = f"its worker process died (exit code {worker.process.exitcode})"
                result = record_stopped(run_dir_of(self.root, run), run, "failed", reason)
                emit("finish", run.run_id, result, None)

    def stop(self, emit: Emit) -> None:
        busy = [w for w in self.workers.values() if w.run is not None]
        if not self.interruptible:
            return  # `close` kills them; the grid records their runs
        for worker in busy:
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(worker.process.pid, signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE
        while any(w.run is not None and w.process.is_alive() for w in busy) and time.monotonic() < deadline:
            self.wait(emit, timeout=0.2)
        self._bury_dead(emit)

    def close(self) -> None:
        for worker in self.workers.values():
            if worker.run is not None:  # still busy after `stop`: the grid records its run
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
    claims) stops too, at the next epoch, and records its run ``failed``.
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
            raise Orphaned
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
        before = result_signature(folder)
        try:
            signal.signal(signal.SIGINT, _interrupt_once if interruptible else signal.SIG_IGN)
            result = run_one(run, root, Forward(emit))
        except KeyboardInterrupt:
            emit("finish", run.run_id, record_stopped(folder, run, "interrupted", BY_THE_USER, before=before), None)
            return
        except Orphaned:
            record_stopped(folder, run, "failed", "the losszoo process that started it died", before=before)
            return
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        emit("finish", run.run_id, result, None)
