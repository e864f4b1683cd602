"""The run store: ``runs/<experiment>/<run_id>/`` with ``config.yaml``,
``metrics.jsonl``, ``checkpoint.pt`` and ``result.json``.

``result.json`` is written atomically and last, so a folder without it is a run
that never finished; a crash or Ctrl-C never leaves one that looks completed.
"""

from __future__ import annotations

import gc
import json
import os
import tempfile
from pathlib import Path
from typing import Any

DEFAULT_RUNS_DIR = "runs"
STATUSES = ("completed", "diverged", "failed", "interrupted")


def runs_dir(given: str | Path | None = None) -> Path:
    """``--runs-dir``, else ``$LOSSZOO_RUNS``, else ``./runs``."""
    return Path(given or os.environ.get("LOSSZOO_RUNS") or DEFAULT_RUNS_DIR)


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode() if isinstance(text, str) else text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def read_result(run_dir: Path | str) -> dict[str, Any] | None:
    """The run's result, or None when it is missing, half-written or not a result."""
    try:
        with open(os.path.join(run_dir, "result.json"), "rb") as handle:  # plain strings: 10,000 of these
            result = json.loads(handle.read())
    except (OSError, ValueError):
        return None
    if not isinstance(result, dict) or result.get("status") not in STATUSES or "run_id" not in result:
        return None
    return result


def is_completed(run_dir: Path, run_id: str) -> bool:
    result = read_result(run_dir)
    return result is not None and result["status"] == "completed" and result.get("config_hash") == run_id


def iter_results(root: Path, experiments: list[str] | None = None) -> tuple[list[dict[str, Any]], list[Path]]:
    """Every readable result under ``root`` (optionally only some experiments),
    and the run folders that hold none (unfinished, half-written or corrupt)."""
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
                if not entry.is_dir() or entry.name.startswith("."):
                    continue
                result = read_result(entry.path)
                if result is None:
                    skipped.append(Path(entry.path))
                else:
                    results.append(result)
