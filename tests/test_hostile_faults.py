"""Issue 11, environment and data faults: one clear line, never the catch-all.

A runs folder or plot path that cannot be written is refused before any
work; a damaged run folder is skipped with its name and reason while the
grid, compare and landscape go on with the others; a user's csv or npz file
with a fault is exit 2 at ``recipe.yaml:LINE dataset.KEY``; a bad ``--address``
is one line at once; a plugin's ``sys.exit`` never ends losszoo; only a real
SIGINT is recorded as "interrupted by the user".
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from losszoo.cli.main import app
from losszoo.registry import LOSSES

REPO = Path(__file__).resolve().parents[1]
cli = CliRunner()
TINY = {"experiment": "tiny", "dataset": "iris", "losses": ["cross_entropy", "focal"], "seeds": [0, 1, 2],
        "train": {"epochs": 2, "batch_size": 32}}
#: A folder nobody can create anything in, root included (root passes every permission check).
UNWRITABLE = Path("/proc/losszoo-cannot-write-here")


def invoke(*args):
    return cli.invoke(app, [str(a) for a in args])


def write(folder: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def flat(outcome) -> str:
    return " ".join(outcome.output.split())


def assert_one_line_error(outcome, code: int, *words: str) -> None:
    assert outcome.exit_code == code, outcome.output
    text = flat(outcome)
    assert "error:" in text
    for word in words:
        assert word in text, f"{word!r} not in {outcome.output}"
    assert "Traceback" not in outcome.output
    assert "(set LOSSZOO_DEBUG=1" not in outcome.output  # never the catch-all


def subprocess_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "COLUMNS": "200", **extra}


def train_into(folder: Path, recipe: dict) -> Path:
    """Train ``recipe`` into ``folder/runs`` through the CLI and return that runs folder."""
    root = folder / "runs"
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    outcome = invoke("train", path, "--runs-dir", root)
    assert outcome.exit_code == 0, outcome.output
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A runs folder with experiment `tiny`: 2 losses x 3 seeds on iris, 2 epochs."""
    return train_into(tmp_path_factory.mktemp("trained"), TINY)


@pytest.fixture
def recipe(tmp_path) -> Path:
    return write(tmp_path, yaml.safe_dump(TINY), "tiny.yaml")


def run_folders(root: Path, experiment: str = "tiny") -> list[Path]:
    return sorted(p for p in (root / experiment).iterdir() if not p.name.startswith("."))


# --- the runs folder -----------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["train", "{recipe}"], ["train", "{recipe}", "--dry-run"], ["compare"]])
def test_a_runs_folder_that_is_a_file(tmp_path, recipe, args):
    afile = tmp_path / "runs"
    afile.write_text("not a folder")
    outcome = invoke(*[a.format(recipe=recipe) for a in args], "--runs-dir", afile)
    assert_one_line_error(outcome, 2, f"runs folder {afile} is a file")


def test_landscape_with_a_runs_folder_that_is_a_file(tmp_path):
    afile = tmp_path / "runs"
    afile.write_text("not a folder")
    outcome = invoke("landscape", "tiny", "--runs-dir", afile)
    assert_one_line_error(outcome, 2, str(afile))


@pytest.mark.parametrize("where", ["under a file", "unwritable"])
def test_a_runs_folder_that_cannot_be_written_trains_nothing(tmp_path, recipe, where):
    if where == "unwritable":
        if not Path("/proc").is_dir():
            pytest.skip("no /proc here")
        root = UNWRITABLE / "runs"
    else:
        (tmp_path / "afile").write_text("")
        root = tmp_path / "afile" / "runs"
    outcome = invoke("train", recipe, "--runs-dir", root)
    assert_one_line_error(outcome, 2, f"runs folder {root} is not writable", "--runs-dir")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_runs_folder(tmp_path, recipe):
    root = tmp_path / "runs"
    root.mkdir()
    root.chmod(0o555)
    try:
        outcome = invoke("train", recipe, "--runs-dir", root)
    finally:
        root.chmod(0o755)
    assert_one_line_error(outcome, 2, "is not writable")


# --- output paths, checked before any work -------------------------------------------------------


