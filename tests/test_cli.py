"""The command line through CliRunner: exit codes and the words a user needs
to see. `compare` reads result.json files written here by hand, so no test
but the dry runs touches training."""

import csv
import io
import json
import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from losszoo import RecipeError
from losszoo.cli.main import app
from losszoo.recipe.load import load_recipe
from losszoo.registry import LOSSES

cli = CliRunner()


def invoke(*args: str, env: dict | None = None):
    return cli.invoke(app, list(args), env=env)


def write(folder: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


# --- help ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("train", ["--set", "--dry-run", "--force", "--runs-dir"]),
        ("compare", ["--metric", "--format", "--filter", "--group-by", "--sort"]),
        ("list", ["--family", "PATTERN"]),
        ("show", ["NAME"]),
        ("check", ["TARGET"]),
    ],
)
def test_help_of_each_command(command, words):
    outcome = invoke(command, "--help")
    assert outcome.exit_code == 0, outcome.output
    assert "Usage" in outcome.output
    for word in words:
        assert word.lower() in outcome.output.lower()


def test_top_level_help_lists_the_commands():
    outcome = invoke("--help")
    assert outcome.exit_code == 0
    for command in ("train", "compare", "list", "show", "check"):
        assert command in outcome.output


# --- list ----------------------------------------------------------------------------------------


def test_list_losses():
    outcome = invoke("list", "losses")
    assert outcome.exit_code == 0, outcome.output
    for name in ("cross_entropy", "focal", "arcface", "mse", "huber"):
        assert re.search(rf"\b{name}\b", outcome.output), name
    assert f"{len(LOSSES.names())} losses" in outcome.output


def test_list_defaults_to_losses():
    assert "arcface" in invoke("list").output


@pytest.mark.parametrize(
    ("kind", "present", "absent"),
    [
        ("datasets", ["digits", "iris", "diabetes", "moons", "csv"], ["arcface"]),
        ("models", ["mlp", "linear", "cnn"], ["arcface", "digits"]),
        ("metrics", ["accuracy", "macro_f1", "map_at_r", "mae"], ["arcface"]),
    ],
)
def test_list_other_registries(kind, present, absent):
    outcome = invoke("list", kind)
    assert outcome.exit_code == 0, outcome.output
    for name in present:
        assert re.search(rf"\b{name}\b", outcome.output), name
    for name in absent:
        assert not re.search(rf"\b{name}\b", outcome.output), name


def test_list_with_a_pattern():
    outcome = invoke("list", "*face*")
    assert outcome.exit_code == 0, outcome.output
    assert "arcface" in outcome.output and "cosface" in outcome.output
    assert "cross_entropy" not in outcome.output and "focal" not in outcome.output
    assert "matching '*face*'" in outcome.output


def test_list_losses_by_family():
    outcome = invoke("list", "losses", "--family", "margin")
    assert outcome.exit_code == 0, outcome.output
    assert "arcface" in outcome.output
    assert not re.search(r"\bcross_entropy\b", outcome.output)
    assert not re.search(r"│ mse\b", outcome.output)
    assert "family 'margin'" in outcome.output


def test_list_unknown_family_exits_2_with_a_suggestion():
    outcome = invoke("list", "losses", "--family", "marginn")
    assert outcome.exit_code == 2
    assert "unknown family 'marginn'" in outcome.output
    assert "did you mean 'margin'" in outcome.output
    assert "Traceback" not in outcome.output


# --- show ----------------------------------------------------------------------------------------


