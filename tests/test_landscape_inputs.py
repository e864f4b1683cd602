"""``losszoo landscape`` on bad input: what a run folder says is never run, damaged runs are skipped with
their reason, bad options are refused before any work (exit 2), user text is printed as it is, and no
checkpoint is ever written."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from losszoo.cli.main import app

runner = CliRunner()

RECIPE = {
    "experiment": "inputs",
    "dataset": "iris",
    "model": {"name": "mlp", "hidden": [8]},
    "loss": "cross_entropy",
    "seeds": [0, 1],
    "train": {"epochs": 2, "batch_size": 16, "device": "cpu"},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from losszoo import train

    root = tmp_path_factory.mktemp("runs")
    good = [root / "inputs" / r["run_id"] for r in train(RECIPE, runs_dir=root)]
    other = [root / "inputs" / r["run_id"] for r in train(RECIPE | {"model": {"name": "mlp", "hidden": [4]},
                                                                   "seeds": [0]}, runs_dir=root)]
    linear = [root / "inputs" / r["run_id"] for r in train(RECIPE | {"model": {"name": "linear"}}, runs_dir=root)]
    return root, good, other[0], linear


def copy_run(folder, where):
    shutil.copytree(folder, where)
    return where


def hashes(*folders):
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for f in folders for p in sorted(f.rglob("*.pt"))}


def test_a_runs_files_never_cause_an_import(trained, tmp_path, monkeypatch):
    _, good, _, _ = trained
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "imported"
    (tmp_path / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n")
    run = copy_run(good[0], tmp_path / "run")
    result = json.loads((run / "result.json").read_text())
    result["config"]["plugins"] = ["evil.py", "evil"]
    (run / "result.json").write_text(json.dumps(result))
    outcome = runner.invoke(app, ["landscape", str(run), "--probe", "16", "--budget", "1"])
    assert outcome.exit_code == 0, outcome.output
    assert not marker.exists()
    assert "evil" not in sys.modules


def test_damaged_runs_are_skipped_with_their_reason_and_the_others_measured(trained, tmp_path):
    _, good, _, _ = trained
    a_file = tmp_path / "a-file"
    a_file.write_text("not a run")
    result_dir = copy_run(good[0], tmp_path / "result-dir")
    (result_dir / "result.json").unlink()
    (result_dir / "result.json").mkdir()
    metrics_text = copy_run(good[0], tmp_path / "metrics-text")
    result = json.loads((metrics_text / "result.json").read_text())
    (metrics_text / "result.json").write_text(json.dumps(result | {"metrics": "oops"}))
    empty = copy_run(good[0], tmp_path / "empty-checkpoint")
    (empty / "checkpoint.pt").write_bytes(b"")
    garbage = copy_run(good[0], tmp_path / "garbage-checkpoint")
    (garbage / "checkpoint.pt").write_bytes(b"PK\x03\x04 not really a zip")
    foreign = copy_run(good[0], tmp_path / "foreign-checkpoint")
    torch.save({"weights": torch.zeros(3)}, foreign / "checkpoint.pt")
    bad = [a_file, result_dir, metrics_text, empty, garbage, foreign]
    outcome = runner.invoke(app, ["landscape", *map(str, bad), str(good[1]), "--probe", "16", "--budget", "1"])
    assert outcome.exit_code == 0, outcome.output
    output = " ".join(outcome.output.split())  # wrapped lines joined
    for folder, reason in ((a_file, "is a file, not a run folder"), (result_dir, "result.json is a directory"),
                           (metrics_text, "result.json's 'metrics' is a str, not a mapping"),
                           (empty, "checkpoint.pt is empty"), (garbage, "cannot read checkpoint.pt"),
                           (foreign, "checkpoint.pt is not a losszoo checkpoint")):
        assert f"skipped run {folder}: {reason}" in output, reason
    assert (good[1] / "landscape.json").is_file()
    for folder in bad[1:]:
        assert not (folder / "landscape.json").exists()
    # nothing left: exit 2, after the same warnings
    outcome = runner.invoke(app, ["landscape", *map(str, bad)])
    assert outcome.exit_code == 2
    assert "nothing left to measure" in outcome.output and "result.json is a directory" in outcome.output


def test_user_text_is_printed_as_it_is_and_never_names_a_file(trained, tmp_path):
    _, good, _, _ = trained
    odd = copy_run(good[0], tmp_path / "odd[/x][bold]name")
    odd_id = "[red]id[/red] $\\nope{$ ../../escaped"  # markup, a broken formula, a way out of the folder
    result = json.loads((odd / "result.json").read_text())
    (odd / "result.json").write_text(json.dumps(result | {"run_id": odd_id}))
    outcome = runner.invoke(app, ["landscape", str(odd), "--probe", "16", "--budget", "1"])
    assert outcome.exit_code == 0, outcome.output
    assert odd_id in outcome.output and "odd[/x][bold]name" in outcome.output
    assert (odd / "landscape-1d.png").is_file()  # the title drawn, formula and all
    other = copy_run(good[1], tmp_path / "other")
    outcome = runner.invoke(app, ["landscape", "--between", str(other), str(odd), "--probe", "16"])
    assert outcome.exit_code == 0, outcome.output
    assert (other / "between-x][bold]name.json").is_file()  # named by B's folder, not its run_id
    assert not list(tmp_path.rglob("escaped*"))
    broken = tmp_path / "[/x]missing"  # a folder "[" holding "x]missing"
    broken.mkdir(parents=True)
    (broken / "result.json").write_text("{}")
    outcome = runner.invoke(app, ["landscape", str(broken)])
    assert outcome.exit_code == 2 and "[/x]missing" in outcome.output


@pytest.mark.parametrize(("args", "words"), [
    (["--top-k", "0"], "--top-k must be at least 1"),
    (["--curve", "bezier"], "--curve works on a pair of runs"),
    (["--align"], "--align works on a pair of runs"),
    (["--weights", "middle"], "--weights must be one of best, last"),
    (["--between", "{a}", "{b}", "--curve", "spline"], "--curve must be one of bezier"),
    (["--between", "{a}", "{other}", "--curve", "bezier"], "--curve needs runs with the same model"),
    (["--between", "{a}", "{lin0}", "--align"], "same model"),
    (["--between", "{lin0}", "{lin1}", "--align"], "no permutation spec"),
])
def test_bad_options_are_refused_before_any_work(trained, args, words):
    root, good, other, linear = trained
    names = {"a": good[0], "b": good[1], "other": other, "lin0": linear[0], "lin1": linear[1]}
    before = {f: (f / "result.json").read_text() for f in names.values()}
    args = [a.format(**names) for a in args]
    runs = [] if "--between" in args else [str(good[0])]
    outcome = runner.invoke(app, ["landscape", *runs, *args, "--probe", "16"])
    assert outcome.exit_code == 2, outcome.output
    assert words in " ".join(outcome.output.split())
    assert before == {f: (f / "result.json").read_text() for f in names.values()}  # nothing measured


def test_an_unusable_plot_folder_is_refused_before_any_work(trained, tmp_path):
    _, good, _, _ = trained
    a_file = tmp_path / "plots.png"
    a_file.write_text("")
    before = (good[0] / "result.json").read_text()
    for plot, words in ((a_file, "is a file, not a folder"), (a_file / "below", "is a file, not a folder")):
        outcome = runner.invoke(app, ["landscape", str(good[0]), "--plot", str(plot)])
        assert outcome.exit_code == 2, outcome.output
        assert words in outcome.output
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        outcome = runner.invoke(app, ["landscape", str(good[0]), "--plot", str(locked / "plots")])
        assert outcome.exit_code == 2 and "not writable" in outcome.output
    assert (good[0] / "result.json").read_text() == before


def test_measuring_and_paths_never_write_a_checkpoint(trained):
    _, good, _, _ = trained
    before = hashes(*good)
    outcome = runner.invoke(app, ["landscape", str(good[0]), "--top-k", "3", "--probe", "16", "--budget", "2"])
    assert outcome.exit_code == 0, outcome.output
    assert "top 3" in outcome.output and "negative share" in outcome.output
    outcome = runner.invoke(app, ["landscape", "--between", str(good[0]), str(good[1]), "--align", "--curve",
                                  "bezier", "--curve-epochs", "1", "--probe", "16"])
    assert outcome.exit_code == 0, outcome.output
    assert hashes(*good) == before
    summary = json.loads((good[0] / "result.json").read_text())["landscape"]
    assert summary["settings"]["top_k"] == 3 and summary["negative_share"] is not None


PLUGIN = '''
import sys
import torch.nn.functional as F
import losszoo

with open(__file__ + ".log", "a") as log:
    log.write(" ".join(sys.argv) + "\\n")


@losszoo.register_loss("lz_inputs_test_ce", input="logits", family="custom")
def lz_inputs_test_ce(input, target):
    return F.cross_entropy(input, target)
'''


@pytest.mark.slow
def test_plugins_are_loaded_only_when_named(tmp_path):
    plugin = tmp_path / "plug.py"
    plugin.write_text(PLUGIN)
    recipe = RECIPE | {"plugins": [str(plugin)], "loss": "lz_inputs_test_ce", "seeds": [0], "experiment": "plug"}
    env = os.environ | {"LOSSZOO_RUNS": str(tmp_path / "runs")}

    def losszoo(*args, code: str | None = None):
        command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "losszoo", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)

    trained = losszoo(code=f"import losszoo; losszoo.train({recipe!r}, runs_dir={str(tmp_path / 'runs')!r})")
    assert trained.returncode == 0, trained.stderr
    run = next(p for p in (tmp_path / "runs" / "plug").iterdir() if p.is_dir())
    imports = plugin.with_name("plug.py.log").read_text().count("\n")
    without = losszoo("landscape", str(run), "--probe", "16", "--budget", "1")
    assert without.returncode == 2
    assert "lz_inputs_test_ce" in without.stderr and "--plugins" in without.stderr
    assert plugin.with_name("plug.py.log").read_text().count("\n") == imports  # not imported
    named = losszoo("landscape", str(run), "--plugins", "plug.py", "--probe", "16", "--budget", "1")
    assert named.returncode == 0, named.stderr
    assert (run / "landscape.json").is_file()