@pytest.fixture
def no_comparison(monkeypatch):
    """compare must refuse a bad --plot before it loads a single run."""
    import losszoo.cli.compare as command

    def load(*args, **kwargs):
        raise AssertionError("the comparison was loaded before --plot was checked")

    monkeypatch.setattr(command, "load", load)


def _plot_cases(tmp_path: Path) -> list[tuple[Path, str]]:
    (tmp_path / "afile").write_text("")
    (tmp_path / "folder").mkdir()
    cases = [(tmp_path / "folder", "is a folder"), (tmp_path / "plot.txt", "must end in .png or .svg or .pdf"),
             (tmp_path / "plot", "must end in"), (tmp_path / "afile" / "plot.png", "is a file, not a folder"),
             (tmp_path / "afile" / "deeper" / "plot.png", "is a file, not a folder")]
    if Path("/proc").is_dir():
        cases += [(UNWRITABLE / "plot.png", "cannot write there"), (Path("/proc/plot.png"), "cannot write there")]
    return cases


def test_compare_plot_paths_are_checked_before_any_work(trained, tmp_path, no_comparison):
    for plot, words in _plot_cases(tmp_path):
        outcome = invoke("compare", "--runs-dir", trained, "--plot", plot)
        assert_one_line_error(outcome, 2, f"--plot {plot}", words)
    assert not (tmp_path / "folder.png").exists()
    assert sorted(p.name for p in (tmp_path / "folder").iterdir()) == []


def test_compare_plot_into_a_new_folder_and_an_upper_case_suffix(trained, tmp_path):
    for plot in (tmp_path / "new" / "deeper" / "plot.png", tmp_path / "PLOT.PNG"):
        outcome = invoke("compare", "--runs-dir", trained, "--plot", plot)
        assert outcome.exit_code == 0, outcome.output
        assert plot.is_file() and plot.stat().st_size > 0
        assert f"wrote {plot}" in flat(outcome)


def test_landscape_plot_paths_are_checked_before_any_work(trained, tmp_path):
    (tmp_path / "afile").write_text("")
    cases = [(tmp_path / "afile", "is a file"), (tmp_path / "afile" / "plots", "is a file, not a folder")]
    if Path("/proc").is_dir():
        cases.append((UNWRITABLE / "plots", "cannot write there"))
    run = run_folders(trained)[0]
    for plot, words in cases:
        start = time.monotonic()
        outcome = invoke("landscape", run, "--runs-dir", trained, "--plot", plot, "--budget", "1")
        assert_one_line_error(outcome, 2, f"--plot {plot}", words)
        assert time.monotonic() - start < 10
    assert not (run / "landscape.json").exists()


def test_a_folder_given_as_the_recipe(tmp_path):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes.yaml").write_text("dataset: iris\n")  # a close name must not be offered instead
    outcome = invoke("train", tmp_path / "recipes", "--dry-run")
    assert_one_line_error(outcome, 2, "is a folder; give a recipe file")
    assert "did you mean" not in outcome.output


# --- damaged run folders: skipped with a reason, the others go on --------------------------------


def damage(root: Path) -> dict[str, tuple[Path, str]]:
    """Damage four of `tiny`'s runs in four ways; each with the words a warning about it must hold."""
    a, b, c, d = run_folders(root)[:4]
    shutil.rmtree(a)
    a.write_text("a file where a run folder should be")
    (b / "result.json").unlink()
    (b / "result.json").mkdir()
    result = json.loads((c / "result.json").read_text())
    result["metrics"] = "oops"
    (c / "result.json").write_text(json.dumps(result))
    (d / "checkpoint.pt").write_bytes(b"")
    return {"file": (a, "a file where a run folder should be"), "result dir": (b, "result.json is a folder"),
            "metrics string": (c, "metrics are not a mapping"), "empty checkpoint": (d, "checkpoint.pt is empty")}


@pytest.fixture
def damaged(trained, tmp_path) -> tuple[Path, dict]:
    root = tmp_path / "runs"
    shutil.copytree(trained, root)
    return root, damage(root)


def test_compare_skips_damaged_runs_with_their_reason(damaged):
    root, runs = damaged
    outcome = invoke("compare", "--runs-dir", root)
    assert outcome.exit_code == 0, outcome.output
    text = flat(outcome)
    for name in ("file", "result dir", "metrics string"):
        folder, words = runs[name]
        assert f"skipped {folder}:" in text and words in text, outcome.output
    assert "cross_entropy" in text or "focal" in text  # the table of what is left
    assert "Traceback" not in outcome.output


