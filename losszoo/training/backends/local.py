"""The local backend: one run at a time, in this process (``run_one`` records a Ctrl-C itself)."""

from __future__ import annotations

from collections import deque
from pathlib import Path

from losszoo.spec import RunSpec
from losszoo.training.backends import Backend, Emit, Forward
from losszoo.training.runner import run_one


class Local(Backend):
    slots = 1

    def __init__(self, root: Path):
        self.root = root
        self.queue: deque[RunSpec] = deque()

    def submit(self, run: RunSpec) -> None:
        self.queue.append(run)

    def wait(self, emit: Emit) -> None:
        run = self.queue.popleft()
        emit("start", run.run_id)
        result = run_one(run, self.root, Forward(emit))
        emit("finish", run.run_id, result, None)
