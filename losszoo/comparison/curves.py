"""Learning curves of a comparison's rows: each run's per-epoch validation
metric (its ``metrics.jsonl``), averaged over seeds epoch by epoch, and a
unicode sparkline of the average for the table.

Only completed runs count, as in the table's statistics. Runs of different
lengths (early stopping) are aligned by epoch number; each epoch averages the
runs that reached it, and ``Curve.n`` says how many did.

    >>> sparkline([0, 1, 2, 3, 4, 5, 6, 7])
    '▁▂▃▄▅▆▇█'
    >>> sparkline([1.0, float("nan"), 3.0])
    '▁ █'
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from losszoo.sparkline import BLOCKS, FLAT, sparkline  # noqa: F401  (one sparkline; re-exported)

TOP_LEVEL = ("train_loss", "lr")  # logged beside ``val`` on every line of metrics.jsonl
SPLITS = ("val", "test")


@dataclass
class Curve:
    """A metric per epoch, averaged over the runs that reached each epoch."""

    metric: str
    epochs: list[int]
    mean: list[float]
    std: list[float]  # sample std (ddof 1); 0 where a single run reached the epoch
    n: list[int]  # runs averaged at each epoch

    def __len__(self) -> int:
        return len(self.epochs)


def curve_metric(metric: str) -> str:
    """What ``metrics.jsonl`` logs for a table column: ``test.accuracy``, ``val.accuracy``
    and ``accuracy`` all mean the validation accuracy, since only val is logged per epoch;
    ``train_loss`` and ``lr`` are read as they are."""
    split, _, name = metric.rpartition(".")
    return name if split in ("", *SPLITS) else metric


def read_curve(run_dir: Path | str, metric: str) -> dict[int, float]:
    """``{epoch: value}`` of one run's ``metrics.jsonl``; ``{}`` when the file is missing.
    Lines that are not JSON (a run killed mid-write) and non-finite values are left out."""
    name = curve_metric(metric)
    curve: dict[int, float] = {}
    try:
        lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    except (OSError, ValueError):
        return curve
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
            continue
        value = record.get(name) if name in TOP_LEVEL else (record.get("val") or {}).get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            curve[record["epoch"]] = float(value)
    return curve


def average_curves(curves: Iterable[dict[int, float]], metric: str = "") -> Curve:
    """Mean and std over runs at each epoch that any run reached, in epoch order."""
    by_epoch: dict[int, list[float]] = {}
    for curve in curves:
        for epoch, value in curve.items():
            by_epoch.setdefault(epoch, []).append(value)
    epochs = sorted(by_epoch)
    means, stds = [], []
    for epoch in epochs:
        values = by_epoch[epoch]
        mean = sum(values) / len(values)
        means.append(mean)
        stds.append(math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0)
    return Curve(metric, epochs, means, stds, [len(by_epoch[e]) for e in epochs])


def selection_metric(row, column: str) -> str:
    """The val metric that picked the row's reported epoch (its runs' ``select_by``); with ``select_by: last``
    or an older run, the table's column."""
    select = str((row.results[0].get("config") or {}).get("select_by", ""))
    return select if select.startswith("val.") else column


def run_folder(root: Path | str, result: dict[str, Any]) -> Path:
    return Path(root) / str(result["experiment"]) / str(result["run_id"])


def row_curve(row, root: Path | str, metric: str) -> Curve:
    """The seed-averaged curve of a comparison row (a ``losszoo.comparison.table.Row``)."""
    completed = [r for r in row.results if r.get("status") == "completed"]
    return average_curves((read_curve(run_folder(root, r), metric) for r in completed), curve_metric(metric))


def row_sparkline(row, root: Path | str, metric: str, width: int = 12) -> str:
    """The sparkline of a row's seed-averaged validation curve for a table column
    (``test.accuracy`` draws the val accuracy per epoch); empty without metrics.jsonl."""
    return sparkline(row_curve(row, root, metric).mean, width)