@pytest.mark.parametrize(("change", "words"), [
    ({"seed": None}, "seed is not an integer"),
    ({"seed": "0"}, "seed is not an integer"),
    ({"generalization_gap": [1, 2]}, "generalization_gap is not a mapping"),
    ({"config.trial": True}, "config.trial is not a study and a trial number"),
    ({"config.trial": {"study": "s"}}, "config.trial is not a study and a trial number"),
    ({"config.tuned": [1]}, "config.tuned is not a tuning record"),
])
def test_a_readable_result_json_of_the_wrong_shape_is_skipped_by_every_reader(trained, tmp_path, change, words):
    """Valid JSON with a field of the wrong type: skipped with its reason by compare, its plots, --correlate
    and the report, never the catch-all."""
    root = tmp_path / "runs"
    shutil.copytree(trained, root)
    folder = run_folders(root)[0]
    result = json.loads((folder / "result.json").read_text())
    for key, value in change.items():
        *parents, last = key.split(".")
        place = result
        for parent in parents:
            place = place[parent]
        place[last] = value
    (folder / "result.json").write_text(json.dumps(result))
    for args in ([], ["--plot", tmp_path / "cmp.png"], ["--correlate", "train_seconds"]):
        outcome = invoke("compare", "--runs-dir", root, *args)
        assert outcome.exit_code == 0, outcome.output
        assert f"skipped {folder}:" in flat(outcome) and words in flat(outcome), outcome.output
        assert "Traceback" not in outcome.output
    outcome = invoke("report", "tiny", "--runs-dir", root, "--output", tmp_path / "report.html")
    assert outcome.exit_code == 0 and words in flat(outcome), outcome.output


def test_the_grid_goes_on_past_damaged_run_folders(damaged, tmp_path, recipe):
    root, runs = damaged
    (run_folders(root)[3] / ".claim").mkdir()  # a stray .claim folder beside a completed run changes nothing
    outcome = invoke("train", recipe, "--runs-dir", root)
    text = flat(outcome)
    assert outcome.exit_code == 1, outcome.output  # two runs could not be trained, and it says so
    assert "2 failed" in text and "2 of 6 runs failed" in text
    for name, words in (("file", "is a file, not a run folder"), ("result dir", "result.json is a folder")):
        folder = runs[name][0]
        assert f"({folder.name}) failed: cannot train into its folder: {folder}" in text and words in text
    assert json.loads((runs["metrics string"][0] / "result.json").read_text())["status"] == "completed"  # retrained
    assert "(set LOSSZOO_DEBUG=1" not in outcome.output and "Traceback" not in outcome.output


def test_a_claim_that_is_a_folder_fails_that_run_only(tmp_path, recipe):
    from losszoo.recipe.load import load_recipe
    from losszoo.training.runner import run_dir_of

    root = tmp_path / "runs"
    runs = load_recipe(recipe).runs
    (run_dir_of(root, runs[0]) / ".claim").mkdir(parents=True)
    outcome = invoke("train", recipe, "--runs-dir", root)
    assert outcome.exit_code == 1, outcome.output
    assert f"{run_dir_of(root, runs[0]) / '.claim'} is a folder, not a file" in flat(outcome)
    assert "1 failed, 5 completed" in flat(outcome)


@pytest.mark.slow
def test_landscape_skips_damaged_runs_and_measures_the_others(damaged):
    root, runs = damaged
    good = [p for p in run_folders(root) if p not in {f for f, _ in runs.values()}]
    outcome = invoke("landscape", *[f for f, _ in runs.values()], *good, "--runs-dir", root, "--budget", "1",
                     "--probe", "16")
    assert outcome.exit_code == 0, outcome.output
    text = flat(outcome)
    for folder, _ in runs.values():
        assert f"skipped run {folder}" in text, outcome.output
    assert "checkpoint.pt is empty" in text
    assert "Traceback" not in outcome.output


# --- a user's data files ----------------------------------------------------------------------------


ROWS = "".join(f"{i / 10},{i % 7},{'abc'[i % 3]}\n" for i in range(60))


