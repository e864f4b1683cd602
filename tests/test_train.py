"""Training tiny recipes into a private runs folder: the run folder on disk,
determinism, skipping finished runs, and every way a run can end
(completed, diverged, failed, interrupted)."""

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

import losszoo
import losszoo.training.trainer as trainer
from losszoo.cli.main import app
from losszoo.recipe.load import load_recipe
from losszoo.training.grid import train_grid
from losszoo.training.runner import run_dir_of, run_one
from losszoo.training.store import read_result, write_atomic, write_json

RESULT_KEYS = {
    "run_id", "experiment", "status", "dataset", "model", "loss", "label", "seed", "config_hash", "metrics",
    "best_epoch", "epochs_run", "train_seconds", "samples_per_second", "n_parameters", "versions", "error",
}
TINY_TRAIN = {"epochs": 3, "batch_size": 32}
REAL_COMPUTE_METRICS = trainer.compute_metrics


def tiny(experiment: str = "tiny", **changes) -> dict:
    recipe = {
        "experiment": experiment,
        "dataset": "iris",
        "model": {"name": "mlp", "hidden": [16], "embedding_dim": 8},
        "losses": ["cross_entropy"],
        "seeds": [0],
        "train": dict(TINY_TRAIN),
    }
    recipe.update(changes)
    return recipe


