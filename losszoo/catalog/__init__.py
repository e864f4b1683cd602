"""Registry metadata for every built-in name, one file per family.

These modules import nothing heavy: `losszoo list`, `losszoo show` and recipe
validation read them without importing torch. Each defines ``ENTRIES``; the
implementation named by each entry's ``target`` is imported on first use.
"""

from __future__ import annotations

from typing import Any

from losszoo.registry import DatasetEntry, Facts, LossEntry, MetricEntry, ModelEntry, Param, Rule, Tune

__all__ = ["Facts", "Param", "Rule", "Tune", "dataset", "loss", "metric", "model"]


def loss(name: str, target: str, **metadata: Any) -> LossEntry:
    return LossEntry(kind="loss", name=name, target=target, **metadata)


def metric(name: str, target: str, **metadata: Any) -> MetricEntry:
    return MetricEntry(kind="metric", name=name, target=target, **metadata)


def model(name: str, target: str, **metadata: Any) -> ModelEntry:
    return ModelEntry(kind="model", name=name, target=target, **metadata)


def dataset(name: str, target: str, **metadata: Any) -> DatasetEntry:
    return DatasetEntry(kind="dataset", name=name, target=target, **metadata)
