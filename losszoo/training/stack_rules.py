"""Which runs can train stacked, and with which (``losszoo.training.stacked`` trains them).

Imports no torch: ``losszoo train --dry-run`` reads these to say which runs stack and why the others do not.
"""

from __future__ import annotations

import json
from typing import Any

from losszoo.registry import LOSSES

STACKED_MODELS = ("linear", "mlp")
STACKED_OPTIMIZERS = ("sgd", "adam", "adamw")
STACKED_SCHEDULERS = ("none", "cosine", "step")
#: Settings each member keeps for itself: runs that differ only in these (and the seed) share a stack.
PER_MEMBER = {"optimizer": ("lr", "weight_decay", "momentum"),
              "train": ("scheduler", "patience", "save_every", "log")}


def stack_problem(config: dict[str, Any]) -> str | None:
    """Why the run (a resolved config) cannot train in a stack, in words for ``--dry-run``; None when it can."""
    model, train = config["model"], config["train"]
    if model["name"] not in STACKED_MODELS:
        return f"not stacked: model {model['name']!r} (only linear and mlp stack)"
    if model.get("batch_norm"):
        return "not stacked: batch norm keeps running statistics per run"
    if model.get("dropout"):
        return "not stacked: dropout draws its masks from one random stream that the runs would share"
    if train["optimizer"]["name"] not in STACKED_OPTIMIZERS:
        return f"not stacked: optimizer {train['optimizer']['name']!r}"
    if train["scheduler"]["name"] not in STACKED_SCHEDULERS:
        return f"not stacked: scheduler {train['scheduler']['name']!r}"
    if train.get("precision", "fp32") != "fp32":
        return f"not stacked: precision {train['precision']} (stacks train in fp32)"
    entry = LOSSES.get(config["loss"]["name"])
    if not entry.stackable:
        if entry.origin != "built-in":
            return f"not stacked: plugin loss {entry.name!r} does not declare stackable=True"
        return f"not stacked: loss {entry.name!r} is not marked stackable"
    return None


def stack_key(config: dict[str, Any]) -> str:
    """Runs with equal keys can share a stack: equal in everything but the seed, the settings each member keeps
    (learning rate, weight decay, momentum, schedule, patience, checkpoints, trackers, the epoch it reports) and
    the loss, of which only its input kind and its batches (pairs or not) matter: each member calls its own.

    Equal keys give equal model shapes; the training-set sizes follow from the seed's split, and
    ``train_stack`` trains members of different sizes (or loss weights of different shapes) in separate stacks.
    """
    entry = LOSSES.get(config["loss"]["name"])
    shape = {k: v for k, v in config.items() if k not in ("seed", "label", "trial", "tuned", "select_by", "experiment")}
    shape["loss"] = {"input": entry.input, "needs_pairs": entry.needs_pairs}
    train = {k: v for k, v in config["train"].items() if k not in PER_MEMBER["train"]}
    train["optimizer"] = {k: v for k, v in train["optimizer"].items() if k not in PER_MEMBER["optimizer"]}
    shape["train"] = train
    return json.dumps(shape, sort_keys=True, default=str)


#: Members of a stack under ``train.stack: auto``: on a CPU the gain peaks at 8-16 members (beyond, the stacked
#: weights and optimizer state outgrow the cache: benchmarks/bench_stacked.py).
AUTO_LIMIT = 16


def plan_units(runs: list[Any]) -> list[list[Any]]:
    """The recipe's runs (RunSpecs) as units of work: runs that can stack grouped by key, up to their
    ``train.stack`` limit, in the order their first member appears; every other run alone."""
    groups: dict[str, list[list[Any]]] = {}
    units: list[list[Any]] = []
    for run in runs:
        setting = run.config["train"].get("stack", "auto")
        if setting == "off" or setting == 1 or stack_problem(run.config) is not None:
            units.append([run])
            continue
        limit = AUTO_LIMIT if setting == "auto" else int(setting)
        key = f"{limit}|{stack_key(run.config)}"
        open_units = groups.setdefault(key, [])
        if open_units and len(open_units[-1]) < limit:
            open_units[-1].append(run)
        else:
            open_units.append([run])
            units.append(open_units[-1])
    return units
