"""Grids that finish, resume and scale: ``--jobs``, Ctrl-C, claims between
processes, and a real Dask scheduler and worker on 127.0.0.1.

Spawned workers import torch, so the tests that start processes take seconds,
not milliseconds; each starts as few as it can.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from losszoo.errors import LosszooError, RunError
from losszoo.recipe.load import load_recipe
from losszoo.registry import LOSSES
from losszoo.training.backends.processes import STOP_GRACE
from losszoo.training.claims import CLAIM_FILE, claim_holder, try_claim
from losszoo.training.grid import CLAIMED, train_grid
from losszoo.training.runner import run_dir_of
from losszoo.training.store import read_result

REPO = Path(__file__).resolve().parents[1]


def tiny(epochs: int = 3, losses=("cross_entropy", "focal"), seeds=(0, 1), dataset: str = "moons",
         stack: str | int = "off", **extra):
    """A small recipe; its runs train one by one unless ``stack`` says otherwise (the grid's own rules are
    tested run by run; stacks have tests of their own below)."""
    return load_recipe({
        "experiment": "grid", "dataset": dataset, "model": {"name": "mlp", "hidden": [16]},
        "losses": list(losses), "seeds": list(seeds), "train": {"epochs": epochs, "stack": stack}, **extra,
    })


class Recorder:
    """A Reporter that keeps every call, in order."""

    def __init__(self, interrupt_at: tuple[str, int] | None = None):
        self.events: list[tuple] = []
        self.interrupt_at = interrupt_at

    def start(self, run, epochs):
        self.events.append(("start", run.run_id))

    def epoch(self, run, epoch, epochs, train_loss, metric, value):
        self.events.append(("epoch", run.run_id, epoch))
        if self.interrupt_at == (run.run_id, epoch):
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C: only that is "interrupted by the user"
            time.sleep(1)  # the handler raises KeyboardInterrupt here, in the main thread

    def finish(self, run, result, skipped):
        self.events.append(("finish", run.run_id, result["status"], skipped))

    def of(self, run_id: str) -> list[tuple]:
        return [e for e in self.events if e[1] == run_id]


def folder_of(root: Path, run) -> Path:
    return run_dir_of(root, run)


def epoch_lines(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def run_python(script: str, *args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


# --- --jobs --------------------------------------------------------------------------------------


def test_jobs_2_trains_the_same_runs_as_jobs_1_and_reports_every_epoch(tmp_path):
    recipe = tiny()
    one, two = Recorder(), Recorder()
    first = train_grid(recipe, tmp_path / "one", jobs=1, reporter=one)
    second = train_grid(recipe, tmp_path / "two", jobs=2, reporter=two)

    assert [r["run_id"] for r in second] == [run.run_id for run in recipe.runs]
    assert {r["status"] for r in first + second} == {"completed"}
    for a, b, run in zip(first, second, recipe.runs, strict=True):
        assert a["metrics"] == b["metrics"] and a["best_epoch"] == b["best_epoch"]
        lines = [epoch_lines(folder_of(tmp_path / d, run)) for d in ("one", "two")]
        assert lines[0] == lines[1] and len(lines[1]) == 3
        assert read_result(folder_of(tmp_path / "two", run))["metrics"] == a["metrics"]
        # the workers' progress reached this process's reporter, in order
        assert two.of(run.run_id) == [("start", run.run_id), *[("epoch", run.run_id, e) for e in (1, 2, 3)],
                                      ("finish", run.run_id, "completed", False)]
    again = Recorder()
    assert train_grid(recipe, tmp_path / "two", jobs=2, reporter=again) == second
    assert {e for e in again.events if e[0] != "finish"} == set()
    assert all(e[3] for e in again.events)  # all skipped, no worker was needed


@pytest.fixture
def grid_plugin(tmp_path, monkeypatch):
    """A plugin file with a loss that kills its process and one that records torch's thread count."""
    plugin = tmp_path / "grid_test_losses.py"
    plugin.write_text(textwrap.dedent("""
        import os
        import torch
        import torch.nn.functional as F
        import losszoo

        @losszoo.register_loss("grid_test_process_killer", input="logits", family="test")
        def grid_test_process_killer(input, target):
            os._exit(3)

        @losszoo.register_loss("grid_test_thread_counter", input="logits", family="test")
        def grid_test_thread_counter(input, target):
            with open(os.environ["GRID_TEST_THREADS"], "a") as out:
                out.write(f"{torch.get_num_threads()}\\n")
            return F.cross_entropy(input, target)
    """))
    monkeypatch.setenv("GRID_TEST_THREADS", str(tmp_path / "threads.txt"))
    yield plugin
    for name in ("grid_test_process_killer", "grid_test_thread_counter"):
        LOSSES.remove(name)


