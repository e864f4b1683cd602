"""Shared test set-up: one torch thread (the suite runs many tiny ops, where
threading costs more than it gives on a 2-core machine) and a private runs
folder per test."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("OMP_NUM_THREADS", "1")

# A shell that starts the suite in the background (`pytest -q &`, nohup) passes SIGINT on as ignored, and so
# does every process started from it: the Ctrl-C tests would then send a signal nobody hears. They test
# losszoo's handling of a real SIGINT, so the suite hears it as a foreground Python does (its children too:
# exec resets a handler, only "ignored" is inherited).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """A fresh runs folder, also seen through $LOSSZOO_RUNS."""
    folder = tmp_path / "runs"
    monkeypatch.setenv("LOSSZOO_RUNS", str(folder))
    return folder


@pytest.fixture(scope="session")
def dask_scheduler(tmp_path_factory):
    """A real `dask scheduler` and `dask worker` on 127.0.0.1, in their own folder."""
    pytest.importorskip("distributed")
    folder = tmp_path_factory.mktemp("dask")
    info = folder / "scheduler.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env, "cwd": folder}
    started = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                                 "--no-dashboard", "--scheduler-file", str(info)], **quiet)]
    try:
        deadline = time.monotonic() + 60
        while not info.exists() or not info.read_text().strip():
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)
        address = json.loads(info.read_text())["address"]
        started.append(subprocess.Popen([sys.executable, "-m", "dask", "worker", address, "--nthreads", "1",
                                         "--nworkers", "2", "--no-dashboard", "--memory-limit", "0"], **quiet))
        from distributed import Client

        with Client(address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=90)
        yield address, folder
    finally:
        for process in reversed(started):
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
