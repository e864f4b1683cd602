"""tune: an equal budget for every loss, selected on val, reproducible and resumable."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import losszoo
from losszoo.errors import RecipeError
from losszoo.recipe.load import load_recipe
from losszoo.training.store import iter_results

TUNED = {
    "experiment": "tuned",
    "dataset": "iris",
    "model": {"name": "mlp", "hidden": [16]},
    "losses": ["cross_entropy", "focal", "poly1"],
    "seeds": [0, 1],
    "train": {"epochs": 3, "batch_size": 32},
    "tune": {"trials": 6, "parallel": 2},
}


def trials_and_finals(root):
    results, _ = iter_results(root, ["tuned"])
    trials = [r for r in results if r["config"].get("trial")]
    finals = [r for r in results if not r["config"].get("trial")]
    return trials, finals


def signature(root):
    """What a tuning decided: each trial's values and val score, each final's values and test accuracy."""
    trials, finals = trials_and_finals(root)
    return (sorted((r["label"], r["config"]["trial"]["number"], r["config"]["train"]["optimizer"]["lr"],
                    r["config"]["loss"].get("gamma"), r["metrics"]["val"].get("accuracy")) for r in trials),
            sorted((r["label"], r["seed"], r["config"]["tuned"]["best_trial"], r["metrics"]["test"]["accuracy"])
                   for r in finals))


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    root = tmp_path_factory.mktemp("sequential")
    losszoo.train(TUNED, runs_dir=root)
    return root


def test_every_loss_spends_exactly_its_budget_and_finals_are_tested(sequential):
    trials, finals = trials_and_finals(sequential)
    per_loss = {}
    for r in trials:
        per_loss.setdefault(r["label"], []).append(r["config"]["trial"]["number"])
        assert "test" not in r["metrics"], "a trial must never touch the test split"
    assert {k: sorted(v) for k, v in per_loss.items()} == {name: list(range(6)) for name in TUNED["losses"]}
    assert sorted((r["label"], r["seed"]) for r in finals) == sorted((n, s) for n in TUNED["losses"] for s in (0, 1))
    for final in finals:
        tuned = final["config"]["tuned"]
        assert tuned["trials"] == 6 and tuned["metric"] == "val.accuracy"
        best = max((t for t in trials if t["label"] == final["label"]),
                   key=lambda t: (t["metrics"]["val"]["accuracy"], -t["config"]["trial"]["number"]))
        assert tuned["best_trial"] == best["config"]["trial"]["number"]  # selected on val, ties to the first
        assert final["config"]["train"]["optimizer"]["lr"] == best["config"]["train"]["optimizer"]["lr"]
        assert final["metrics"]["test"], "the final seeds are tested"


def test_the_default_space_is_each_loss_s_tunables_and_the_lr(sequential):
    trials, _ = trials_and_finals(sequential)
    focal_gammas = {r["config"]["loss"]["gamma"] for r in trials if r["label"] == "focal"}
    spec = losszoo.loss_spec("focal")
    if spec.param("gamma").tune is not None:  # declared in the catalogue: searched
        assert len(focal_gammas) > 1
    lrs = {r["config"]["train"]["optimizer"]["lr"] for r in trials}
    assert all(1e-4 <= lr <= 1e-2 for lr in lrs) and len(lrs) > 1


def test_tuning_is_reproducible_run_to_run(sequential, tmp_path):
    losszoo.train(TUNED, runs_dir=tmp_path)
    assert signature(tmp_path) == signature(sequential)


def test_jobs_2_gives_the_same_trials_as_sequential(sequential, tmp_path):
    losszoo.train(TUNED, runs_dir=tmp_path, jobs=2)
    assert signature(tmp_path) == signature(sequential)


@pytest.mark.slow
def test_dask_gives_the_same_trials_as_sequential(sequential, tmp_path, dask_scheduler):
    address, _ = dask_scheduler
    losszoo.train(TUNED, runs_dir=tmp_path, address=address)
    assert signature(tmp_path) == signature(sequential)


def test_a_second_run_reuses_every_trial(sequential):
    before = {r["run_id"]: r["train_seconds"] for r in iter_results(sequential, ["tuned"])[0]}
    results = losszoo.train(TUNED, runs_dir=sequential)
    assert {r["run_id"]: r["train_seconds"] for r in results} == before  # nothing retrained


@pytest.mark.slow
def test_sigint_then_resume_gives_the_same_trials(sequential, tmp_path):
    recipe = tmp_path / "tuned.yaml"
    import yaml

    recipe.write_text(yaml.safe_dump({**TUNED, "train": {**TUNED["train"], "epochs": 6}}))
    reference = tmp_path / "reference"
    assert subprocess.run([sys.executable, "-m", "losszoo", "train", str(recipe), "--runs-dir", str(reference)],
                          capture_output=True).returncode == 0
    runs = tmp_path / "runs"
    process = subprocess.Popen([sys.executable, "-m", "losszoo", "train", str(recipe), "--runs-dir", str(runs)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list(runs.glob("tuned/*/result.json"))) < 5 and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGINT)
    assert process.wait(60) == 130, process.stderr.read()
    interrupted = [r for r in iter_results(runs, ["tuned"])[0] if r["status"] == "interrupted"]
    done = subprocess.run([sys.executable, "-m", "losszoo", "train", str(recipe), "--runs-dir", str(runs)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert signature(runs) == signature(reference)
    # the unit in flight, recorded (a round's trials, 2 per loss, train stacked); the rest finished or never started
    assert len(interrupted) <= 6


def write(tmp_path, text: str):
    path = tmp_path / "recipe.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.mark.parametrize(("tune", "words"), [
    ("{trials: 0}", "tune.trials: must be an integer in [1, 10000]"),
    ("{trials: 2.5}", "tune.trials: must be an integer"),
    ("{trials: 3, space: {loss.gamma: {low: 1.0, high: 0.5}}}", "tune.space.loss.gamma.low: must be below high"),
    ("{trials: 3, space: {train.optimizer.lr: {low: 0.0, high: 0.1, log: true}}}", "a log range needs low > 0"),
    ("{trials: 3, space: {loss.gamma: {low: 0.5, high: 2.0}}}",
     "loss 'cross_entropy' does not take 'gamma'; tune.space keys must be numeric hyperparameters of every loss"),
    ("{trials: 3, space: {loss.gamma: {low: -1.0, high: 2.0}}}", "for loss 'focal': gamma must be >= 0"),
    ("{trials: 3, metric: test.accuracy}", "tune.metric: must be val.<metric> (trials never see the test split)"),
    ("{trials: 3, prune: mean}", "tune.prune: must be one of none, median"),
    ("{trials: 3, budget: 4}", "tune.budget: unknown key"),
])
def test_bad_tune_blocks_are_errors_at_their_line(tmp_path, tune, words):
    path = write(tmp_path, f"dataset: iris\nlosses: [focal, cross_entropy]\ntune: {tune}\n")
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    assert any(p.startswith(f"{path}:3 tune") and words in p for p in caught.value.problems), caught.value.problems


def test_hyperparameters_the_recipe_sets_are_held_fixed(tmp_path):
    recipe = load_recipe({"dataset": "iris", "losses": [{"name": "focal", "gamma": 2.0}], "tune": {"trials": 2}})
    (study,) = recipe.studies
    assert [d.key for d in study.space] == ["train.optimizer.lr"]


def test_median_pruning_stops_weak_trials_and_they_count_in_the_budget(tmp_path):
    recipe = {**TUNED, "losses": ["cross_entropy"], "seeds": [0], "train": {"epochs": 6, "batch_size": 32},
              "tune": {"trials": 12, "prune": "median", "space": {
                  "train.optimizer.lr": {"low": 1e-5, "high": 1e-1, "log": True}}}}
    losszoo.train(recipe, runs_dir=tmp_path)
    trials, (final,) = trials_and_finals(tmp_path)
    statuses = [r["status"] for r in sorted(trials, key=lambda r: r["config"]["trial"]["number"])]
    assert len(statuses) == 12 and "pruned" in statuses
    assert "pruned" not in statuses[:5]  # the median needs 5 finished trials first
    pruned = [r for r in trials if r["status"] == "pruned"]
    assert all(r["epochs_run"] < 6 for r in pruned)
    assert final["config"]["tuned"]["trials"] == 12
    assert final["config"]["tuned"]["best_trial"] not in [r["config"]["trial"]["number"] for r in pruned]

    # Pruning off is another study: its trials train to the end, none is taken from the pruned study.
    unpruned = losszoo.train({**recipe, "tune": {**recipe["tune"], "prune": "none"}}, runs_dir=tmp_path)
    assert not any(r["status"] == "pruned" for r in unpruned)
    assert {r["run_id"] for r in unpruned}.isdisjoint({r["run_id"] for r in trials})


def test_a_larger_budget_extends_the_study_and_retrains_the_finals_with_their_record(tmp_path):
    """The first trials are reused (a seeded sampler proposes them again); the finals are new runs whose
    tuned record says the budget they had: never a two-trial final reported as the three-trial one."""
    recipe = {**TUNED, "losses": ["cross_entropy"], "seeds": [0], "tune": {"trials": 2}}
    first = losszoo.train(recipe, runs_dir=tmp_path)
    more = losszoo.train({**recipe, "tune": {"trials": 3}}, runs_dir=tmp_path)
    trial_ids = [r["run_id"] for r in first if r["config"].get("trial")]
    assert [r["run_id"] for r in more if r["config"].get("trial")][:2] == trial_ids
    (old,) = [r for r in first if not r["config"].get("trial")]
    (new,) = [r for r in more if not r["config"].get("trial")]
    assert (old["config"]["tuned"]["trials"], new["config"]["tuned"]["trials"]) == (2, 3)
    assert new["run_id"] != old["run_id"]


# --- compare on a tuned experiment ---------------------------------------------------------------


def compare(root, *args):
    from typer.testing import CliRunner

    from losszoo.cli.main import app

    return CliRunner().invoke(app, ["compare", "tuned", "--runs-dir", str(root), *args])


def test_compare_trials_lists_each_trial_with_the_best_so_far(sequential):
    import csv
    import io

    outcome = compare(sequential, "--trials", "focal", "--format", "csv")
    assert outcome.exit_code == 0, outcome.output
    rows = list(csv.DictReader(io.StringIO(outcome.stdout)))
    trials, _ = trials_and_finals(sequential)
    focal = sorted((r for r in trials if r["label"] == "focal"), key=lambda r: r["config"]["trial"]["number"])
    assert [int(r["trial"]) for r in rows] == list(range(6))
    assert [float(r["val.accuracy"]) for r in rows] == [t["metrics"]["val"]["accuracy"] for t in focal]
    assert [float(r["train.optimizer.lr"]) for r in rows] == [t["config"]["train"]["optimizer"]["lr"] for t in focal]
    running = [max(float(r["val.accuracy"]) for r in rows[:i + 1]) for i in range(6)]
    assert [float(r["best so far"]) for r in rows] == running
    table = compare(sequential, "--trials", "focal")
    assert table.exit_code == 0 and "6 trials of focal, selected on val.accuracy" in table.stdout


def test_compare_trials_of_an_unknown_loss_names_the_tuned_ones(sequential):
    outcome = compare(sequential, "--trials", "arcface")
    assert outcome.exit_code == 2 and "cross_entropy, focal, poly1" in outcome.output.replace("\n", " ")


def test_compare_of_a_tuned_experiment_shows_finals_only_and_plots_the_studies(sequential, tmp_path):
    import json

    data = json.loads(compare(sequential, "--format", "json").stdout)
    accuracy = [r for r in data["rows"] if r["metric"] == "test.accuracy"]
    assert sorted(r["label"] for r in accuracy) == ["cross_entropy", "focal", "poly1"]
    assert all(r["n"] == 2 and "6 trials" in r["tuned"] for r in accuracy)  # the final seeds, no trial pooled in
    plot = tmp_path / "tuned.png"
    assert compare(sequential, "--plot", str(plot)).exit_code == 0
    assert (tmp_path / "tuned-trials.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