def test_show_arcface_prints_formula_and_every_hyperparameter():
    outcome = invoke("show", "arcface")
    assert outcome.exit_code == 0, outcome.output
    entry = LOSSES.get("arcface")
    assert entry.formula in outcome.output
    assert "cos(theta_j + m" in outcome.output
    assert "Deng et al." in outcome.output
    for param in entry.params:
        line = next((row for row in outcome.output.splitlines() if re.match(rf"│ {param.name}\s+│", row)), None)
        assert line is not None, f"{param.name} missing"
        assert (param.bounds() or "any") in line
        assert param.doc in line
    assert "in (0, 1.5708)" in outcome.output  # margin: radians below a right angle
    assert "> 0" in outcome.output  # scale
    assert "losses:" in outcome.output and "name: arcface" in outcome.output  # the recipe snippet
    assert re.search(r"stacks\s+yes", outcome.output)  # entry.stackable, as train.stack reads it
    assert re.search(r"stacks\s+no", invoke("show", "dice").output)


@pytest.mark.parametrize("name", ["digits", "mlp", "map_at_r"])
def test_show_other_kinds(name):
    outcome = invoke("show", name)
    assert outcome.exit_code == 0, outcome.output
    assert name in outcome.output


def test_show_unknown_name_exits_2_with_a_suggestion():
    outcome = invoke("show", "arcfac")
    assert outcome.exit_code == 2
    assert "did you mean 'arcface'" in outcome.output
    assert "Traceback" not in outcome.output


# --- train: dry run and bad recipes --------------------------------------------------------------


def test_dry_run_lists_runs_and_trains_nothing(runs, tmp_path):
    path = write(tmp_path, """
        experiment: dry
        datasets: [iris, wine]
        losses: [cross_entropy, {name: focal, gamma: 1.0}]
        seeds: [0, 1]
        train: {epochs: 2}
    """)
    outcome = invoke("train", str(path), "--dry-run")
    assert outcome.exit_code == 0, outcome.output
    assert "8 runs" in outcome.output
    for run in load_recipe(path).runs:
        assert run.run_id in outcome.output
    assert "focal(g=1)" in outcome.output and "wine" in outcome.output
    assert "to train" in outcome.output
    assert not runs.exists() or not any(runs.rglob("*"))


def test_dry_run_honours_set(runs, tmp_path):
    path = write(tmp_path, "experiment: dry\ndataset: iris\nlosses: [cross_entropy, focal]\ntrain: {epochs: 2}\n")
    outcome = invoke("train", str(path), "--dry-run", "--set", "train.epochs=7", "--set", "losses[1].gamma=0.5")
    assert outcome.exit_code == 0, outcome.output
    assert "focal(g=0.5)" in outcome.output
    assert re.search(r"│\s*7\s*│", outcome.output)


def test_train_bad_recipe_exits_2_one_line_per_problem(runs, tmp_path):
    path = write(tmp_path, """
        dataset: iris
        losses:
          - {name: focal, gamma: -1.0}
          - arcfce
        train:
          epoch: 3
    """)
    outcome = invoke("train", str(path))
    assert outcome.exit_code == 2, outcome.output
    assert "Traceback" not in outcome.output
    assert "3 problems" in outcome.output
    lines = outcome.output.splitlines()
    expected = [f"{path}:3 losses[0].gamma: must be >= 0", f"{path}:4 losses[1]: unknown loss 'arcfce'",
                f"{path}:6 train.epoch: unknown key; did you mean 'epochs'?"]
    for words in expected:
        assert sum(words in line for line in lines) == 1, words
    assert not runs.exists()


def test_train_single_problem_is_one_error_line(runs, tmp_path):
    path = write(tmp_path, "dataset: digits\nloss: mse\n")
    outcome = invoke("train", str(path))
    assert outcome.exit_code == 2
    assert outcome.output.count("error:") == 1
    assert "'mse'" in outcome.output and "'digits'" in outcome.output


def test_train_missing_recipe_exits_2(runs, tmp_path):
    outcome = invoke("train", str(tmp_path / "nope.yaml"))
    assert outcome.exit_code == 2
    assert "no such recipe file" in outcome.output


def test_bad_set_exits_2(runs, tmp_path):
    path = write(tmp_path, "dataset: iris\nloss: cross_entropy\n")
    outcome = invoke("train", str(path), "--dry-run", "--set", "train.epoch=3")
    assert outcome.exit_code == 2
    assert "did you mean 'epochs'" in outcome.output