def test_a_worker_that_dies_fails_its_run_only_and_runs_get_their_threads(tmp_path, grid_plugin, monkeypatch):
    expected = 3  # train.threads, whatever the worker started with
    monkeypatch.setenv("OMP_NUM_THREADS", str(expected + 1))
    recipe = load_recipe({
        "experiment": "grid", "dataset": "moons", "model": {"name": "mlp", "hidden": [16]}, "seeds": [0],
        "losses": ["grid_test_process_killer", "grid_test_thread_counter"], "plugins": [str(grid_plugin)],
        "train": {"epochs": 3, "threads": expected},
    })
    results = train_grid(recipe, tmp_path / "runs", jobs=2)

    killed, counted = results
    assert killed["status"] == "failed" and "worker process died (exit code 3)" in killed["error"]
    assert read_result(folder_of(tmp_path / "runs", recipe.runs[0]))["status"] == "failed"
    assert counted["status"] == "completed" and counted["epochs_run"] == 3, counted["error"]
    threads = {int(n) for n in (tmp_path / "threads.txt").read_text().split()}
    assert threads == {expected}


# --- Ctrl-C and resuming -------------------------------------------------------------------------


def test_ctrl_c_records_the_run_in_flight_and_a_second_run_finishes_what_is_missing(tmp_path):
    recipe = tiny(losses=["cross_entropy"], seeds=[0, 1, 2])
    runs, root = recipe.runs, tmp_path / "runs"
    stopped = Recorder(interrupt_at=(runs[2].run_id, 2))
    with pytest.raises(KeyboardInterrupt):
        train_grid(recipe, root, reporter=stopped)

    statuses = [read_result(folder_of(root, run))["status"] for run in runs]
    assert statuses == ["completed", "completed", "interrupted"]
    assert stopped.of(runs[2].run_id)[-1] == ("finish", runs[2].run_id, "interrupted", False)
    assert not list(root.rglob(CLAIM_FILE))
    # A failed run is retried like an interrupted one.
    failed = folder_of(root, runs[1]) / "result.json"
    failed.write_text(failed.read_text().replace('"completed"', '"failed"', 1))

    resumed = Recorder()
    results = train_grid(recipe, root, reporter=resumed)
    assert [r["status"] for r in results] == ["completed"] * 3
    assert [e for e in resumed.events if e[0] == "finish"] == [
        ("finish", runs[0].run_id, "completed", True),
        ("finish", runs[1].run_id, "completed", False),
        ("finish", runs[2].run_id, "completed", False),
    ]
    assert len(epoch_lines(folder_of(root, runs[2]))) == 3


CTRL_C_SCRIPT = """
    import sys
    from pathlib import Path
    from losszoo.recipe.load import load_recipe
    from losszoo.training.grid import train_grid

    class Printer:
        def start(self, run, epochs): print("start", run.run_id, flush=True)
        def epoch(self, run, epoch, epochs, loss, metric, value): pass
        def finish(self, run, result, skipped): print("finish", run.run_id, result["status"], flush=True)

    if __name__ == "__main__":
        recipe = load_recipe({"experiment": "grid", "dataset": "iris", "model": {"name": "mlp", "hidden": [16]},
                              "losses": ["cross_entropy"], "seeds": [0, 1, 2],
                              "train": {"epochs": 100000, "stack": "off"}})
        try:
            train_grid(recipe, Path(sys.argv[1]), jobs=2, reporter=Printer())
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(130)
"""


