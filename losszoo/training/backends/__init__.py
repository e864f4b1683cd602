"""What trains the runs the grid hands over: here, in spawned worker processes,
or on a Dask cluster. Each backend is a small module behind one interface,
:class:`Backend`; the grid (``losszoo.training.grid``) decides what to train
and records it, whichever backend trains.

    losszoo train recipes/digits-margin.yaml                 # local: one run at a time, in this process
    losszoo train recipes/digits-margin.yaml --jobs 2        # processes: two worker processes
    losszoo train recipes/digits-margin.yaml --address tcp://10.0.0.5:8786   # dask
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from losszoo.spec import RunSpec

#: A progress event: ("start" | "epoch" | "finish", run_id, *details).
Emit = Callable[..., None]


class Backend:
    """Trains the runs the grid submits and reports back through ``emit``. A unit of work is one run, or
    runs that train stacked (``losszoo.training.stacked``): a list either way."""

    slots: int  # units in flight at once

    def submit(self, runs: list[RunSpec]) -> None:
        raise NotImplementedError

    def wait(self, emit: Emit) -> None:
        """Block until something happened (or a short while passed) and emit it."""
        raise NotImplementedError

    def stop(self, emit: Emit) -> None:
        """Interrupt the runs in flight; emit the finish of those that record an outcome."""

    def close(self) -> None:
        """Give back processes and connections (after ``stop`` when the grid was interrupted)."""


class Forward:
    """A Reporter for ``run_stack`` that turns its calls into events (the finish of each run as it ends,
    unless the backend reports finishes itself)."""

    def __init__(self, emit: Emit, finishes: bool = True):
        self.emit = emit
        self.finishes = finishes

    def start(self, run: RunSpec, epochs: int) -> None:
        pass

    def epoch(self, run: RunSpec, epoch: int, epochs: int, train_loss: float, metric: str,
              value: float | None) -> None:
        self.emit("epoch", run.run_id, epoch, epochs, train_loss, metric, value)

    def finish(self, run: RunSpec, result: dict[str, Any], skipped: bool) -> None:
        if self.finishes:
            self.emit("finish", run.run_id, result, None)