def test_debug_brings_the_exception_back(runs, tmp_path):
    path = write(tmp_path, "dataset: iris\nloss: arcfce\n")
    quiet = invoke("train", str(path))
    assert quiet.exit_code == 2
    assert not isinstance(quiet.exception, RecipeError)
    loud = invoke("train", str(path), env={"LOSSZOO_DEBUG": "1"})
    assert loud.exit_code != 0
    assert isinstance(loud.exception, RecipeError)
    assert "arcfce" in str(loud.exception)


def _run_cli(*args: str, python_flags: tuple[str, ...] = (), env: dict | None = None) -> subprocess.CompletedProcess:
    """`losszoo ARGS` in a fresh interpreter, so nothing this test process imported counts."""
    code = "import sys; from losszoo.cli.main import main; sys.argv[0] = 'losszoo'; main()"
    full_env = {k: v for k, v in os.environ.items() if k != "LOSSZOO_DEBUG"}
    full_env.update(env or {})
    return subprocess.run([sys.executable, *python_flags, "-c", code, *args], capture_output=True, text=True,
                          env=full_env, timeout=120)


def test_traceback_only_with_debug_in_a_real_process(tmp_path):
    path = write(tmp_path, "dataset: iris\nloss: arcfce\n")
    quiet = _run_cli("train", str(path), "--dry-run")
    assert quiet.returncode == 2, quiet.stderr
    assert "Traceback" not in quiet.stderr and "arcfce" in quiet.stderr
    loud = _run_cli("train", str(path), "--dry-run", env={"LOSSZOO_DEBUG": "1"})
    assert loud.returncode != 0
    assert "Traceback" in loud.stderr and "RecipeError" in loud.stderr


# --- startup: no torch for the commands that do not train ----------------------------------------


def test_cli_modules_do_not_import_torch():
    code = "import losszoo.cli.main, sys; sys.exit('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, "importing losszoo.cli.main imported torch"


def _imported(stderr: str) -> set[str]:
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("args", [["list"], ["show", "arcface"], ["train", "RECIPE", "--dry-run"]])
def test_commands_that_do_not_train_do_not_import_torch(tmp_path, args):
    path = write(tmp_path, "dataset: digits\nlosses: [cross_entropy, arcface]\n")
    args = [str(path) if a == "RECIPE" else a for a in args]
    done = _run_cli(*args, python_flags=("-X", "importtime"), env={"LOSSZOO_RUNS": str(tmp_path / "runs")})
    assert done.returncode == 0, done.stderr[-2000:]
    modules = _imported(done.stderr)
    assert "losszoo.cli.main" in modules  # the measurement saw the CLI
    heavy = sorted(m for m in modules if m == "torch" or m.startswith("torch."))
    assert not heavy, f"`losszoo {' '.join(args)}` imported {heavy[:5]}"


# --- compare, on result.json files written by hand -----------------------------------------------


def fake_result(experiment: str, label: str, seed: int, test: dict, val: dict | None = None,
                dataset: str = "iris", status: str = "completed", epochs: int = 10, position: int = 0) -> dict:
    """A result.json as ``losszoo.training.runner.make_result`` writes it."""
    from losszoo.spec import configuration_id

    name, _, inside = label.partition("(")
    params = {k: float(v) for k, v in (p.split("=") for p in inside.rstrip(")").split(",") if "=" in p)}
    config = {
        "experiment": experiment,
        "dataset": {"name": dataset, "test_fraction": 0.2},
        "model": {"name": "mlp", "hidden": [16]},
        "loss": {"name": name, **params},
        "seed": seed,
        "train": {"epochs": epochs, "batch_size": 32, "device": "cpu"},
        "metrics": ["accuracy", "nll"], "select_by": "val.accuracy", "inputs": {}, "plugins": [],
    }
    run_id = f"{dataset}-{label}-{seed}-{epochs}".replace("(", "_").replace(")", "_").replace("=", "")
    return {
        "run_id": run_id, "experiment": experiment, "status": status, "dataset": dataset, "model": "mlp",
        "loss": config["loss"], "label": label, "seed": seed, "config_hash": run_id,
        "configuration_id": configuration_id(config),
        "metrics": {"val": val if val is not None else dict(test), "test": test},
        "higher_is_better": {"accuracy": True, "nll": False},
        "best_epoch": epochs, "epochs_run": epochs, "train_seconds": 1.0, "samples_per_second": 100,
        "n_parameters": 10, "versions": {"losszoo": "0", "torch": "0"}, "provenance": {"device": "cpu"},
        "error": None if status == "completed" else "something", "position": position, "config": config,
    }