@pytest.mark.parametrize("target", ["parent", "group"])
def test_ctrl_c_with_jobs_records_running_runs_interrupted(tmp_path, target):
    """SIGINT to the parent alone (it forwards to its workers) or to the whole
    process group, as a terminal's Ctrl-C does: the runs in flight end
    `interrupted`, never `completed`, and the run not yet started has no result."""
    script = tmp_path / "ctrl_c.py"
    script.write_text(textwrap.dedent(CTRL_C_SCRIPT))
    root = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, str(script), str(root)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len([f for f in root.glob("grid/*/metrics.jsonl") if f.stat().st_size]) < 2:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the workers never started training"
            time.sleep(0.1)
        if target == "parent":
            os.kill(process.pid, signal.SIGINT)
        else:
            os.killpg(process.pid, signal.SIGINT)
        interrupted = time.monotonic()
        out, err = process.communicate(timeout=60)
        assert time.monotonic() - interrupted < STOP_GRACE, "the workers did not stop on the signal"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, err
    recipe = tiny(epochs=100000, losses=["cross_entropy"], seeds=[0, 1, 2], dataset="iris", stack="off")
    results = [read_result(folder_of(root, run)) for run in recipe.runs]
    assert [r["status"] for r in results[:2]] == ["interrupted", "interrupted"]
    assert results[2] is None
    assert out.count(" interrupted\n") == 2 and out.endswith("interrupted\n")
    assert not list(root.rglob(CLAIM_FILE))


# --- claims --------------------------------------------------------------------------------------


def test_a_claim_excludes_others_until_released(tmp_path):
    claim = try_claim(tmp_path / "run")
    assert claim is not None
    assert try_claim(tmp_path / "run") is None  # another open file, even in this process
    assert claim_holder(tmp_path / "run") == f"process {os.getpid()}"
    claim.release()
    assert not (tmp_path / "run" / CLAIM_FILE).exists()
    with try_claim(tmp_path / "run") as again:
        assert again is not None


def test_the_claim_of_a_killed_process_is_free(tmp_path):
    holder = run_python("""
        import sys, time
        from pathlib import Path
        from losszoo.training.claims import try_claim
        claim = try_claim(Path(sys.argv[1]))
        print("held" if claim else "refused", flush=True)
        time.sleep(120)
    """, str(tmp_path / "run"))
    try:
        assert holder.stdout.readline().strip() == "held"
        assert try_claim(tmp_path / "run") is None
        assert claim_holder(tmp_path / "run") == f"process {holder.pid}"
    finally:
        holder.kill()
        holder.wait()
    assert (tmp_path / "run" / CLAIM_FILE).exists()  # left behind, but nobody holds it
    claim = try_claim(tmp_path / "run")
    assert claim is not None
    claim.release()


def test_a_run_held_by_another_process_is_returned_as_claimed_and_trained_later(tmp_path):
    recipe = tiny(seeds=[0])
    root = tmp_path / "runs"
    held = try_claim(folder_of(root, recipe.runs[0]))
    reporter = Recorder()
    results = train_grid(recipe, root, reporter=reporter)
    assert [r["status"] for r in results] == [CLAIMED, "completed"]
    assert f"being trained by process {os.getpid()}" in results[0]["error"]
    assert read_result(folder_of(root, recipe.runs[0])) is None  # the holder's folder is left alone
    assert reporter.of(recipe.runs[0].run_id) == [("start", recipe.runs[0].run_id),
                                                  ("finish", recipe.runs[0].run_id, CLAIMED, False)]
    held.release()
    assert [r["status"] for r in train_grid(recipe, root)] == ["completed", "completed"]


TWO_PROCESSES_SCRIPT = """
    import json, sys, time
    from pathlib import Path
    from losszoo.recipe.load import load_recipe
    from losszoo.training.grid import train_grid

    class Recorder:
        def __init__(self): self.trained, self.skipped = [], []
        def start(self, run, epochs): pass
        def epoch(self, *args): pass
        def finish(self, run, result, skipped):
            (self.skipped if skipped else self.trained).append([run.run_id, result["status"]])

    if __name__ == "__main__":
        root, name = Path(sys.argv[1]), sys.argv[2]
        recipe = load_recipe({"experiment": "grid", "dataset": "moons", "model": {"name": "mlp", "hidden": [16]},
                              "losses": ["cross_entropy", "focal", "poly1"],
                              "seeds": [0, 1, 2], "train": {"epochs": 20, "stack": "off"}})
        (root.parent / f"ready-{name}").touch()
        while len(list(root.parent.glob("ready-*"))) < 2:
            time.sleep(0.01)
        recorder = Recorder()
        results = train_grid(recipe, root, reporter=recorder)
        print(json.dumps({"trained": recorder.trained, "skipped": recorder.skipped,
                          "statuses": [r["status"] for r in results]}))
"""


