"""A run, fully resolved: what the recipe loader produces and the trainer, the
grid and the run store consume. Nothing here reads YAML or imports torch.

A run's identity is the hash of its resolved config: every hyperparameter
with its default filled in, the seed, and the content hash of every user file
and plugin source it reads (``config["inputs"]``), so a changed csv or plugin
is a new run and the old one stays on disk. Where it trains (``train.device``,
``train.threads``), how it is logged and the experiment's name are not part
of it. The *configuration* of a run is the same minus the seed: runs that
share it are seeds of one row in ``losszoo compare``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

#: train: keys that say where or how a run is watched, not what it computes.
UNHASHED_TRAIN_KEYS = ("device", "threads", "log", "stack", "save_every")
#: Top-level config keys outside a run's identity.
UNHASHED_KEYS = ("experiment", "plugins", "label")


def _digest(config: dict[str, Any], drop: tuple[str, ...]) -> str:
    hashed = {k: v for k, v in config.items() if k not in UNHASHED_KEYS + drop}
    if isinstance(config.get("train"), dict):
        hashed["train"] = {k: v for k, v in config["train"].items() if k not in UNHASHED_TRAIN_KEYS}
    text = json.dumps(hashed, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def config_hash(config: dict[str, Any]) -> str:
    """A short hash of what a run computes: its run id."""
    return _digest(config, ())


def configuration_id(config: dict[str, Any]) -> str:
    """A short hash of the run's configuration, its seed left out: the seeds of one row share it."""
    return _digest(config, ("seed",))


@dataclass(frozen=True)
class RunSpec:
    """One run: a dataset, a model, a loss, a seed and the training settings, fully resolved."""

    run_id: str
    experiment: str
    label: str
    config: dict[str, Any]
    position: int = 0  # the loss's place in the recipe: tables list losses in recipe order
    #: a tuning trial's pruning rule: (val metric, higher is better, the threshold at each epoch or None)
    prune: tuple[str, bool, tuple[float | None, ...]] | None = None

    @property
    def seed(self) -> int:
        return self.config["seed"]

    @classmethod
    def of(cls, experiment: str, label: str, config: dict[str, Any], position: int = 0,
           prune: tuple[str, bool, tuple[float | None, ...]] | None = None) -> RunSpec:
        return cls(config_hash(config), experiment, label, {**config, "label": label}, position, prune)

    def should_prune(self, epoch: int, val: dict[str, float]) -> bool:
        """Whether a trial's val metric at ``epoch`` is worse than the median of the earlier trials' there."""
        if self.prune is None:
            return False
        metric, higher, thresholds = self.prune
        value = val.get(metric)
        threshold = thresholds[epoch - 1] if epoch <= len(thresholds) else None
        if value is None or threshold is None:
            return False
        return value < threshold if higher else value > threshold