def _csv_cases():
    yield "latin-1", ("f1,f2,lab\n" + ROWS.replace("a\n", "\u00e9\n")).encode("latin-1"), "not UTF-8 text"
    yield "utf-16", ("f1,f2,lab\n" + ROWS).encode("utf-16"), "UTF-16"
    yield "single class", ("f1,f2,lab\n" + ROWS.replace("b\n", "a\n").replace("c\n", "a\n")).encode(), "single class"
    yield "empty", b"", "empty"
    yield "header only", b"f1,f2,lab\n", "no rows"
    yield "ragged", ("f1,f2,lab\n" + ROWS + "1,2\n").encode(), "2 values for 3 columns"
    yield "nan feature", ("f1,f2,lab\n" + ROWS + "nan,1,a\n").encode(), "nan"
    yield "no such target", ("f1,f2,label\n" + ROWS).encode(), "lab"
    yield "random bytes", bytes(range(256)) * 4, "UTF-8"


@pytest.mark.parametrize(("content", "words"), [c[1:] for c in _csv_cases()], ids=[c[0] for c in _csv_cases()])
def test_a_faulty_csv_is_a_recipe_error_at_its_key(tmp_path, content, words):
    (tmp_path / "data.csv").write_bytes(content)
    path = write(tmp_path, """
        dataset: {name: csv, path: data.csv, target: lab}
        losses: [cross_entropy]
        """)
    outcome = invoke("train", path, "--dry-run")
    assert_one_line_error(outcome, 2, "recipe.yaml:1 dataset.", words)


def test_a_csv_with_a_utf8_bom_is_read(tmp_path):
    (tmp_path / "data.csv").write_bytes(b"\xef\xbb\xbf" + ("f1,f2,lab\n" + ROWS).encode())
    path = write(tmp_path, """
        dataset: {name: csv, path: data.csv, target: lab}
        losses: [cross_entropy]
        """)
    outcome = invoke("train", path, "--dry-run")
    assert outcome.exit_code == 0, outcome.output


def _npz_cases():
    x, y = np.random.default_rng(0).random((60, 3)), np.arange(60) % 3
    nan_y = y.astype(float)
    nan_y[3] = np.nan
    yield "1-D x", {"x": x[:, 0], "y": y}, "path", "x has shape (60,)"
    yield "string x", {"x": np.array([["a", "b"]] * 60), "y": y}, "path", "not numbers"
    yield "0-d arrays", {"x": np.array(1.0), "y": np.array(2)}, "path", "a single value (a 0-d array)"
    yield "2-D y", {"x": x, "y": np.stack([y, y], 1)}, "path", "y has shape (60, 2)"
    yield "one-hot y", {"x": x, "y": np.eye(3)[y]}, "path", "one-hot"
    yield "nan in y", {"x": x, "y": nan_y}, "path", "inf or nan values (the first in row 3)"
    yield "float labels", {"x": x, "y": y + 0.5}, "task", "not a class label"
    yield "no y", {"x": x}, "path", "needs arrays named x and y"
    yield "rows differ", {"x": x, "y": y[:50]}, "path", "60 rows and y 50"
    yield "one class", {"x": x, "y": np.zeros(60)}, "path", "single class"


@pytest.mark.parametrize(("arrays", "key", "words"), [c[1:] for c in _npz_cases()], ids=[c[0] for c in _npz_cases()])
def test_a_faulty_npz_is_a_recipe_error_at_its_key(tmp_path, arrays, key, words):
    np.savez(tmp_path / "data.npz", **arrays)
    path = write(tmp_path, """
        dataset: {name: npz, path: data.npz}
        losses: [cross_entropy]
        """)
    assert_one_line_error(invoke("train", path, "--dry-run"), 2, f"recipe.yaml:1 dataset.{key}:", words)


@pytest.mark.parametrize(("content", "words"), [
    (b"hello, not numpy", "not an .npz archive"),
    (b"", "not an .npz archive"),
    (b"\x93NUMPY\x01\x00", "one .npy array"),
    (b"PK\x03\x04truncated", "not a readable .npz file"),
], ids=["text", "empty", "npy", "truncated zip"])
def test_a_file_that_is_not_an_npz_archive(tmp_path, content, words):
    (tmp_path / "data.npz").write_bytes(content)
    path = write(tmp_path, """
        dataset: {name: npz, path: data.npz}
        losses: [cross_entropy]
        """)
    assert_one_line_error(invoke("train", path, "--dry-run"), 2, "recipe.yaml:1 dataset.path:", words)