def test_two_processes_on_one_runs_folder_train_each_run_exactly_once(tmp_path):
    root = tmp_path / "runs"
    processes = [run_python(TWO_PROCESSES_SCRIPT, str(root), name) for name in ("a", "b")]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err
        outputs.append(json.loads(out.splitlines()[-1]))

    recipe = tiny(epochs=20, losses=["cross_entropy", "focal", "poly1"], seeds=[0, 1, 2], stack="off")
    everyone = {run.run_id for run in recipe.runs}
    trained = [{run_id for run_id, status in o["trained"] if status != CLAIMED} for o in outputs]
    assert trained[0] | trained[1] == everyone
    assert trained[0] & trained[1] == set(), "a run was trained twice"
    assert trained[0] and trained[1], "the two processes did not share the grid"
    for o in outputs:
        assert set(o["statuses"]) <= {"completed", CLAIMED}
    for run in recipe.runs:
        result = read_result(folder_of(root, run))
        assert result["status"] == "completed" and result["epochs_run"] == 20
        assert len(epoch_lines(folder_of(root, run))) == 20
        torch.load(folder_of(root, run) / "checkpoint.pt", weights_only=False)
    assert not list(root.rglob(CLAIM_FILE))


# --- Dask ----------------------------------------------------------------------------------------


def test_dask_workers_train_and_this_process_writes_the_run_store(tmp_path, monkeypatch, dask_scheduler):
    address, worker_dir = dask_scheduler
    monkeypatch.chdir(tmp_path)  # a relative runs folder: only this process can resolve it
    recipe = tiny()
    reporter = Recorder()
    results = train_grid(recipe, Path("runs"), address=address, reporter=reporter)
    local = train_grid(recipe, tmp_path / "local")

    assert [r["status"] for r in results] == ["completed"] * 4
    for result, expected, run in zip(results, local, recipe.runs, strict=True):
        folder = folder_of(tmp_path / "runs", run)
        assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.pt", "config.yaml", "last.pt",
                                                           "metrics.jsonl", "result.json"]
        assert read_result(folder) == result
        assert result["metrics"] == expected["metrics"]
        assert epoch_lines(folder) == epoch_lines(folder_of(tmp_path / "local", run))
        checkpoint = torch.load(folder / "checkpoint.pt", weights_only=False)
        assert checkpoint["epoch"] == result["best_epoch"]
        assert reporter.of(run.run_id)[0] == ("start", run.run_id)
        assert ("epoch", run.run_id, 3) in reporter.of(run.run_id)
        assert reporter.of(run.run_id)[-1] == ("finish", run.run_id, "completed", False)
    assert not list(worker_dir.rglob("metrics.jsonl"))  # the workers kept nothing

    again = Recorder()
    train_grid(recipe, Path("runs"), address=address, reporter=again)
    assert all(e[0] == "finish" and e[3] for e in again.events)


def test_dask_brings_back_every_file_a_local_run_writes(tmp_path, dask_scheduler):
    """Checkpoints kept by save_every, TensorBoard events, the 2-D embedding picture: what a run writes
    locally, a Dask worker's run writes too."""
    pytest.importorskip("tensorboard")
    address, _ = dask_scheduler
    recipe = load_recipe({"experiment": "grid", "dataset": "digits", "loss": "arcface", "seeds": [0],
                          "model": {"name": "mlp", "hidden": [16], "embedding_dim": 2},
                          "train": {"epochs": 2, "save_every": 1, "log": ["tensorboard"]}})
    (remote,) = train_grid(recipe, tmp_path / "remote", address=address)
    (local,) = train_grid(recipe, tmp_path / "local")
    assert remote["status"] == local["status"] == "completed"

    def files(root):
        folder = folder_of(root, recipe.runs[0])
        return sorted(str(p.relative_to(folder).parent / p.name.split(".")[0]) for p in folder.rglob("*")
                      if p.is_file())  # event files carry host and time in their names

    assert files(tmp_path / "remote") == files(tmp_path / "local")
    assert {"checkpoints/epoch-0001", "embeddings", "tensorboard/events"} <= set(files(tmp_path / "remote"))


