"""The command line as a user of Typer and Rich expects it: version, completion, quiet, streams,
suggestions for near misses, help without misleading types, snippets that work."""

import re
import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

import losszoo
from losszoo.cli.main import app
from losszoo.recipe.load import load_recipe

runner = CliRunner()


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag):
    outcome = runner.invoke(app, [flag])
    assert outcome.exit_code == 0 and outcome.output.strip() == f"losszoo {losszoo.__version__}"


def test_shell_completion_is_offered(monkeypatch):
    """As a bash user gets it. Typer finds the shell among the process's ancestors (shellingham), which a test
    started in the background may not have (reparented to init): the shell is fixed here."""
    import shellingham

    monkeypatch.setattr(shellingham, "detect_shell", lambda *args, **kwargs: ("bash", "/bin/bash"))
    outcome = runner.invoke(app, ["--show-completion"])
    assert outcome.exit_code == 0 and "losszoo" in outcome.output and "complete" in outcome.output
    assert "--install-completion" in runner.invoke(app, ["--help"]).output


@pytest.mark.parametrize("command", [["train", "--help"], ["compare", "--help"], ["landscape", "--help"],
                                     ["report", "--help"], ["--help"]])
def test_flags_show_no_bool_type(command):
    outcome = runner.invoke(app, command, env={"COLUMNS": "200"})
    assert outcome.exit_code == 0 and "<bool>" not in outcome.output


@pytest.mark.parametrize(("word", "words"), [("lossess", "did you mean 'losses'?"),
                                             ("nosuchkind", "list takes losses, datasets, models, metrics")])
def test_list_of_an_unknown_kind_is_exit_2(word, words):
    outcome = runner.invoke(app, ["list", word])
    assert outcome.exit_code == 2 and words in outcome.output and "Traceback" not in outcome.output


def test_list_still_takes_a_pattern_or_a_loss_name():
    assert "arcface" in runner.invoke(app, ["list", "*face*"]).output
    assert runner.invoke(app, ["list", "arcface"]).exit_code == 0


@pytest.mark.parametrize("name", ["csv", "parquet", "npz", "image_folder", "digits", "mlp", "arcface"])
def test_show_prints_a_snippet_that_validates(tmp_path, monkeypatch, name):
    outcome = runner.invoke(app, ["show", name], env={"COLUMNS": "400"})
    assert outcome.exit_code == 0, outcome.output
    snippet = yaml.safe_load(outcome.output.split("recipe snippet", 1)[1])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "table.csv").write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(30)))
    import numpy as np

    np.savez(tmp_path / "arrays.npz", x=np.random.default_rng(0).normal(size=(30, 4)), y=np.arange(30) % 2)
    if name == "image_folder":
        PIL = pytest.importorskip("PIL.Image")
        for label in ("a", "b"):
            for i in range(6):
                (tmp_path / "photos" / label).mkdir(parents=True, exist_ok=True)
                PIL.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / "photos" / label / f"{i}.png")
    if name == "parquet":
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"a": list(range(30)), "label": [i % 2 for i in range(30)]}), tmp_path / "table.csv")
    recipe = {"dataset": "iris", "loss": "cross_entropy", **snippet}
    if "losses" in snippet:
        recipe.pop("loss")
        recipe["model"] = {"name": "mlp", "embedding_dim": 8}
    if name in ("image_folder", "digits") or "model" in snippet:
        recipe.setdefault("model", "mlp")
    assert load_recipe(recipe).runs


def test_quiet_prints_only_the_table(tmp_path):
    recipe = tmp_path / "q.yaml"
    recipe.write_text("dataset: iris\nloss: cross_entropy\ntrain: {epochs: 1}\n")
    outcome = runner.invoke(app, ["--quiet", "train", str(recipe), "--runs-dir", str(tmp_path / "runs")])
    assert outcome.exit_code == 0
    assert "seed 0" not in outcome.stderr and "runs in" not in outcome.stderr
    assert "cross_entropy" in outcome.stdout


def test_progress_goes_to_stderr_and_stdout_holds_the_table(tmp_path):
    recipe = tmp_path / "s.yaml"
    recipe.write_text("dataset: iris\nlosses: [cross_entropy, focal]\ntrain: {epochs: 2}\n")
    done = subprocess.run([sys.executable, "-m", "losszoo", "train", str(recipe), "--runs-dir", str(tmp_path / "r")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "seed 0" in done.stderr and "2 completed" in done.stderr and str(tmp_path / "r" / "s") in done.stderr
    assert "seed 0" not in done.stdout and "completed" not in done.stdout
    assert "cross_entropy" in done.stdout and "focal" in done.stdout
    piped = subprocess.run([sys.executable, "-m", "losszoo", "compare", "s", "--runs-dir", str(tmp_path / "r"),
                            "--format", "csv"], capture_output=True, text=True)
    assert piped.stdout.splitlines()[0].startswith("dataset,") or piped.stdout.splitlines()[0].startswith("label,")
    assert "warning" not in piped.stdout


def test_no_color_is_respected(tmp_path):
    recipe = tmp_path / "c.yaml"
    recipe.write_text("dataset: iris\nloss: cross_entropy\ntrain: {epochs: 1}\n")
    subprocess.run([sys.executable, "-m", "losszoo", "train", str(recipe), "--runs-dir", str(tmp_path / "r")],
                   capture_output=True)
    shown = subprocess.run(["script", "-qec", f"{sys.executable} -m losszoo compare c --runs-dir {tmp_path / 'r'}",
                            "/dev/null"], capture_output=True, text=True, env={"NO_COLOR": "1", "TERM": "xterm",
                                                                              "PATH": "/usr/bin:/bin"})
    if shown.returncode != 0:
        pytest.skip("no `script` to give the command a terminal")
    colour = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-8]|9[0-7]|4[0-8]|10[0-7])(?:;[0-9;]*)?m")
    assert "┏" in shown.stdout and not colour.search(shown.stdout)  # bold may stay: NO_COLOR is about colour
