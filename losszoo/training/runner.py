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
from losszoo.training import interrupts
from losszoo.training.store import clear_attempt_folders, read_result, result_signature, write_atomic, write_json

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
        "generalization_gap": outcome.get("generalization_gap"),  # what `compare --correlate` ranks against
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


def _failure(error: BaseException) -> str:
    where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    at = f" (at {Path(where.filename).name}:{where.lineno})" if where else ""
    return str(error) if isinstance(error, LosszooError) else f"{type(error).__name__}: {error}{at}"


def _prepare(root: Path, run: RunSpec) -> Path:
    folder = run_dir_of(root, run)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").unlink(missing_ok=True)  # from here on the folder is unfinished
    clear_attempt_folders(folder)
    write_atomic(folder / "config.yaml", yaml.safe_dump(run.config, sort_keys=False))
    return folder


def run_one(run: RunSpec, root: Path, reporter: Reporter | None = None) -> dict[str, Any]:
    """Train one run into its folder and return its result (also on failure).

    A real Ctrl-C records the run ``interrupted`` with the epochs it ran, then goes on to the caller; any
    other exception (a plugin's KeyboardInterrupt or sys.exit included) fails this run only.
    """
    return run_stack([run], root, reporter)[0]


def run_stack(runs: list[RunSpec], root: Path, reporter: Reporter | None = None) -> list[dict[str, Any]]:
    """Train ``runs`` (one run, or runs that stack: ``losszoo.training.stacked``) into their folders and return
    their results, each written as soon as its run ends."""
    folders = [_prepare(root, run) for run in runs]
    done = [0] * len(runs)
    results: list[dict[str, Any] | None] = [None] * len(runs)

    def on_epoch(i: int, epoch: int, epochs: int, train_loss: float, metric: str, value: float | None) -> None:
        done[i] = epoch
        if reporter is not None:
            reporter.epoch(runs[i], epoch, epochs, train_loss, metric, value)

    def on_finish(i: int, outcome: dict[str, Any] | BaseException) -> None:
        if isinstance(outcome, BaseException):
            result = make_result(runs[i], "failed", _failure(outcome), {"epochs_run": done[i]})
        else:
            result = make_result(runs[i], outcome.pop("status"), outcome.pop("error"), dict(outcome))
        write_json(folders[i] / "result.json", result)
        results[i] = result
        if reporter is not None:
            reporter.finish(runs[i], result, skipped=False)

    with interrupts.listening():
        try:
            if len(runs) == 1:
                _train_one(runs[0], folders[0], on_epoch, on_finish)
            else:
                from losszoo.training.stacked import train_stack

                train_stack([r.config for r in runs], folders, on_epoch, _prune_of(runs), on_finish)
        except KeyboardInterrupt as error:
            if not interrupts.received():  # raised by code, not by a Ctrl-C: those runs failed
                for i in (i for i, r in enumerate(results) if r is None):
                    on_finish(i, error)
                return results  # type: ignore[return-value]
            for i in (i for i, r in enumerate(results) if r is None):
                write_json(folders[i] / "result.json",
                           make_result(runs[i], "interrupted", BY_THE_USER, {"epochs_run": done[i]}))
            raise
    return results  # type: ignore[return-value]


def _train_one(run: RunSpec, folder: Path, on_epoch: Any, on_finish: Any) -> None:
    from losszoo.training.trainer import train_run

    try:
        outcome: dict[str, Any] | BaseException = train_run(
            run.config, folder, lambda *a: on_epoch(0, *a), run.should_prune if run.prune else None)
    except KeyboardInterrupt:
        raise
    except (Exception, SystemExit) as error:  # one broken run (a plugin's sys.exit too) must not stop the grid
        outcome = error
    on_finish(0, outcome)


def _prune_of(runs: list[RunSpec]) -> Any:
    if not any(r.prune for r in runs):
        return None
    return lambda i, epoch, val: runs[i].should_prune(epoch, val)