def test_dask_with_mlflow_needs_a_tracking_server_before_any_work(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(LosszooError, match="MLFLOW_TRACKING_URI"):
        train_grid(tiny(train={"epochs": 1, "log": ["mlflow"]}), tmp_path / "runs", address="tcp://127.0.0.1:1")
    assert not (tmp_path / "runs").exists()


def test_an_unreachable_scheduler_fails_fast_with_a_clear_message(tmp_path):
    pytest.importorskip("distributed")
    started = time.monotonic()
    with pytest.raises(RunError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:1 "):
        train_grid(tiny(), tmp_path / "runs", address="tcp://127.0.0.1:1")
    assert time.monotonic() - started < 15
    assert not (tmp_path / "runs").exists()

    from typer.testing import CliRunner

    from losszoo.cli.main import app

    recipe = tmp_path / "tiny.yaml"
    recipe.write_text("dataset: moons\nmodel: {name: mlp, hidden: [16]}\nloss: cross_entropy\ntrain: {epochs: 2}\n")
    outcome = CliRunner().invoke(app, ["train", str(recipe), "--address", "tcp://127.0.0.1:1",
                                       "--runs-dir", str(tmp_path / "runs")])
    assert outcome.exit_code == 1
    assert "cannot reach the Dask scheduler" in outcome.output and "Traceback" not in outcome.output


def test_without_distributed_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(RunError, match=r"pip install 'losszoo\[dask\]'"):
        train_grid(tiny(), tmp_path / "runs", address="tcp://127.0.0.1:8786")


# --- stacks --------------------------------------------------------------------------------------


def test_runs_that_stack_train_as_one_unit_on_every_backend_with_the_numbers_of_lone_runs(tmp_path):
    alone = train_grid(tiny(), tmp_path / "alone")
    stacked_recipe = tiny(stack="auto")
    recorder = Recorder()
    stacked = train_grid(stacked_recipe, tmp_path / "stacked", reporter=recorder)
    two = train_grid(stacked_recipe, tmp_path / "two", jobs=2)
    for a, b, c, run in zip(alone, stacked, two, stacked_recipe.runs, strict=True):
        assert b["status"] == c["status"] == "completed"
        for split in ("val", "test"):
            for name, value in a["metrics"][split].items():
                assert b["metrics"][split][name] == pytest.approx(value, rel=1e-4, abs=1e-5), (split, name)
        assert b["metrics"] == c["metrics"]  # one stack, whichever backend trains it
        assert recorder.of(run.run_id)[-1] == ("finish", run.run_id, "completed", False)
    # the four runs trained at once: every start before the first finish
    first_finish = next(i for i, e in enumerate(recorder.events) if e[0] == "finish")
    assert sum(e[0] == "start" for e in recorder.events[:first_finish]) == 4


def test_ctrl_c_in_a_stack_records_every_member_interrupted_with_its_epochs(tmp_path):
    recipe = tiny(epochs=5, stack="auto")
    runs = recipe.runs
    with pytest.raises(KeyboardInterrupt):
        train_grid(recipe, tmp_path / "runs", reporter=Recorder(interrupt_at=(runs[0].run_id, 2)))
    results = [read_result(folder_of(tmp_path / "runs", run)) for run in runs]
    assert [r["status"] for r in results] == ["interrupted"] * 4
    assert all(r["epochs_run"] in (1, 2) for r in results) and results[0]["epochs_run"] == 2
    assert not list((tmp_path / "runs").rglob(CLAIM_FILE))
    resumed = train_grid(recipe, tmp_path / "runs")
    assert [r["status"] for r in resumed] == ["completed"] * 4


def test_a_claim_file_honours_the_umask_so_that_other_users_can_claim_it_later(tmp_path):
    old = os.umask(0o002)
    try:
        claim = try_claim(tmp_path / "run")
        assert claim is not None
        assert (tmp_path / "run" / CLAIM_FILE).stat().st_mode & 0o777 == 0o664
        claim.release()
    finally:
        os.umask(old)