def write_recipe(folder: Path, recipe: dict, name: str = "recipe.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def train(recipe: dict, root: Path, force: bool = False) -> list[dict]:
    return train_grid(load_recipe(recipe), root, force=force)


def folder_of(root: Path, result: dict) -> Path:
    return root / result["experiment"] / result["run_id"]


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp") or ".tmp" in p.name]


# --- the run folder ------------------------------------------------------------------------------


def test_run_folder_holds_every_file_and_result_key(runs):
    (result,) = train(tiny(), runs)
    folder = folder_of(runs, result)
    assert folder.name == result["run_id"] == result["config_hash"]
    assert {"config.yaml", "metrics.jsonl", "checkpoint.pt", "result.json"} <= {p.name for p in folder.iterdir()}

    on_disk = json.loads((folder / "result.json").read_text())
    assert on_disk == json.loads(json.dumps(result))
    missing = RESULT_KEYS - set(on_disk)
    assert not missing, f"result.json lacks {sorted(missing)}"
    assert on_disk["status"] == "completed" and on_disk["error"] is None
    assert on_disk["experiment"] == "tiny"
    assert on_disk["dataset"] == "iris" and on_disk["model"] == "mlp"
    assert on_disk["loss"]["name"] == "cross_entropy" and "label_smoothing" in on_disk["loss"]
    assert on_disk["label"] == "cross_entropy" and on_disk["seed"] == 0
    assert set(on_disk["metrics"]) >= {"val", "test"}
    for split in ("val", "test"):
        assert 0.0 <= on_disk["metrics"][split]["accuracy"] <= 1.0
    assert 1 <= on_disk["best_epoch"] <= 3 and on_disk["epochs_run"] == 3
    assert on_disk["train_seconds"] > 0 and on_disk["samples_per_second"] > 0
    # mlp 4 -> 16 -> 3: (4*16 + 16) + (16*3 + 3); cross_entropy has no parameters.
    assert on_disk["n_parameters"] == 131
    assert on_disk["versions"]["torch"] == torch.__version__
    assert on_disk["versions"]["losszoo"]
    selected = on_disk["config"]["select_by"].rpartition(".")[2]  # the gap `compare --correlate` ranks against
    assert on_disk["generalization_gap"] == {"metric": selected, "definition": "train - test", "value": pytest.approx(
        on_disk["metrics"]["train"][selected] - on_disk["metrics"]["test"][selected])}

    lines = (folder / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3
    epochs = [json.loads(line) for line in lines]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert all("train_loss" in e and "accuracy" in e["val"] for e in epochs)
    best = epochs[on_disk["best_epoch"] - 1]["val"]
    assert best["accuracy"] == pytest.approx(on_disk["metrics"]["val"]["accuracy"])

    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["loss"] == on_disk["loss"]
    assert config["train"]["epochs"] == 3 and config["seed"] == 0
    assert load_recipe(tiny()).runs[0].run_id == result["run_id"]

    checkpoint = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert {"model", "loss"} <= set(checkpoint)
    assert checkpoint["model"]["head.weight"].shape == (3, 16)
    assert no_temp_files(folder)


def test_same_seed_twice_gives_identical_metrics(runs):
    recipe = tiny(losses=["cross_entropy", {"name": "arcface", "margin": 0.3, "scale": 16.0}])
    first = train(recipe, runs / "a")
    second = train(recipe, runs / "b")
    for a, b in zip(first, second, strict=True):
        assert a["metrics"] == b["metrics"]
        assert a["best_epoch"] == b["best_epoch"]
        lines_a = [json.loads(x) for x in (folder_of(runs / "a", a) / "metrics.jsonl").read_text().splitlines()]
        lines_b = [json.loads(x) for x in (folder_of(runs / "b", b) / "metrics.jsonl").read_text().splitlines()]
        assert lines_a == lines_b


def test_other_seed_gives_other_metrics(runs):
    first, second = train(tiny(seeds=[0, 1]), runs)
    assert first["run_id"] != second["run_id"]
    lines = [(folder_of(runs, r) / "metrics.jsonl").read_text() for r in (first, second)]
    assert lines[0] != lines[1]


def test_completed_runs_are_skipped_and_force_retrains(runs, monkeypatch):
    (first,) = train(tiny(), runs)
    result_file = folder_of(runs, first) / "result.json"
    stamp = result_file.stat().st_mtime_ns

    calls = []
    real = trainer.train_run
    monkeypatch.setattr(trainer, "train_run", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    (again,) = train(tiny(), runs)
    assert calls == []
    assert again == json.loads(result_file.read_text())
    assert again["train_seconds"] == first["train_seconds"]
    assert result_file.stat().st_mtime_ns == stamp

    (forced,) = train(tiny(), runs, force=True)
    assert calls == [1]
    assert forced["status"] == "completed"
    assert result_file.stat().st_mtime_ns != stamp
    assert forced["metrics"] == first["metrics"]  # same seed, same numbers


def test_a_changed_config_is_a_new_run(runs):
    (first,) = train(tiny(), runs)
    (second,) = train(tiny(train={**TINY_TRAIN, "epochs": 2}), runs)
    assert first["run_id"] != second["run_id"]
    assert second["epochs_run"] == 2
    assert len([p for p in (runs / "tiny").iterdir() if p.is_dir()]) == 2  # beside .recipe.json


def test_cli_train_skips_completed_runs(runs, tmp_path):
    path = write_recipe(tmp_path, tiny(experiment="cli-skip"))
    cli = CliRunner()
    first = cli.invoke(app, ["train", str(path)])
    assert first.exit_code == 0, first.output
    assert "1 completed" in first.output
    assert "experiment cli-skip" in first.output and "accuracy" in first.output  # the closing table
    (folder,) = [p for p in (runs / "cli-skip").iterdir() if p.is_dir()]
    stamp = (folder / "result.json").stat().st_mtime_ns
    second = cli.invoke(app, ["train", str(path)])
    assert second.exit_code == 0, second.output
    assert "skipped" in second.output
    assert (folder / "result.json").stat().st_mtime_ns == stamp
    forced = cli.invoke(app, ["train", str(path), "--force"])
    assert forced.exit_code == 0, forced.output
    assert (folder / "result.json").stat().st_mtime_ns != stamp


def test_runs_dir_option_wins_over_the_environment(runs, tmp_path):
    path = write_recipe(tmp_path, tiny(experiment="elsewhere"))
    other = tmp_path / "other-runs"
    outcome = CliRunner().invoke(app, ["train", str(path), "--runs-dir", str(other)])
    assert outcome.exit_code == 0, outcome.output
    assert (other / "elsewhere").is_dir()
    assert not (runs / "elsewhere").exists()


# --- how runs end --------------------------------------------------------------------------------


def _divergent(experiment: str = "diverge") -> dict:
    # Plain SGD with lr 30 on a linear model: the squared error explodes, the absolute error's bounded
    # gradient does not.
    return {
        "experiment": experiment,
        "dataset": "diabetes",
        "model": "linear",
        "losses": ["mse", "mae"],
        "train": {"epochs": 4, "batch_size": 64, "scheduler": "none",
                  "optimizer": {"name": "sgd", "lr": 30.0, "momentum": 0.0}},
    }


def test_a_diverging_run_is_recorded_and_the_others_go_on(runs):
    results = train(_divergent(), runs)
    by_loss = {r["loss"]["name"]: r for r in results}
    assert by_loss["mse"]["status"] == "diverged"
    assert "non-finite" in by_loss["mse"]["error"]
    assert by_loss["mae"]["status"] == "completed"
    on_disk = read_result(folder_of(runs, by_loss["mse"]))
    assert on_disk["status"] == "diverged"
    assert set(on_disk) >= RESULT_KEYS


def test_cli_train_with_a_diverged_run_still_succeeds(runs, tmp_path):
    path = write_recipe(tmp_path, _divergent("cli-diverge"))
    outcome = CliRunner().invoke(app, ["train", str(path)])
    assert outcome.exit_code == 0, outcome.output
    assert "diverged" in outcome.output and "completed" in outcome.output
    assert "Traceback" not in outcome.output


def _fail_for(loss_name: str, monkeypatch) -> None:
    real = trainer.create_loss

    def create_loss(name, **kwargs):
        if name == loss_name:
            raise RuntimeError("boom inside the loss constructor")
        return real(name, **kwargs)

    monkeypatch.setattr(trainer, "create_loss", create_loss)


def test_an_exception_in_one_run_is_recorded_failed_and_the_others_complete(runs, monkeypatch):
    _fail_for("focal", monkeypatch)
    results = train(tiny(losses=["focal", "cross_entropy"]), runs)
    by_loss = {r["loss"]["name"]: r for r in results}
    assert by_loss["focal"]["status"] == "failed"
    assert "RuntimeError" in by_loss["focal"]["error"] and "boom" in by_loss["focal"]["error"]
    assert by_loss["cross_entropy"]["status"] == "completed"
    on_disk = read_result(folder_of(runs, by_loss["focal"]))
    assert on_disk["status"] == "failed" and "boom" in on_disk["error"]
    assert set(on_disk) >= RESULT_KEYS


def test_cli_train_exits_1_when_a_run_failed(runs, tmp_path, monkeypatch):
    _fail_for("focal", monkeypatch)
    path = write_recipe(tmp_path, tiny(experiment="cli-fail", losses=["focal", "cross_entropy"]))
    outcome = CliRunner().invoke(app, ["train", str(path)])
    assert outcome.exit_code == 1, outcome.output
    assert "failed" in outcome.output and "boom" in outcome.output
    assert "Traceback" not in outcome.output
    statuses = sorted(read_result(p)["status"] for p in (runs / "cli-fail").iterdir() if p.is_dir())
    assert statuses == ["completed", "failed"]


def _interrupt_at_epoch(epoch: int, monkeypatch) -> None:
    real = trainer.compute_metrics
    calls = []

    def compute_metrics(evaluation, names, **options):
        calls.append(1)
        if len(calls) == epoch:  # the val evaluation of that epoch: a real Ctrl-C
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler raises KeyboardInterrupt here
        return real(evaluation, names, **options)

    monkeypatch.setattr(trainer, "compute_metrics", compute_metrics)


def test_keyboard_interrupt_records_interrupted_and_propagates(runs, monkeypatch):
    run = load_recipe(tiny()).runs[0]
    _interrupt_at_epoch(2, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run_one(run, runs)
    folder = run_dir_of(runs, run)
    result = read_result(folder)
    assert result["status"] == "interrupted"
    assert set(result) >= RESULT_KEYS
    assert len((folder / "metrics.jsonl").read_text().splitlines()) == 1
    assert no_temp_files(folder)


def test_cli_interrupt_exits_130_and_never_leaves_completed(runs, tmp_path, monkeypatch):
    recipe = tiny(experiment="cli-int", losses=["cross_entropy", "focal"])
    path = write_recipe(tmp_path, recipe)
    cli = CliRunner()
    assert cli.invoke(app, ["train", str(path)]).exit_code == 0  # first everything completes

    _interrupt_at_epoch(2, monkeypatch)
    outcome = cli.invoke(app, ["train", str(path), "--force"])
    assert outcome.exit_code == 130, outcome.output
    assert "interrupted" in outcome.output
    assert "Traceback" not in outcome.output
    first = load_recipe(path).runs[0]
    assert read_result(run_dir_of(runs, first))["status"] == "interrupted"

    # The interrupted run is not taken for finished: the next train retrains it.
    monkeypatch.setattr(trainer, "compute_metrics", REAL_COMPUTE_METRICS)
    again = cli.invoke(app, ["train", str(path)])
    assert again.exit_code == 0, again.output
    assert read_result(run_dir_of(runs, first))["status"] == "completed"


def test_result_json_is_written_atomically(tmp_path, monkeypatch):
    target = tmp_path / "run" / "result.json"
    write_json(target, {"status": "completed", "run_id": "x"})
    before = target.read_text()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_json(target, {"status": "failed", "run_id": "x"})
    assert target.read_text() == before
    assert no_temp_files(target.parent)


def test_write_atomic_leaves_no_temporary_file(tmp_path):
    write_atomic(tmp_path / "a.txt", "hello")
    write_atomic(tmp_path / "a.txt", b"bytes")
    assert (tmp_path / "a.txt").read_bytes() == b"bytes"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_half_written_result_is_not_a_result(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "result.json").write_text('{"run_id": "x", "status": "comp')
    assert read_result(folder) is None
    (folder / "result.json").write_text('{"run_id": "x", "status": "finished"}')
    assert read_result(folder) is None


# --- what runs learn and report ------------------------------------------------------------------


def test_learnable_loss_parameters_train_and_are_checkpointed(runs, monkeypatch):
    initial = {}
    real = trainer.create_loss

    def create_loss(name, **kwargs):
        loss = real(name, **kwargs)
        if hasattr(loss, "weight"):
            initial[name] = loss.weight.detach().clone()
        return loss

    monkeypatch.setattr(trainer, "create_loss", create_loss)
    (result,) = train(tiny(losses=[{"name": "arcface", "margin": 0.3, "scale": 16.0}]), runs)
    assert result["status"] == "completed"
    checkpoint = torch.load(folder_of(runs, result) / "checkpoint.pt", weights_only=True)
    weight = checkpoint["loss"]["weight"]
    assert weight.shape == (3, 8) == initial["arcface"].shape
    assert not torch.allclose(weight, initial["arcface"])
    # The class centres count among the run's parameters.
    model_params = sum(v.numel() for k, v in checkpoint["model"].items())
    assert result["n_parameters"] == model_params + 3 * 8


def test_embedding_losses_report_accuracy_and_retrieval(runs):
    results = train(tiny(losses=[{"name": "arcface", "margin": 0.3, "scale": 16.0}, "supcon"]), runs)
    by_loss = {r["loss"]["name"]: r for r in results}
    arcface = by_loss["arcface"]["metrics"]
    for split in ("val", "test"):
        assert {"accuracy", "map_at_r", "precision_at_1"} <= set(arcface[split])
        assert 0.0 <= arcface[split]["map_at_r"] <= 1.0
    supcon = by_loss["supcon"]
    assert supcon["status"] == "completed", supcon["error"]
    assert 0.0 <= supcon["metrics"]["test"]["map_at_r"] <= 1.0


def test_regression_metrics_are_in_the_data_units(runs):
    (result,) = train(tiny(dataset="diabetes", losses=["mse"], model={"name": "mlp", "hidden": [8]}), runs)
    assert result["status"] == "completed"
    test = result["metrics"]["test"]
    # Diabetes progression runs 25..346 (std ~77): an untrained-ish model is tens off, not ~0.5.
    assert 20 < test["mae"] < 300
    assert test["rmse"] >= test["mae"]
    assert test["r2"] < 1.0


def test_open_set_reports_retrieval_only_on_test(runs):
    recipe = tiny(dataset={"name": "digits", "open_set": True}, losses=["supcon"],
                  model={"name": "mlp", "hidden": [16], "embedding_dim": 8}, train={**TINY_TRAIN, "epochs": 1})
    (result,) = train(recipe, runs)
    assert result["status"] == "completed", result["error"]
    assert "map_at_r" in result["metrics"]["test"]
    assert "accuracy" not in result["metrics"]["test"]


def test_open_set_retrieval_uses_the_embedding_layer_for_every_loss(runs):
    """A loss on class logits retrieves with an embedding_dim layer, as embedding losses do (fair open set)."""
    results = losszoo.train({
        "experiment": "open", "dataset": {"name": "digits", "open_set": True},
        "model": {"name": "mlp", "hidden": [32], "embedding_dim": 8}, "losses": ["cross_entropy", "cosface"],
        "metrics": ["precision_at_1", "map_at_r"], "select_by": "val.map_at_r", "train": {"epochs": 2}})
    layers = {r["label"]: r["provenance"]["retrieval_layer"] for r in results}
    assert layers == {"cross_entropy": "embedding (8-d)", "cosface": "embedding (8-d)"}
    assert all(set(r["metrics"]["test"]) == {"precision_at_1", "map_at_r"} for r in results)
    checkpoint = torch.load(runs / "open" / results[0]["run_id"] / "checkpoint.pt", weights_only=False)
    assert checkpoint["model"]["neck.weight"].shape == (8, 32)


# --- labels checked once per run, not per step -------------------------------------------------


def test_labels_checked_trusts_labels_inside_and_checks_them_again_outside():
    from losszoo.losses._common import check_labels, labels_checked, labels_in_range

    assert labels_in_range(torch.tensor([0, 4, 2]), 5)
    assert not labels_in_range(torch.tensor([0, 5]), 5) and not labels_in_range(torch.tensor([-100, 1]), 5)
    assert not labels_in_range(torch.tensor([0.0, 1.0]), 5)
    with labels_checked():
        check_labels(torch.tensor([7]), 5)  # trusted: the trainer scanned the split before
        with pytest.raises(ValueError, match="integer"):
            check_labels(torch.tensor([0.5]), 5)  # the dtype is still checked
    with pytest.raises(ValueError, match="label 7 is outside"):
        check_labels(torch.tensor([7]), 5)


@pytest.mark.parametrize(("labels", "trusted"), [([0, 1, 2], True), ([0, 1, 255], False), ([0, -100, 1], False)])
def test_the_trainer_trusts_a_split_only_when_every_label_is_in_range(labels, trusted):
    from types import SimpleNamespace

    from losszoo.losses._common import check_labels

    run = SimpleNamespace(loss_entry=SimpleNamespace(target_kind="masks"), data=SimpleNamespace(num_classes=3))
    with trainer.checked_once(run, torch.tensor(labels)):
        if trusted:
            check_labels(torch.tensor([9]), 3)
        else:
            with pytest.raises(ValueError, match="label 9 is outside"):
                check_labels(torch.tensor([9]), 3)


# --- the reported epoch, and nothing that looks finished before the end ---------------------------


@pytest.mark.parametrize(("metric", "pick"), [("val.accuracy", max), ("val.nll", min)])
def test_the_reported_epoch_is_the_best_of_the_val_curve_and_no_result_exists_while_training(tmp_path, metric,
                                                                                            pick):
    recipe = load_recipe(tiny(select_by=metric, metrics=["accuracy", "nll"], train={
        "epochs": 12, "batch_size": 16, "optimizer": {"name": "sgd", "lr": 0.05}, "stack": "off"}))
    folder = tmp_path / "tiny" / recipe.runs[0].run_id
    seen = []

    class Watcher:  # hears the grid as the CLI does, and looks at the folder at every epoch
        def start(self, run, epochs):
            seen.append(("start", (folder / "result.json").exists()))

        def epoch(self, run, epoch, *_):
            seen.append((epoch, (folder / "result.json").exists()))  # a crash now must not look finished

        def finish(self, run, result, skipped):
            pass

    (result,) = train_grid(recipe, tmp_path, reporter=Watcher())
    curve = [json.loads(line)["val"][metric.partition(".")[2]] for line in (folder / "metrics.jsonl").open()]
    assert len(set(curve)) > 1, "a flat curve would not tell the best epoch from any other"
    assert result["best_epoch"] == curve.index(pick(curve)) + 1  # the first of equals
    assert seen == [("start", False)] + [(e, False) for e in range(1, 13)]


@pytest.mark.parametrize(("metric", "definition"), [("val.accuracy", "train - test"), ("val.nll", "test - train")])
def test_the_generalisation_gap_grows_with_overfitting_whichever_way_the_metric_is_better(tmp_path, metric,
                                                                                          definition):
    """An mlp fits the digits it trained on better than the test digits: a positive gap, for an accuracy
    (train - test) and for an nll (test - train), so --correlate's tau means the same for both."""
    recipe = load_recipe(tiny(select_by=metric, metrics=["accuracy", "nll"], dataset="digits", train={
        "epochs": 15, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.01}, "stack": "off"}))
    (result,) = train_grid(recipe, tmp_path)
    name = metric.partition(".")[2]
    train, test = result["metrics"]["train"][name], result["metrics"]["test"][name]
    gap = result["generalization_gap"]
    assert gap == {"metric": name, "definition": definition,
                   "value": pytest.approx(train - test if definition == "train - test" else test - train)}
    assert gap["value"] > 0


def test_a_plugin_loss_with_extra_state_that_is_not_a_tensor_trains(tmp_path):
    """``get_extra_state`` may return any object; keeping the best epoch's state copies it as deepcopy would."""
    import torch.nn.functional as F

    import losszoo
    from losszoo.registry import LOSSES

    @losszoo.register_loss("tp_extra_state", input="logits")
    class WithExtraState(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.seen = {"steps": 0}

        def forward(self, logits, labels):
            self.seen["steps"] += 1
            return F.cross_entropy(logits, labels)

        def get_extra_state(self):
            return dict(self.seen)

        def set_extra_state(self, state):
            self.seen = dict(state)

    try:
        (result,) = train_grid(load_recipe(tiny(losses=["tp_extra_state"], train={**TINY_TRAIN, "stack": "off"})),
                               tmp_path)
        assert result["status"] == "completed", result.get("error")
    finally:
        LOSSES.remove("tp_extra_state")


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_run_trained_again_keeps_only_its_own_checkpoints(tmp_path, jobs):
    """save_every is not part of a run's identity: trained again with another, the earlier attempt's
    checkpoints must not stay beside the new ones (a trajectory would go through both trainings)."""
    def checkpoints(save_every: int) -> list[str]:
        recipe = load_recipe(tiny(train={**TINY_TRAIN, "epochs": 4, "save_every": save_every, "stack": "off"}))
        (result,) = train_grid(recipe, tmp_path, force=True, jobs=jobs)
        assert result["status"] == "completed", result.get("error")
        folder = tmp_path / "tiny" / recipe.runs[0].run_id
        return sorted(p.name for p in (folder / "checkpoints").iterdir())

    assert checkpoints(1) == [f"epoch-000{e}.pt" for e in (1, 2, 3, 4)]
    assert checkpoints(2) == ["epoch-0002.pt", "epoch-0004.pt"]
