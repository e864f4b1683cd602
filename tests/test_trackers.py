"""train.log: runs logged to TensorBoard and MLflow, read back with each library's own reader."""

import pytest

import losszoo
from losszoo.errors import RecipeError
from losszoo.recipe.load import load_recipe
from losszoo.training import trackers

RECIPE = {"experiment": "logged", "dataset": "iris", "loss": "cross_entropy", "seeds": [0],
          "model": {"name": "mlp", "hidden": [8]}, "train": {"epochs": 3, "batch_size": 32}}


def test_tensorboard_holds_the_epochs_the_test_metrics_and_the_config(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (result,) = losszoo.train({**RECIPE, "train": {**RECIPE["train"], "log": ["tensorboard"]}}, runs_dir=tmp_path)
    folder = tmp_path / "logged" / result["run_id"] / "tensorboard"
    events = EventAccumulator(str(folder))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert {"train/loss", "train/lr", "val/accuracy"} <= set(scalars)
    losses = [e.value for e in events.Scalars("train/loss")]
    assert [e.step for e in events.Scalars("val/accuracy")] == [1, 2, 3] and len(losses) == 3
    val = [e.value for e in events.Scalars("val/accuracy")]
    assert val[result["best_epoch"] - 1] == pytest.approx(result["metrics"]["val"]["accuracy"])
    assert events.Scalars("test/accuracy")[0].value == pytest.approx(result["metrics"]["test"]["accuracy"])
    assert "config/text_summary" in events.Tags()["tensors"]


def test_mlflow_holds_params_per_epoch_metrics_and_test_metrics(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (result,) = losszoo.train({**RECIPE, "train": {**RECIPE["train"], "log": ["mlflow"]}}, runs_dir=tmp_path)
    uri = f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}"
    mlflow.set_tracking_uri(uri)
    found = mlflow.search_runs(experiment_names=["logged"])
    assert len(found) == 1
    row = found.iloc[0]
    assert row["params.loss.name"] == "cross_entropy" and row["params.train.epochs"] == "3"
    assert row["metrics.test_accuracy"] == pytest.approx(result["metrics"]["test"]["accuracy"])
    assert row["status"] == "FINISHED"
    history = mlflow.MlflowClient(uri).get_metric_history(row["run_id"], "val_accuracy")
    assert [m.step for m in history] == [1, 2, 3]


def test_the_log_option_adds_the_tracker(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    from typer.testing import CliRunner

    from losszoo.cli.main import app

    recipe = tmp_path / "logged.yaml"
    recipe.write_text("dataset: iris\nloss: cross_entropy\ntrain: {epochs: 1}\n")
    outcome = CliRunner().invoke(app, ["train", str(recipe), "--runs-dir", str(tmp_path / "runs"), "--log",
                                       "tensorboard"])
    assert outcome.exit_code == 0, outcome.output
    assert list((tmp_path / "runs" / "logged").glob("*/tensorboard/events.out.tfevents.*"))


def test_a_tracker_that_is_not_installed_is_an_error_naming_the_extra(monkeypatch):
    monkeypatch.setattr(trackers.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RecipeError) as caught:
        load_recipe({**RECIPE, "train": {"log": ["mlflow"]}})
    assert caught.value.problems == [
        "<recipe> train.log[0]: logging to mlflow needs it installed: pip install 'losszoo[mlflow]'"]


def test_an_unknown_tracker_is_an_error():
    with pytest.raises(RecipeError) as caught:
        load_recipe({**RECIPE, "train": {"log": ["wandb"]}})
    assert "train.log[0]: must be one of tensorboard, mlflow, got 'wandb'" in caught.value.problems[0]


@pytest.mark.parametrize(("stack", "raised", "status"), [("off", RuntimeError, "FAILED"),
                                                         ("auto", RuntimeError, "FAILED"),
                                                         ("off", KeyboardInterrupt, "FAILED")])
def test_a_run_that_ends_in_an_error_still_closes_its_mlflow_run(tmp_path, monkeypatch, stack, raised, status):
    mlflow = pytest.importorskip("mlflow")
    from losszoo.training import trainer

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    real = trainer.evaluate

    def second_epoch_fails(*args, **kwargs):
        if trainer.evaluate.calls == 1:
            raise raised("the disk went away")
        trainer.evaluate.calls += 1
        return real(*args, **kwargs)

    second_epoch_fails.calls = 0
    monkeypatch.setattr(trainer, "evaluate", second_epoch_fails)
    recipe = {**RECIPE, "train": {**RECIPE["train"], "log": ["mlflow"], "stack": stack}}
    (result,) = losszoo.train(recipe, runs_dir=tmp_path)  # a KeyboardInterrupt no SIGINT sent: a failure
    assert result["status"] == "failed"
    mlflow.set_tracking_uri(f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}")
    (state,) = mlflow.search_runs(experiment_names=["logged"])["status"]
    assert state == status  # not RUNNING forever


class _Fake:
    """A tracker that records its calls, and raises in the ones named."""

    def __init__(self, calls: list, name: str, raises: tuple[str, ...] = ()):
        self.calls, self.name, self.raises = calls, name, raises

    def _call(self, what: str) -> None:
        self.calls.append((self.name, what))
        if what in self.raises:
            raise ConnectionError(f"{self.name} cannot reach its server")

    def epoch(self, *args) -> None:
        self._call("epoch")

    def finish(self, *args) -> None:
        self._call("finish")

    def abort(self, interrupted: bool) -> None:
        self._call("abort")


def _fakes(monkeypatch, *raises: tuple[str, ...]) -> list:
    """Trackers.__init__ opens one fake per ``raises`` entry instead of the named trackers."""
    calls: list = []

    def init(self, names, config, folder):
        self.loggers = [_Fake(calls, f"t{i}", r) for i, r in enumerate(raises)]
        self.open = list(self.loggers)

    monkeypatch.setattr(trackers.Trackers, "__init__", init)
    return calls


def test_a_tracker_that_fails_to_finish_leaves_the_others_finished_and_itself_aborted(tmp_path, monkeypatch):
    calls = _fakes(monkeypatch, ("finish",), ())
    recipe = {**RECIPE, "train": {**RECIPE["train"], "log": ["tensorboard"]}}
    (result,) = losszoo.train(recipe, runs_dir=tmp_path)
    assert result["status"] == "failed" and "cannot reach its server" in result["error"]
    ends = [c for c in calls if c[1] != "epoch"]
    assert ends == [("t0", "finish"), ("t1", "finish"), ("t0", "abort")]  # t1 finished, t0 marked failed


@pytest.mark.parametrize("stack", ["off", "auto"])
def test_a_tracker_that_cannot_abort_fails_its_run_only(tmp_path, monkeypatch, stack):
    """A run whose tracker breaks is failed; the tracker's abort breaking too must not stop the other runs
    (nor the stack they train in)."""
    calls = _fakes(monkeypatch, ("epoch", "abort"))
    recipe = {**RECIPE, "seeds": [0, 1, 2], "train": {**RECIPE["train"], "log": ["tensorboard"], "stack": stack}}
    results = losszoo.train(recipe, runs_dir=tmp_path)
    assert [r["status"] for r in results] == ["failed"] * 3
    assert all("cannot reach its server" in r["error"] for r in results)
    assert calls.count(("t0", "abort")) == 3
