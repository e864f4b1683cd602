"""One run of a grid: train it into its folder and record the outcome.

A run that fails or diverges is a result and the grid goes on; Ctrl-C records
the run in flight as `interrupted`. Which runs to train, and where, is
``losszoo.training.grid``'s business.
"""

from __future__ import annotations

import platform
import traceback
from pathlib import Path
from typing import Any, Protocol

import yaml

from losszoo.errors import LosszooError
from losszoo.recipe.load import RunSpec
from losszoo.training.store import write_atomic, write_json


class Reporter(Protocol):
    """What the CLI (or a notebook) hears while a grid trains."""

    def start(self, run: RunSpec, epochs: int) -> None: ...

    def epoch(self, run: RunSpec, epoch: int, epochs: int, train_loss: float, metric: str,
              value: float | None) -> None: ...

    def finish(self, run: RunSpec, result: dict[str, Any], skipped: bool) -> None: ...


def versions() -> dict[str, str]:
    import torch

    import losszoo

    return {"losszoo": losszoo.__version__, "torch": torch.__version__, "python": platform.python_version()}


def run_dir_of(root: Path, run: RunSpec) -> Path:
    return root / run.experiment / run.run_id


def make_result(run: RunSpec, status: str, error: str | None, outcome: dict[str, Any] | None = None) -> dict[str, Any]:
    config = run.config
    outcome = outcome or {}
    return {
        "run_id": run.run_id,
        "experiment": run.experiment,
        "status": status,
        "dataset": config["dataset"]["name"],
        "model": config["model"]["name"],
        "loss": config["loss"],
        "label": run.label,
        "seed": run.seed,
        "config_hash": run.run_id,
        "metrics": outcome.get("metrics", {}),
        "best_epoch": outcome.get("best_epoch"),
        "epochs_run": outcome.get("epochs_run", 0),
        "train_seconds": outcome.get("train_seconds"),
        "samples_per_second": outcome.get("samples_per_second"),
        "n_parameters": outcome.get("n_parameters"),
        "versions": versions(),
        "error": error,
        "position": run.position,
        "config": {k: v for k, v in config.items() if k != "label"},
    }


def run_one(run: RunSpec, root: Path, reporter: Reporter | None = None) -> dict[str, Any]:
    """Train one run into its folder and return its result (also on failure)."""
    from losszoo.training.trainer import train_run

    folder = run_dir_of(root, run)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").unlink(missing_ok=True)  # from here on the folder is unfinished
    write_atomic(folder / "config.yaml", yaml.safe_dump(run.config, sort_keys=False))

    def on_epoch(epoch: int, epochs: int, train_loss: float, metric: str, value: float | None) -> None:
        if reporter is not None:
            reporter.epoch(run, epoch, epochs, train_loss, metric, value)

    try:
        outcome = train_run(run.config, folder, on_epoch)
        result = make_result(run, outcome.pop("status"), outcome.pop("error"), outcome)
    except KeyboardInterrupt:
        write_json(folder / "result.json", make_result(run, "interrupted", "interrupted by the user"))
        raise
    except LosszooError as error:
        result = make_result(run, "failed", str(error))
    except Exception as error:  # one broken run must not stop the grid
        where = traceback.extract_tb(error.__traceback__)[-1]
        result = make_result(run, "failed", f"{type(error).__name__}: {error} (at {Path(where.filename).name}:"
                                        f"{where.lineno})")
    write_json(folder / "result.json", result)
    return result
