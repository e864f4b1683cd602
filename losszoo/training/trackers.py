"""Experiment trackers a run logs to: ``train.log: [tensorboard, mlflow]`` (or ``--log``).

Each run logs its config as hyperparameters, its train loss, learning rate
and validation metrics per epoch, and its final test metrics:

- TensorBoard: event files in ``<run folder>/tensorboard`` (``torch.utils.tensorboard``), read
  back by TensorBoard's own EventAccumulator; ``pip install 'losszoo[tensorboard]'``;
- MLflow: to ``$MLFLOW_TRACKING_URI``, else a local store beside the runs
  (``<runs dir>/mlflow.db``, SQLite: MLflow's plain-file store is retired), one MLflow
  experiment per losszoo experiment, one MLflow run per losszoo run;
  ``pip install 'losszoo[mlflow]'``; ``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db``.

Trackers watch a run; they are not part of its identity (``train.log`` is not hashed).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

#: name -> (the module that must import, the extra that installs it)
TRACKERS = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow")}


def missing(name: str) -> str | None:
    """Why tracker ``name`` cannot log here (not installed), or None."""
    module, extra = TRACKERS[name]
    if importlib.util.find_spec(module) is None:
        return f"logging to {name} needs it installed: pip install 'losszoo[{extra}]'"
    return None


def flat_params(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The run's config as flat scalar hyperparameters (lists as JSON text)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_params(value, name + "."))
        elif isinstance(value, (list, tuple)) or value is None:
            out[name] = json.dumps(value)
        else:
            out[name] = value
    return out


class Trackers:
    """The trackers of one run, called by the trainer at its start, after each epoch and at its end."""

    def __init__(self, names: list[str], config: dict[str, Any], folder: Path):
        self.loggers = [_OPEN[name](config, folder) for name in names]
        self.open = list(self.loggers)  # those neither finished nor aborted

    def epoch(self, epoch: int, train_loss: float, lr: float, val: dict[str, float]) -> None:
        for logger in self.loggers:
            logger.epoch(epoch, train_loss, lr, val)

    def finish(self, status: str, metrics: dict[str, dict[str, float]]) -> None:
        """Each tracker's end; one that raises leaves the rest to be finished, and the error goes on to the run
        (whose ``abort`` then marks what could not be finished FAILED)."""
        errors = []
        for logger in list(self.open):
            try:
                logger.finish(status, metrics)
            except Exception as error:
                errors.append(error)
            else:
                self.open.remove(logger)
        if errors:
            raise errors[0]

    def abort(self, interrupted: bool) -> None:
        """The run ended by an error or a Ctrl-C before ``finish``: close the event files, and mark the
        MLflow run KILLED or FAILED (not RUNNING forever). Once per tracker, none after its ``finish``; never
        raises (a tracker that cannot be reached must not hide the run's own error, nor stop a stack)."""
        for logger in self.open:
            with contextlib.suppress(Exception):
                logger.abort(interrupted)
        self.open = []


class _TensorBoard:
    def __init__(self, config: dict[str, Any], folder: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.params = {k: v if isinstance(v, (int, float, str, bool)) else str(v)
                       for k, v in flat_params(config).items()}
        self.writer = SummaryWriter(log_dir=str(folder / "tensorboard"))
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=2, default=str) + "\n```")

    def epoch(self, epoch: int, train_loss: float, lr: float, val: dict[str, float]) -> None:
        self.writer.add_scalar("train/loss", train_loss, epoch)
        self.writer.add_scalar("train/lr", lr, epoch)
        for name, value in val.items():
            self.writer.add_scalar(f"val/{name}", value, epoch)

    def finish(self, status: str, metrics: dict[str, dict[str, float]]) -> None:
        test = {f"test/{k}": v for k, v in metrics.get("test", {}).items()}
        # add_hparams writes the final metrics beside the hyperparameters (TensorBoard's HParams tab)
        self.writer.add_hparams(self.params, test or {"test/none": 0.0}, run_name=".")
        self.writer.close()

    def abort(self, interrupted: bool) -> None:
        self.writer.close()


class _MLflow:
    def __init__(self, config: dict[str, Any], folder: Path):
        import mlflow

        uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(folder.parent.parent / 'mlflow.db').resolve()}"
        self.client = mlflow.MlflowClient(tracking_uri=uri)
        experiment = self.client.get_experiment_by_name(config["experiment"])
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(
            config["experiment"])
        run_name = f"{config.get('label', config['loss']['name'])} seed {config['seed']}"
        self.run_id = self.client.create_run(experiment_id, run_name=run_name,
                                             tags={"losszoo.run_folder": str(folder)}).info.run_id
        for key, value in flat_params(config).items():
            self.client.log_param(self.run_id, key, str(value)[:6000])

    def epoch(self, epoch: int, train_loss: float, lr: float, val: dict[str, float]) -> None:
        self.client.log_metric(self.run_id, "train_loss", train_loss, step=epoch)
        self.client.log_metric(self.run_id, "lr", lr, step=epoch)
        for name, value in val.items():
            self.client.log_metric(self.run_id, f"val_{name}", value, step=epoch)

    def finish(self, status: str, metrics: dict[str, dict[str, float]]) -> None:
        for name, value in metrics.get("test", {}).items():
            self.client.log_metric(self.run_id, f"test_{name}", value)
        self.client.set_terminated(self.run_id, "FINISHED" if status == "completed" else "FAILED")

    def abort(self, interrupted: bool) -> None:
        self.client.set_terminated(self.run_id, "KILLED" if interrupted else "FAILED")


_OPEN = {"tensorboard": _TensorBoard, "mlflow": _MLflow}
