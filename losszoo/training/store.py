"""The run store: ``runs/<experiment>/<run_id>/`` with ``config.yaml``,
``metrics.jsonl``, ``checkpoint.pt`` and ``result.json``.

``result.json`` is written atomically and last, so a folder without it is a run
that never finished; a crash or Ctrl-C never leaves one that looks completed.
"""

from __future__ import annotations

import gc
import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

from losszoo.errors import LosszooError

DEFAULT_RUNS_DIR = "runs"
STATUSES = ("completed", "diverged", "failed", "interrupted", "pruned")


def runs_dir(given: str | Path | None = None) -> Path:
    """``--runs-dir``, else ``$LOSSZOO_RUNS``, else ``./runs``."""
    return Path(given or os.environ.get("LOSSZOO_RUNS") or DEFAULT_RUNS_DIR)


def check_runs_dir(root: Path, write: bool) -> None:
    """A LosszooError, before any work, when ``root`` cannot hold runs: a file, or not writable."""
    if root.exists() and not root.is_dir():
        raise LosszooError(f"runs folder {root} is a file, not a folder; choose another with --runs-dir")
    if not write:
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".losszoo-write-check-"):
            pass
    except OSError as error:
        raise LosszooError(f"runs folder {root} is not writable ({error.strerror or error}); choose another with "
                           "--runs-dir") from None


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write to a temporary file beside ``path``, then rename it into place.

    The temporary file is created with mode 0666 less the umask at the time of writing, as ``open`` would
    (mkstemp would make it private): in a runs folder shared between users, everyone who may read the
    folder may read its runs.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode() if isinstance(text, str) else text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


#: Folders a run fills while it trains (``train.save_every``, ``train.log: [tensorboard]``): an earlier attempt's
#: files there would mix with this one's (a trajectory through two trainings), so each attempt starts them empty.
ATTEMPT_FOLDERS = ("checkpoints", "tensorboard")


def clear_attempt_folders(folder: Path) -> None:
    for name in ATTEMPT_FOLDERS:
        if (folder / name).is_dir() and not (folder / name).is_symlink():
            shutil.rmtree(folder / name)


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def read_result(run_dir: Path | str) -> dict[str, Any] | None:
    """The run's result, or None when it is missing, half-written or not a result."""
    return _read(run_dir)[0]


def _read(run_dir: Path | str) -> tuple[dict[str, Any] | None, str]:
    path = os.path.join(run_dir, "result.json")
    try:
        with open(path, "rb") as handle:  # plain strings: 10,000 of these
            result = json.loads(handle.read())
    except FileNotFoundError:
        return None, "no result.json (still training, or stopped before it finished)"
    except IsADirectoryError:
        return None, "result.json is a folder"
    except OSError as error:
        return None, f"result.json cannot be read ({error.strerror or error})"
    except ValueError:
        return None, "result.json is not valid JSON (half-written or damaged)"
    if not isinstance(result, dict) or result.get("status") not in STATUSES or "run_id" not in result:
        return None, "result.json is not a losszoo result (no run_id or status)"
    metrics = result.get("metrics")
    if not isinstance(metrics, dict) or not all(isinstance(v, dict) for v in metrics.values()):
        return None, "result.json's metrics are not a mapping of splits to metrics"
    if not isinstance(result.get("config", {}), dict):
        return None, "result.json's config is not a mapping"
    return (None, problem) if (problem := _shape_problem(result)) else (result, "")


def _shape_problem(result: dict[str, Any]) -> str | None:
    """What readers take as given that a damaged or hand-made result.json may lack."""
    def kind(value: Any, *types: type) -> bool:
        return isinstance(value, types) and not isinstance(value, bool)

    if not kind(result.get("seed"), int):
        return "result.json's seed is not an integer"
    if not (result.get("generalization_gap") is None or kind(result["generalization_gap"], dict)):
        return "result.json's generalization_gap is not a mapping"
    config = result.get("config", {})
    trial, tuned = config.get("trial"), config.get("tuned")
    if trial and not (kind(trial, dict) and kind(trial.get("number"), int) and kind(trial.get("study"), str)):
        return "result.json's config.trial is not a study and a trial number"
    if tuned and not (kind(tuned, dict) and kind(tuned.get("study"), str) and kind(tuned.get("metric"), str)
                      and kind(tuned.get("values", {}), dict)):
        return "result.json's config.tuned is not a tuning record (study, metric, values)"
    return None