def store(root: Path, result: dict) -> Path:
    folder = root / result["experiment"] / result["run_id"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text(json.dumps(result))
    return folder


CE = [0.90, 0.92, 0.94]
FOCAL = [0.80, 0.81, 0.79]


@pytest.fixture
def compared(runs):
    """Experiment `exp`: focal (written first) is clearly worse than cross_entropy over 3 paired seeds."""
    for seed, (ce, fo) in enumerate(zip(CE, FOCAL, strict=True)):
        store(runs, fake_result("exp", "focal(g=1)", seed, {"accuracy": fo, "nll": 0.6 - seed * 0.01},
                                val={"accuracy": fo + 0.05}))
        store(runs, fake_result("exp", "cross_entropy", seed, {"accuracy": ce, "nll": 0.3 + seed * 0.01},
                                val={"accuracy": 0.5}, position=1))
    return runs


def _cell_mean_std(values):
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return mean, std


def test_compare_table_shows_mean_std_n_and_best(compared):
    outcome = invoke("compare", "exp")
    assert outcome.exit_code == 0, outcome.output
    mean, std = _cell_mean_std(CE)
    assert f"{mean:.4f} * ± {std:.4f}" in outcome.output  # the marker follows the mean
    fmean, fstd = _cell_mean_std(FOCAL)
    assert f"{fmean:.4f} ± {fstd:.4f}" in outcome.output  # no marker: neither best nor rank 1
    ce_line = next(line for line in outcome.output.splitlines() if "cross_entropy" in line)
    assert re.search(r"│\s*3\s*│\s*$", ce_line), ce_line  # n last: no run logged a val curve
    header = next(line for line in outcome.output.splitlines() if "accuracy" in line)
    assert re.search(r"┃\s*accuracy\s*┃\s*nll\s*┃", header), header  # the test split is the default
    assert "test.accuracy" not in outcome.output
    assert "metrics on the test split" in outcome.output
    # nll: lower is better, so focal's is not the best even though larger.
    nll_mean, nll_std = _cell_mean_std([0.30, 0.31, 0.32])
    assert f"{nll_mean:.4f} * ± {nll_std:.4f}" in outcome.output


def _csv_rows(output: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(output)))


def test_compare_csv(compared):
    from scipy import stats

    outcome = invoke("compare", "exp", "--format", "csv", "--metric", "accuracy")
    assert outcome.exit_code == 0, outcome.output
    rows = {row["label"]: row for row in _csv_rows(outcome.stdout)}
    assert set(rows) == {"cross_entropy", "focal(g=1)"}
    ce = rows["cross_entropy"]
    for field in ("mean", "std", "n", "ci95_low", "ci95_high", "best", "in_rank1_group", "p_worse", "testable"):
        assert field in ce
    mean, std = _cell_mean_std(CE)
    assert float(ce["mean"]) == pytest.approx(mean)
    assert float(ce["std"]) == pytest.approx(std)
    assert int(ce["n"]) == 3
    half = stats.t.ppf(0.975, 2) * std / math.sqrt(3)
    assert (float(ce["ci95_low"]), float(ce["ci95_high"])) == pytest.approx((mean - half, mean + half))
    assert ce["metric"] == "test.accuracy"
    assert (ce["best"], ce["in_rank1_group"], ce["testable"]) == ("True", "True", "True")
    focal = rows["focal(g=1)"]
    assert (focal["best"], focal["in_rank1_group"]) == ("False", "False")  # clearly worse over 3 paired seeds
    assert float(focal["p_worse"]) < 0.05


