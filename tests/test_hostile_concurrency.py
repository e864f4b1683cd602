"""Issue 11, concurrency: two `losszoo train` processes on one recipe and runs
folder share the work (claims: losszoo/training/claims.py, grid.py). Both exit
0 with their summary and the comparison table; no run is trained twice; a
run the other process holds is reported `claimed`, never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from losszoo.cli.main import app
from losszoo.recipe.load import load_recipe
from losszoo.training.claims import try_claim
from losszoo.training.runner import run_dir_of

REPO = Path(__file__).resolve().parents[1]
# Runs one by one (stack: off), so that two processes share the grid run by run: with stacks, the first to
# start claims a whole stack (test_a_stack_claimed_elsewhere_ends_the_other_process_cleanly).
RECIPE = {"experiment": "shared", "dataset": "iris", "losses": ["cross_entropy", "focal", "poly1"],
          "seeds": [0, 1], "train": {"epochs": 12, "batch_size": 16, "stack": "off"}}
#: A progress line's start: "[3/6] iris focal seed 0 ...".
RUN = re.compile(r"^\[\d+/\d+\] iris (\S+) seed (\d+)(.*)$")


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "COLUMNS": "250",
            "LOSSZOO_DEBUG": "0"}


def _outcomes(stderr: str) -> dict[tuple[str, int], str]:
    """What a process says of each run: trained, skipped or claimed."""
    said = {}
    for line in stderr.splitlines():
        match = RUN.match(line.strip())
        if match:
            label, seed, rest = match.groups()
            kind = ("skipped" if "already completed" in rest else "claimed" if " claimed" in rest
                    else "trained" if " completed in " in rest else "other: " + rest)
            said[(label, int(seed))] = kind
    return said


def test_a_claim_file_that_cannot_be_locked_fails_its_run_only(tmp_path, monkeypatch):
    """NFS locks only files open for writing, so another user's claim file opened read-only there cannot be
    locked (EBADF): not a live claim to wait on forever, but a failed run that names the file; the rest train."""
    import errno

    from losszoo.training import claims

    monkeypatch.setenv("COLUMNS", "250")
    recipe = tmp_path / "shared.yaml"
    recipe.write_text(yaml.safe_dump({**RECIPE, "losses": ["cross_entropy", "focal"], "seeds": [0],
                                      "train": {"epochs": 2, "stack": "off"}}))
    root = tmp_path / "runs"
    stuck = run_dir_of(root, load_recipe(recipe).runs[1])
    real = claims.fcntl.flock

    def flock(fd, operation):
        if os.fstat(fd).st_ino == (stuck / claims.CLAIM_FILE).stat().st_ino:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        return real(fd, operation)

    stuck.mkdir(parents=True)
    (stuck / claims.CLAIM_FILE).touch()
    monkeypatch.setattr(claims.fcntl, "flock", flock)
    outcome = CliRunner().invoke(app, ["train", str(recipe), "--runs-dir", str(root)])
    text = " ".join(outcome.output.split())
    assert outcome.exit_code == 1, outcome.output  # a run failed, and the command says so
    assert "1 completed, 1 failed" in text
    assert f"cannot lock its claim file {stuck / claims.CLAIM_FILE}" in text and "remove that file" in text
    assert "Traceback" not in outcome.output
    assert not (stuck / "result.json").exists()  # nothing written into a folder someone may be training


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [("1", "1"), ("2", "1")], ids=["both local", "jobs 2 and local"])
def test_two_processes_share_one_grid(tmp_path, jobs):
    recipe = tmp_path / "shared.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    root = tmp_path / "runs"
    processes = [subprocess.Popen([sys.executable, "-m", "losszoo", "train", str(recipe), "--runs-dir", str(root),
                                   "--jobs", j], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=_env(), cwd=tmp_path) for j in jobs]
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=300))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    runs = load_recipe(recipe).runs
    expected = {(run.label, run.seed) for run in runs}
    trained: Counter = Counter()
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr and "MarkupError" not in stderr and "error:" not in stderr, stderr
        assert "label" in stdout and "cross_entropy" in stdout and "poly1" in stdout, stdout  # the table
        assert re.search(r"^\d+ (completed|claimed)", stderr, re.MULTILINE), stderr  # the summary
        said = _outcomes(stderr)
        assert set(said) == expected, stderr
        assert all(kind in ("trained", "skipped", "claimed") for kind in said.values()), said
        trained.update(run for run, kind in said.items() if kind == "trained")
    assert trained == Counter(expected), f"trained: {trained}"  # every run once, by one of the two
    for run in runs:
        result = json.loads((run_dir_of(root, run) / "result.json").read_text())
        assert result["status"] == "completed"
        lines = (run_dir_of(root, run) / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["epoch"] for line in lines] == list(range(1, RECIPE["train"]["epochs"] + 1))
    assert not list(root.rglob(".claim")), "a claim outlived its process"


def test_a_run_held_by_another_claim_is_reported_claimed(tmp_path, monkeypatch):
    """Deterministically, in one process: a claim held here is "another process" to the grid (locks belong to
    open files). The command ends 0 with `claimed` in its summary and the table of what it trained."""
    monkeypatch.setenv("COLUMNS", "250")
    recipe = tmp_path / "shared.yaml"
    recipe.write_text(yaml.safe_dump({**RECIPE, "losses": ["cross_entropy", "focal"], "seeds": [0],
                                      "train": {"epochs": 2}}))
    root = tmp_path / "runs"
    held = load_recipe(recipe).runs[1]
    claim = try_claim(run_dir_of(root, held))
    assert claim is not None
    try:
        outcome = CliRunner().invoke(app, ["train", str(recipe), "--runs-dir", str(root)])
    finally:
        claim.release()
    assert outcome.exit_code == 0, outcome.output
    text = " ".join(outcome.output.split())
    assert "1 completed, 1 claimed" in text
    assert f"being trained by process {os.getpid()}" in text
    assert "cross_entropy" in text and "Traceback" not in outcome.output
    assert not (run_dir_of(root, held) / "result.json").exists()  # the holder's folder is left alone
    again = CliRunner().invoke(app, ["train", str(recipe), "--runs-dir", str(root)])
    assert again.exit_code == 0, again.output
    assert "focal seed 0 completed in" in again.output  # once free, the next command trains it


@pytest.mark.slow
def test_a_stack_claimed_elsewhere_ends_the_other_process_cleanly(tmp_path):
    """With stacks, the first process claims the whole stack; the second reports every run claimed and ends 0
    with a note instead of a table (nothing is finished yet); run again, it shows the table."""
    recipe = tmp_path / "shared.yaml"
    recipe.write_text(yaml.safe_dump({**RECIPE, "train": {"epochs": 40, "batch_size": 16, "stack": "auto"}}))
    root = tmp_path / "runs"
    command = [sys.executable, "-m", "losszoo", "train", str(recipe), "--runs-dir", str(root)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        deadline = time.monotonic() + 120
        while not list(root.glob("shared/*/metrics.jsonl")):
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.05)
        second = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=300)
    finally:
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 0, second.stderr
    assert "Traceback" not in second.stderr and "error:" not in second.stderr
    if "6 claimed" in second.stderr:
        assert "no finished runs of shared yet" in second.stderr
    again = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=300)
    assert again.returncode == 0 and "poly1" in again.stdout