def result_signature(folder: Path) -> tuple[int, ...] | None:
    """Which result.json is in ``folder`` (each atomic write makes a new file), or None.

    Comparing it before and after tells a result recorded since from an old one
    without trusting clocks (an NFS server's may differ from ours).
    """
    return file_signature(folder / "result.json")


def file_signature(path: Path) -> tuple[int, ...] | None:
    """Which file is at ``path`` (inode, device, mtime, size), or None: see ``result_signature``."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_ino, stat.st_dev, stat.st_mtime_ns, stat.st_size)


def unusable(folder: Path) -> str | None:
    """Why a run cannot be trained into ``folder`` (a file where its folder or files should be), or None."""
    if folder.exists() and not folder.is_dir():
        return f"{folder} is a file, not a run folder; move it away"
    for name in ("result.json", ".claim", "config.yaml", "metrics.jsonl", "checkpoint.pt"):
        if (folder / name).is_dir():
            return f"{folder / name} is a folder, not a file; move it away"
    return None


def is_completed(run_dir: Path, run_id: str) -> bool:
    result = read_result(run_dir)  # a pruned tuning trial is finished too: its budget is spent
    return result is not None and result["status"] in ("completed", "pruned") and result.get("config_hash") == run_id


def iter_results(root: Path, experiments: list[str] | None = None
                 ) -> tuple[list[dict[str, Any]], list[tuple[Path, str]]]:
    """Every readable result under ``root`` (optionally only some experiments),
    and the run folders that hold none, each with the reason (unfinished, half-written or corrupt)."""
    results, skipped = [], []
    if not root.is_dir():
        return results, skipped
    # Tens of thousands of small dicts would trigger the cyclic collector again and again; none of
    # them holds a cycle, so it waits until the store is read.
    collecting = gc.isenabled()
    gc.disable()
    try:
        _read_results(root, experiments, results, skipped)
    finally:
        if collecting:
            gc.enable()
    return results, skipped


def _read_results(root: Path, experiments: list[str] | None, results: list, skipped: list) -> None:
    folders = [root / e for e in experiments] if experiments else sorted(p for p in root.iterdir() if p.is_dir())
    for folder in folders:
        if not folder.is_dir():
            continue
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.name.startswith("."):
                    continue
                if not entry.is_dir():
                    skipped.append((Path(entry.path), "a file where a run folder should be"))
                    continue
                result, why = _read(entry.path)
                if result is not None and result["run_id"] != entry.name:
                    result, why = None, (f"result.json names run {str(result['run_id'])[:80]!r}, not its folder "
                                         "(a run folder is named by its run id; moved or edited?)")
                if result is None:
                    skipped.append((Path(entry.path), why))
                else:
                    result["experiment"] = folder.name  # where it lies: readers find its files there
                    results.append(result)


#: Beside an experiment's runs (hidden, so that readers of run folders pass it by): the recipe last trained there.
RECIPE_FILE = ".recipe.json"


def save_recipe(root: Path, experiment: str, source: str, text: str, overrides: list[str]) -> None:
    """Keep the recipe ``losszoo train`` was given (its text, where it was, its --set arguments) with the
    experiment's runs, for the report's Recipes and Reproduce sections; data, never read as a recipe."""
    write_json(root / experiment / RECIPE_FILE, {"source": source, "overrides": overrides, "text": text})


def saved_recipe(root: Path, experiment: str) -> dict[str, Any] | None:
    """What ``save_recipe`` kept, or None (runs trained before it, or a damaged file)."""
    try:
        record = json.loads((root / experiment / RECIPE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(record, dict) and isinstance(record.get("text"), str) and isinstance(record.get("source"), str)
    return record if ok and isinstance(record.get("overrides", []), list) else None