def test_compare_json(compared):
    outcome = invoke("compare", "exp", "--format", "json")
    assert outcome.exit_code == 0, outcome.output
    data = json.loads(outcome.stdout)
    records = data["rows"]
    accuracy = {r["label"]: r for r in records if r["metric"] == "test.accuracy"}
    assert accuracy["cross_entropy"]["mean"] == pytest.approx(0.92)
    assert accuracy["cross_entropy"]["n"] == 3
    assert accuracy["cross_entropy"]["in_rank1_group"] is True and accuracy["cross_entropy"]["best"] is True
    assert accuracy["focal(g=1)"]["best"] is False and accuracy["focal(g=1)"]["in_rank1_group"] is False
    for key in ("mean", "std", "n", "ci95_low", "ci95_high", "best", "in_rank1_group", "p_worse", "testable"):
        assert key in accuracy["focal(g=1)"]
    assert accuracy["focal(g=1)"]["testable"] is True
    assert not any("fewer than 3" in w for w in data["warnings"])  # every cell has 3 seeds


def test_compare_markdown(compared):
    outcome = invoke("compare", "exp", "--format", "md", "--metric", "accuracy")
    assert outcome.exit_code == 0, outcome.output
    lines = outcome.stdout.splitlines()
    assert lines[0].startswith("| dataset | label | accuracy | n |")
    assert lines[1].startswith("|---|")
    assert any("**0.9200 \\* ± 0.0200**" in line for line in lines)  # bold, the marker an escaped literal


def test_compare_unknown_format_exits_2(compared):
    outcome = invoke("compare", "exp", "--format", "xml")
    assert outcome.exit_code == 2
    assert "--format" in outcome.output and "must be one of" in outcome.output


def test_compare_val_metric(compared):
    outcome = invoke("compare", "exp", "--format", "csv", "--metric", "val.accuracy")
    assert outcome.exit_code == 0, outcome.output
    rows = {row["label"]: row for row in _csv_rows(outcome.stdout)}
    assert {row["metric"] for row in rows.values()} == {"val.accuracy"}
    assert float(rows["cross_entropy"]["mean"]) == pytest.approx(0.5)
    assert float(rows["focal(g=1)"]["mean"]) == pytest.approx(sum(FOCAL) / 3 + 0.05)
    assert rows["focal(g=1)"]["best"] == "True"  # on val, focal wins
    assert rows["cross_entropy"]["in_rank1_group"] == "False"


def test_compare_filter(compared):
    outcome = invoke("compare", "exp", "--format", "csv", "--filter", "loss.name=cross_entropy")
    assert outcome.exit_code == 0, outcome.output
    assert {row["label"] for row in _csv_rows(outcome.stdout)} == {"cross_entropy"}
    outcome = invoke("compare", "exp", "--format", "csv", "--filter", "loss.name!=cross_entropy")
    assert {row["label"] for row in _csv_rows(outcome.stdout)} == {"focal(g=1)"}
    outcome = invoke("compare", "exp", "--filter", "loss.name=nothing")
    assert outcome.exit_code == 2 and "no runs match" in outcome.output


def test_compare_sort(compared):
    def order(*args):
        outcome = invoke("compare", "exp", "--format", "csv", *args)
        assert outcome.exit_code == 0, outcome.output
        return [r["label"] for r in _csv_rows(outcome.stdout)]

    # Sorting by a column puts the best first, whichever way "best" points.
    assert order("--metric", "val.accuracy", "--sort", "val.accuracy") == ["focal(g=1)", "cross_entropy"]
    assert order("--metric", "accuracy", "--sort", "accuracy") == ["cross_entropy", "focal(g=1)"]
    assert order("--metric", "nll", "--sort", "nll") == ["cross_entropy", "focal(g=1)"]  # lower nll first
    assert order("--metric", "accuracy", "--sort", "label") == ["cross_entropy", "focal(g=1)"]
    bad = invoke("compare", "exp", "--sort", "speed")
    assert bad.exit_code == 2 and "not a column" in bad.output