def test_an_npz_of_python_objects_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "MARKER"

    class Evil:
        def __reduce__(self):
            return (Path.write_text, (marker, "ran"))

    np.savez(tmp_path / "data.npz", x=np.array([Evil()] * 60, dtype=object), y=np.arange(60) % 3)
    path = write(tmp_path, """
        dataset: {name: npz, path: data.npz}
        losses: [cross_entropy]
        """)
    assert_one_line_error(invoke("train", path, "--dry-run"), 2, "recipe.yaml:1 dataset.path:", "Python objects")
    assert not marker.exists()


# --- training edge cases -------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [19, 95, 97])
def test_batch_norm_with_a_last_batch_of_one_trains(tmp_path, batch_size):
    """iris trains on 96 samples: batches of 19 or 95 leave one sample over; 97 is one batch of all."""
    path = write(tmp_path, yaml.safe_dump({"experiment": "bn", "dataset": "iris",
                                           "model": {"name": "mlp", "batch_norm": True},
                                           "losses": ["cross_entropy", "arcface"],
                                           "train": {"epochs": 2, "batch_size": batch_size}}))
    outcome = invoke("train", path, "--runs-dir", tmp_path / "runs")
    assert outcome.exit_code == 0, outcome.output
    assert "2 completed" in outcome.output


def test_batch_norm_with_batches_of_one_is_a_recipe_error(tmp_path):
    path = write(tmp_path, """
        dataset: iris
        model: {name: mlp, batch_norm: true}
        losses: [cross_entropy]
        train: {batch_size: 1}
        """)
    assert_one_line_error(invoke("train", path, "--dry-run"), 2, "recipe.yaml:2 model.batch_norm:",
                          "batch of one sample")
    assert invoke("train", path, "--dry-run", "--set", "model.batch_norm=false").exit_code == 0


# --- --address ----------------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["notaurl", "tcp://host:99999", "tcp://:8786", "http://host:1", "", " "])
def test_a_bad_address_is_one_line_at_once(tmp_path, recipe, address):
    start = time.monotonic()
    process = subprocess.run([sys.executable, "-m", "losszoo", "train", str(recipe), "--runs-dir",
                              str(tmp_path / "runs"), "--address", address], capture_output=True, text=True,
                             timeout=60, env=subprocess_env(), cwd=tmp_path)
    assert time.monotonic() - start < 8, "an address that cannot be right was tried"
    assert process.returncode == 2, process.stderr
    lines = [line for line in process.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --address"), process.stderr
    assert "Exception ignored" not in process.stderr and "Traceback" not in process.stderr
    assert not (tmp_path / "runs").exists()  # nothing trained here instead


def test_a_bad_address_fails_a_dry_run_too(recipe):
    assert_one_line_error(invoke("train", recipe, "--dry-run", "--address", "notaurl"), 2, "--address 'notaurl'")


# --- plugins that end the process ---------------------------------------------------------------


def test_a_plugin_that_exits_at_import(tmp_path, monkeypatch):
    (tmp_path / "quits.py").write_text("import sys\nsys.exit(3)\n")
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, "plugins: [quits.py]\ndataset: iris\nlosses: [cross_entropy]\n")
    assert_one_line_error(invoke("train", path, "--dry-run"), 2, "recipe.yaml:1 plugins:", "sys.exit(3)")
    for args in (["list"], ["show", "focal"], ["compare", "--runs-dir", tmp_path / "runs"]):
        assert_one_line_error(invoke(*args, "--plugins", "quits.py"), 2, "plugin quits.py called sys.exit(3)")


