"""Registry metadata for every built-in name, one file per family.

These modules import nothing heavy: `losszoo list`, `losszoo show` and recipe
validation read them without importing torch. Each defines ``ENTRIES``; the
implementation named by each entry's ``target`` is imported on first use.
"""

from __future__ import annotations

from typing import Any

from losszoo.registry import DatasetEntry, Facts, LossEntry, MetricEntry, ModelEntry, Param, Rule, Tune

__all__ = ["Facts", "Param", "Rule", "Tune", "dataset", "loss", "metric", "model", "one_per_class"]


def loss(name: str, target: str, **metadata: Any) -> LossEntry:
    return LossEntry(kind="loss", name=name, target=target, **metadata)


def metric(name: str, target: str, **metadata: Any) -> MetricEntry:
    return MetricEntry(kind="metric", name=name, target=target, **metadata)


def model(name: str, target: str, **metadata: Any) -> ModelEntry:
    return ModelEntry(kind="model", name=name, target=target, **metadata)


def dataset(name: str, target: str, **metadata: Any) -> DatasetEntry:
    return DatasetEntry(kind="dataset", name=name, target=target, **metadata)


def one_per_class(key: str, unit: str = "class", units: str = "classes") -> Rule:
    """``key``, when a list, holds one value per class (or label): ``weight: [1, 2]`` on iris's three
    classes is a recipe error, not a shape error on the first batch."""

    def check(values: Any) -> bool | str:
        given = values[key]
        if not isinstance(given, (list, tuple)) or len(given) == values["num_classes"]:
            return True
        return f"has {len(given)} entries for {values['num_classes']} {units}; give one per {unit}"

    return Rule(key, "", check, needs=("num_classes",))