def test_compare_group_by(compared):
    outcome = invoke("compare", "exp", "--format", "csv", "--metric", "accuracy", "--group-by", "loss.name")
    assert outcome.exit_code == 0, outcome.output
    rows = _csv_rows(outcome.stdout)
    assert {r["loss.name"] for r in rows} == {"cross_entropy", "focal"}
    assert "label" not in rows[0] and "dataset" not in rows[0]
    assert [int(r["n"]) for r in rows] == [3, 3]


def test_compare_group_by_pools_every_run_of_a_group(runs):
    # One loss on two datasets, seeds 0-2 each: grouped by loss alone, the cell holds all six runs.
    for seed, (a, b) in enumerate(zip(CE, FOCAL, strict=True)):
        store(runs, fake_result("exp", "cross_entropy", seed, {"accuracy": a}, dataset="iris"))
        store(runs, fake_result("exp", "cross_entropy", seed, {"accuracy": b}, dataset="wine"))
    outcome = invoke("compare", "exp", "--format", "csv", "--metric", "accuracy", "--group-by", "loss.name")
    assert outcome.exit_code == 0, outcome.output
    (row,) = _csv_rows(outcome.stdout)
    assert int(row["runs"]) == 6
    assert int(row["n"]) == 6
    assert float(row["mean"]) == pytest.approx((sum(CE) + sum(FOCAL)) / 6)
    assert row["pooled"] == "dataset.name"
    assert "pools runs that differ in dataset.name" in outcome.stderr


def test_compare_missing_experiment_suggests_one(compared):
    outcome = invoke("compare", "exq")
    assert outcome.exit_code == 2
    assert "no experiment 'exq'" in outcome.output and "did you mean 'exp'" in outcome.output
    assert "Traceback" not in outcome.output


def test_compare_with_no_runs_exits_2(runs):
    outcome = invoke("compare")
    assert outcome.exit_code == 2
    assert "no finished runs" in outcome.output


def test_compare_skips_a_corrupt_result_with_a_warning(compared):
    broken = compared / "exp" / "broken-run"
    broken.mkdir()
    (broken / "result.json").write_text('{"run_id": "broken-run", "status": "compl')
    unfinished = compared / "exp" / "unfinished-run"
    unfinished.mkdir()
    outcome = invoke("compare", "exp")
    assert outcome.exit_code == 0, outcome.output
    assert "warning" in outcome.stderr and "broken-run" in outcome.stderr and "skipped" in outcome.stderr
    assert "unfinished-run" in outcome.stderr
    assert "0.9200 * ± 0.0200" in outcome.stdout


def test_compare_counts_failed_runs_apart(runs):
    for seed, value in enumerate(CE):
        store(runs, fake_result("exp", "cross_entropy", seed, {"accuracy": value}))
    store(runs, fake_result("exp", "cross_entropy", 3, {}, status="diverged"))
    outcome = invoke("compare", "exp", "--format", "json")
    (record,) = json.loads(outcome.stdout)["rows"]
    assert record["n"] == 3 and record["runs"] == 4 and record["failed"] == 1
    table = invoke("compare", "exp")
    assert "1 diverged" in table.output


def test_compare_all_experiments_groups_by_experiment(runs):
    for seed, value in enumerate(CE):
        store(runs, fake_result("one", "cross_entropy", seed, {"accuracy": value}))
        store(runs, fake_result("two", "cross_entropy", seed, {"accuracy": value - 0.1}))
    rows = _csv_rows(invoke("compare", "--format", "csv").stdout)
    assert {r["experiment"] for r in rows} == {"one", "two"}