@pytest.mark.parametrize("ending", ["sys.exit(3)", "raise SystemExit('bye')", "raise RuntimeError('boom [/x]')"])
def test_a_loss_that_ends_the_process_fails_its_run_only(tmp_path, ending):
    name = f"ends_{abs(hash(ending))}"
    (tmp_path / "rude.py").write_text(textwrap.dedent(f"""
        import sys
        import losszoo

        @losszoo.register_loss("{name}", input="logits", family="custom")
        def {name}(logits, labels):
            {ending}
        """))
    path = write(tmp_path, yaml.safe_dump({"experiment": "rude", "plugins": ["rude.py"], "dataset": "iris",
                                           "losses": [name, "cross_entropy"], "train": {"epochs": 1}}))
    try:
        outcome = invoke("train", path, "--runs-dir", tmp_path / "runs")
    finally:
        if name in LOSSES:
            LOSSES.remove(name)
    assert_one_line_error(outcome, 1, "1 failed, 1 completed", "1 of 2 runs failed")
    results = [json.loads(p.read_text()) for p in (tmp_path / "runs" / "rude").glob("*/result.json")]
    statuses = sorted((r["label"], r["status"]) for r in results)
    assert statuses == [("cross_entropy", "completed"), (name, "failed")]
    error = next(r["error"] for r in results if r["status"] == "failed")
    assert "rude.py" in error and "interrupted" not in error


# --- only a real SIGINT is the user's ----------------------------------------------------------


@pytest.mark.slow
def test_a_real_sigint_records_interrupted_with_the_epochs_it_ran(tmp_path):
    path = write(tmp_path, yaml.safe_dump({"experiment": "long", "dataset": "digits", "losses": ["cross_entropy"],
                                           "train": {"epochs": 2000, "batch_size": 64}}))
    root = tmp_path / "runs"
    process = subprocess.Popen([sys.executable, "-m", "losszoo", "train", str(path), "--runs-dir", str(root)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=subprocess_env(),
                               cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        log = None
        while log is None or len(log.read_text().splitlines()) < 3:
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "training did not start"
            log = next(root.glob("long/*/metrics.jsonl"), None)
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGINT)
        assert process.wait(60) == 130
    finally:
        if process.poll() is None:
            process.kill()
    stderr = process.stderr.read()
    assert "interrupted" in stderr and "Traceback" not in stderr
    result = json.loads((log.parent / "result.json").read_text())
    assert result["status"] == "interrupted" and result["error"] == "interrupted by the user"
    epochs_logged = len(log.read_text().splitlines())
    assert 3 <= result["epochs_run"] <= epochs_logged + 1  # the epoch in progress when Ctrl-C came may be half done


def test_an_error_outside_the_model_records_the_run_failed_not_interrupted(tmp_path):
    """Any abnormal end but Ctrl-C (here: the progress view breaks) is `failed` with its reason."""
    from losszoo.recipe.load import load_recipe
    from losszoo.training.grid import train_grid

    class Broken:
        def start(self, run, epochs):
            pass

        def epoch(self, *args):
            raise MemoryError("the view ran out of memory")

        def finish(self, run, result, skipped):
            pass

    spec = load_recipe(write(tmp_path, yaml.safe_dump({**TINY, "losses": ["cross_entropy"], "seeds": [0, 1]})))
    results = train_grid(spec, tmp_path / "runs", reporter=Broken())
    assert [r["status"] for r in results] == ["failed", "failed"]  # and the grid went on to the second
    assert all("MemoryError: the view ran out of memory" in r["error"] for r in results)


@pytest.mark.slow
def test_a_sigterm_is_never_recorded_as_the_users_interrupt(tmp_path):
    """SIGTERM ends the process at once: the run stays unfinished (no result.json), and the next train
    trains it; it is never `interrupted by the user` nor `completed`."""
    path = write(tmp_path, yaml.safe_dump({"experiment": "long", "dataset": "iris", "losses": ["cross_entropy"],
                                           "train": {"epochs": 5000, "batch_size": 8}}))
    root = tmp_path / "runs"
    process = subprocess.Popen([sys.executable, "-m", "losszoo", "train", str(path), "--runs-dir", str(root)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=subprocess_env(),
                               cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not any(log.read_text().count("\n") >= 2 for log in root.glob("long/*/metrics.jsonl")):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        process.terminate()
        assert process.wait(60) != 0
    finally:
        if process.poll() is None:
            process.kill()
    folder = next(root.glob("long/*"))
    result = folder / "result.json"
    assert not result.exists() or json.loads(result.read_text())["status"] == "failed"
