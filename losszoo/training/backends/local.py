"""The local backend: one unit at a time, in this process (``run_stack`` records a Ctrl-C itself)."""

from __future__ import annotations

from collections import deque
from pathlib import Path

from losszoo.spec import RunSpec
from losszoo.training.backends import Backend, Emit, Forward
from losszoo.training.runner import run_stack


class Local(Backend):
    slots = 1

    def __init__(self, root: Path):
        self.root = root
        self.queue: deque[list[RunSpec]] = deque()

    def submit(self, runs: list[RunSpec]) -> None:
        self.queue.append(runs)

    def wait(self, emit: Emit) -> None:
        runs = self.queue.popleft()
        for run in runs:
            emit("start", run.run_id)
        run_stack(runs, self.root, Forward(emit))
