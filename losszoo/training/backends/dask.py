"""The Dask backend: runs as tasks on a Dask distributed cluster (``--address``).

Needs ``pip install 'losszoo[dask]'``. Each worker trains into a temporary
folder and returns the result with every file of the run's folder (config.yaml,
metrics.jsonl, checkpoints, pictures, TensorBoard events); this process writes them into the run store,
so workers need no shared disk, only losszoo and the recipe's plugins
importable. A worker process trains one run at a time (seeding is
process-wide, so two runs in threads of one process would draw from each
other's random numbers): start workers with one thread each, ``dask worker
ADDRESS --nworkers N --nthreads 1``. Ctrl-C cancels the runs in flight (a
task already training finishes on its worker; its result is dropped).
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

import yaml

from losszoo.errors import LosszooError, RunError
from losszoo.recipe.load import Recipe
from losszoo.spec import RunSpec
from losszoo.training.backends import Backend, Emit, Forward
from losszoo.training.runner import make_result, run_dir_of, run_stack
from losszoo.training.store import write_atomic

#: Seconds to reach a Dask scheduler before giving up with a RunError.
CONNECT_TIMEOUT = 5.0
#: The files every run folder may hold: an earlier attempt's that this one did not write are removed.
RUN_FILES = ("config.yaml", "metrics.jsonl", "checkpoint.pt", "last.pt")
_ADDRESS = re.compile(r"(?:(tcp|tls|ucx|inproc|ws|wss)://)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?/?")


def check_address(address: str) -> None:
    """A LosszooError at once for what cannot be a scheduler address (before any connection is tried)."""
    match = _ADDRESS.fullmatch(address.strip())
    port = match and match.group(3)
    if not match or (match.group(1) != "inproc" and (not port or not 0 < int(port) < 65536)):
        raise LosszooError(f"--address {address!r}: expected a Dask scheduler address such as tcp://127.0.0.1:8786 "
                           "(scheme://host:port)")


def _mlflow_uri(recipe: Recipe) -> str | None:
    """The tracking URI workers log to when the recipe logs to MLflow; a LosszooError before any work when it
    has none (the SQLite store beside the runs would be in a worker's temporary folder, then lost)."""
    configs = [r.config for r in recipe.runs] + [s.base for s in recipe.studies]
    if not any("mlflow" in (c["train"].get("log") or []) for c in configs):
        return None
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise LosszooError("--address with train.log: mlflow needs MLFLOW_TRACKING_URI set to a tracking server "
                           "the workers reach (the local store beside the runs is on this machine only)")
    return uri


class Dask(Backend):
    def __init__(self, address: str, jobs: int, root: Path, recipe: Recipe):
        check_address(address)
        self.mlflow_uri = _mlflow_uri(recipe)
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
        self.futures: dict[str, tuple[list[RunSpec], Any]] = {}

    def submit(self, runs: list[RunSpec]) -> None:
        for run in runs:  # unfinished from here on, as run_stack does locally
            folder = run_dir_of(self.root, run)
            (folder / "result.json").unlink(missing_ok=True)
            write_atomic(folder / "config.yaml", yaml.safe_dump(run.config, sort_keys=False))
        future = self.client.submit(_train_remote, runs, self.plugins, self.topic, self.mlflow_uri,
                                    key=f"losszoo-{runs[0].run_id}-{uuid.uuid4().hex[:8]}", pure=False)
        self.futures[runs[0].run_id] = (runs, future)

    def wait(self, emit: Emit) -> None:
        try:
            message = self.inbox.get(timeout=0.1)
        except queue.Empty:
            pass
        else:
            emit(*message)
            self._drain(emit)
        for key, (runs, future) in list(self.futures.items()):
            if future.done():
                del self.futures[key]
                self._drain(emit)
                for run, (result, files) in zip(runs, self._outcomes(runs, future), strict=True):
                    emit("finish", run.run_id, result, files)

    def _drain(self, emit: Emit) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                emit(*self.inbox.get_nowait())

    @staticmethod
    def _outcomes(runs: list[RunSpec], future: Any) -> list[tuple[dict[str, Any], dict[str, bytes]]]:
        try:
            return future.result()
        except Exception as error:  # the task itself broke: a plugin missing on the worker, a lost worker
            reason = f"on the Dask cluster: {type(error).__name__}: {error}"
            return [(make_result(run, "failed", reason), {}) for run in runs]

    def stop(self, emit: Emit) -> None:
        finished = [(key, runs, f) for key, (runs, f) in self.futures.items() if f.done()]
        with contextlib.suppress(Exception):
            self.client.cancel([f for _, f in self.futures.values() if not f.done()])
        for key, runs, future in finished:
            del self.futures[key]
            for run, (result, files) in zip(runs, self._outcomes(runs, future), strict=True):
                emit("finish", run.run_id, result, files)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.unsubscribe_topic(self.topic)
        with contextlib.suppress(Exception):
            self.client.close(timeout=2)


#: One unit at a time per Dask worker process: torch's random state is global to the process.
_ONE_RUN_AT_A_TIME = threading.Lock()


def _train_remote(runs: list[RunSpec], plugins: tuple[list[str], str], topic: str, mlflow_uri: str | None = None
                  ) -> list[tuple[dict[str, Any], dict[str, bytes]]]:
    """On a Dask worker: train a unit (a run, or runs that stack) in a temporary folder; return each run's
    result and every file of its folder but result.json (this process writes that last)."""
    from distributed import get_worker

    worker = get_worker()

    def emit(kind: str, run_id: str, *details: Any) -> None:
        worker.log_event(topic, [kind, run_id, *details])

    if mlflow_uri:
        os.environ["MLFLOW_TRACKING_URI"] = mlflow_uri
    out = []
    with _ONE_RUN_AT_A_TIME, tempfile.TemporaryDirectory(prefix="losszoo-") as tmp:
        if plugins[0]:
            from losszoo.plugins import load_plugins

            load_plugins(plugins[0], Path(plugins[1]))
        for run in runs:
            emit("start", run.run_id)
        results = run_stack(runs, Path(tmp), Forward(emit, finishes=False))
        for run, result in zip(runs, results, strict=True):
            folder = run_dir_of(Path(tmp), run)
            files = {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*"))
                     if path.is_file() and not path.is_symlink() and path.name != "result.json"}
            files.setdefault("config.yaml", yaml.safe_dump(run.config, sort_keys=False).encode())
            out.append((result, files))
    return out
