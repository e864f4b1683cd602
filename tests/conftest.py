"""Shared test set-up: one torch thread (the suite runs many tiny ops, where
threading costs more than it gives on a 2-core machine) and a private runs
folder per test."""

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


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
