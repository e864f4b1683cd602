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
from losszoo.spec import RunSpec, configuration_id
from losszoo.training.store import read_result, result_signature, write_atomic, write_json

#: Why a run stopped when the user pressed Ctrl-C (a real SIGINT, nothing else).
BY_THE_USER = "interrupted by the user"


class Reporter(Protocol):
    """What the CLI (or a notebook) hears while a grid trains."""

    def start(self, run: RunSpec, epochs: int) -> None: ...

    def epoch(self, run: RunSpec, epoch: int, epochs: int, train_loss: float, metric: str,
              value: float | None) -> None: ...

    def finish(self, run: RunSpec, result: dict[str, Any], skipped: bool) -> None: ...


def versions() -> dict[str, str]:
    """The versions a run was computed with: recorded in every result.json."""
    import numpy
    import sklearn
    import torch

    import losszoo

    return {"losszoo": losszoo.__version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "scikit-learn": sklearn.__version__, "python": platform.python_version()}


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
        "configuration_id": configuration_id(config),
        "metrics": outcome.get("metrics", {}),
        "higher_is_better": _directions(config.get("metrics") or []),
        "best_epoch": outcome.get("best_epoch"),
        "epochs_run": outcome.get("epochs_run", 0),
        "train_seconds": outcome.get("train_seconds"),
        "samples_per_second": outcome.get("samples_per_second"),
        "n_parameters": outcome.get("n_parameters"),
        "versions": versions(),
        "provenance": outcome.get("provenance", {}),
        **({"val_curves": outcome["val_curves"]} if "val_curves" in outcome else {}),
        "error": error,
        "position": run.position,
        "config": {k: v for k, v in config.items() if k != "label"},
    }


def _directions(metrics: list[str]) -> dict[str, bool]:
    """Which way each metric of the run is better, so `compare` can rank a plugin's metric without importing it."""
    from losszoo.registry import METRICS

    return {m: bool(METRICS.get(m).higher_is_better) for m in metrics if m in METRICS}


def record_stopped(folder: Path, run: RunSpec, status: str, reason: str, epochs_run: int = 0,
                   before: tuple[int, ...] | None = None) -> dict[str, Any]:
    """Record a run that ended abnormally (``interrupted`` by the user, or ``failed``), unless a result was
    recorded since ``before`` (the result.json signature when it launched); returns the result that stands."""
    result = read_result(folder)
    if result is None or result_signature(folder) == before:
        result = make_result(run, status, reason, {"epochs_run": epochs_run})
        write_json(folder / "result.json", result)
    return result


def run_one(run: RunSpec, root: Path, reporter: Reporter | None = None) -> dict[str, Any]:
    """Train one run into its folder and return its result (also on failure).

    Ctrl-C records the run ``interrupted`` with the epochs it ran, then goes on to the caller.
    """
    from losszoo.training.trainer import train_run

    folder = run_dir_of(root, run)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").unlink(missing_ok=True)  # from here on the folder is unfinished
    write_atomic(folder / "config.yaml", yaml.safe_dump(run.config, sort_keys=False))
    done = [0]

    def on_epoch(epoch: int, epochs: int, train_loss: float, metric: str, value: float | None) -> None:
        done[0] = epoch
        if reporter is not None:
            reporter.epoch(run, epoch, epochs, train_loss, metric, value)

    try:
        outcome = train_run(run.config, folder, on_epoch, run.should_prune if run.prune else None)
        result = make_result(run, outcome.pop("status"), outcome.pop("error"), outcome)
    except KeyboardInterrupt:
        write_json(folder / "result.json", make_result(run, "interrupted", BY_THE_USER, {"epochs_run": done[0]}))
        raise
    except LosszooError as error:
        result = make_result(run, "failed", str(error))
    except (Exception, SystemExit) as error:  # one broken run (a plugin's sys.exit too) must not stop the grid
        where = traceback.extract_tb(error.__traceback__)[-1]
        result = make_result(run, "failed", f"{type(error).__name__}: {error} (at {Path(where.filename).name}:"
                                        f"{where.lineno})")
    write_json(folder / "result.json", result)
    return result
