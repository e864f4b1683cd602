"""``tune:``: an equal tuning budget for every loss (Musgrave, Belongie & Lim,
"A Metric Learning Reality Check", ECCV 2020).

    tune:
      trials: 20                  # per loss: the budget, equal for all
      metric: val.accuracy        # default: select_by
      space:                      # optional; default: each loss's tunable hyperparameters and the lr
        train.optimizer.lr: {low: 1.0e-4, high: 1.0e-2, log: true}
        loss.margin: {low: 0.1, high: 0.7}
      prune: median               # optional: stop trials below the median of earlier ones
      parallel: 1                 # trials proposed at a time; results depend on it, not on --jobs
      seed: 0                     # of the sampler; trials train with the recipe's first seed
    seeds: [0, 1, 2, 3, 4]        # each loss's best trial is retrained on these and tested

Each loss (of each dataset and sweep point) gets a *study*: its space, its
budget, and the base config its trials change. Trials are selected on
validation data only; the test split is touched only by the final seeds.
This module checks the block and builds the studies; ``losszoo.training.tune``
runs them.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from losszoo.recipe.check import Problems
from losszoo.recipe.schema import LR_TUNE, Train
from losszoo.registry import LOSSES, METRICS, Param, Tune, yaml_repr
from losszoo.spec import configuration_id

TUNE_KEYS = ("trials", "metric", "space", "prune", "parallel", "seed")
PRUNERS = ("none", "median")
MAX_TRIALS = 10_000


@dataclass(frozen=True)
class Dimension:
    """One searched value: a dotted config key and its range."""

    key: str  # "loss.margin", "train.optimizer.lr"
    low: float
    high: float
    log: bool = False
    integer: bool = False


@dataclass
class Study:
    """One loss's tuning: its base config (seed = the tuning seed), space and budget."""

    key: str  # the base configuration and what shapes the trials' sequence (``study_key``); not the budget
    label: str
    position: int
    base: dict[str, Any]  # a resolved run config; the trials change the space's keys
    space: list[Dimension]
    trials: int
    metric: str  # a val metric name
    higher_is_better: bool
    prune: str
    parallel: int
    seed: int
    final_seeds: list[int] = field(default_factory=list)


@dataclass
class TuneBlock:
    trials: int
    metric: str | None
    space: dict[str, Tune] | None
    prune: str
    parallel: int
    seed: int


def check_block(data: dict[str, Any], problems: Problems) -> TuneBlock | None:
    """The ``tune:`` block, every value checked at its line; None without one."""
    raw = data.get("tune")
    if raw is None:
        return None
    path = ("tune",)
    if importlib.util.find_spec("optuna") is None:
        problems.add(path, "needs Optuna, which is not installed: pip install 'losszoo[tune]'")
    if not isinstance(raw, dict):
        problems.add(path, f"must be a mapping with trials: and optionally metric:, space:, prune:, got "
                     f"{yaml_repr(raw)}")
        return None
    for key in raw:
        if key not in TUNE_KEYS:
            from losszoo.recipe.overrides import hint

            problems.add((*path, key), f"unknown key{hint(key, TUNE_KEYS)} (known: {', '.join(TUNE_KEYS)})")
    trials = raw.get("trials")
    if not _int(trials) or not 1 <= trials <= MAX_TRIALS:
        problems.add((*path, "trials"), f"must be an integer in [1, {MAX_TRIALS}] (the budget of every loss), got "
                     f"{yaml_repr(trials)}")
    parallel, seed = raw.get("parallel", 1), raw.get("seed", 0)
    if not _int(parallel) or not 1 <= parallel <= 1024:
        problems.add((*path, "parallel"), f"must be an integer in [1, 1024], got {yaml_repr(parallel)}")
    if not _int(seed) or not 0 <= seed < 2**32:
        problems.add((*path, "seed"), f"must be an integer in [0, 2**32 - 1], got {yaml_repr(seed)}")
    prune = raw.get("prune", "none")
    if prune not in PRUNERS:
        problems.add((*path, "prune"), f"must be one of {', '.join(PRUNERS)}, got {yaml_repr(prune)}")
    metric = raw.get("metric")
    if metric is not None and (not isinstance(metric, str) or not metric.startswith("val.")):
        problems.add((*path, "metric"), f"must be val.<metric> (trials never see the test split), got "
                     f"{yaml_repr(metric)}")
    space = _space(raw.get("space"), (*path, "space"), problems)
    if problems.found:
        return None
    return TuneBlock(trials, metric, space, prune, parallel, seed)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _space(raw: Any, path: tuple, problems: Problems) -> dict[str, Tune] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        problems.add(path, f"must map dotted keys to {{low: ..., high: ...}}, got {yaml_repr(raw)}")
        return None
    space = {}
    for key, spec in raw.items():
        where = (*path, key)
        root = str(key).split(".")[0]
        if root not in ("loss", "train") or (root == "loss" and len(str(key).split(".")) != 2):
            problems.add(where, "searches loss.<hyperparameter> or a numeric train key such as train.optimizer.lr")
            continue
        if not isinstance(spec, dict) or set(spec) - {"low", "high", "log"} or not {"low", "high"} <= set(spec):
            problems.add(where, f"must be {{low: ..., high: ...}} (and optionally log: true), got {yaml_repr(spec)}")
            continue
        low, high, log = spec["low"], spec["high"], spec.get("log", False)
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
        if not numbers or not isinstance(log, bool):
            problems.add(where, "low and high must be numbers and log true or false")
        elif not low < high:
            problems.add((*where, "low"), f"must be below high = {high:g}, got {low:g}")
        elif log and low <= 0:
            problems.add((*where, "low"), f"a log range needs low > 0, got {low:g}")
        else:
            space[str(key)] = Tune(float(low), float(high), log)
    return space


def studies_of(block: TuneBlock, runs: list[Any], written: dict[str, set[str]], problems: Problems) -> list[Study]:
    """One study per loss configuration (the recipe's runs, their seeds aside); the space of each checked
    against that loss: a key it does not take, or a range outside its bounds, is named with the loss.
    Without ``space:``, hyperparameters the recipe sets for a loss (``written``) stay as set."""
    studies: dict[str, Study] = {}
    seeds: dict[str, list[int]] = {}
    for run in runs:
        base = {k: v for k, v in run.config.items() if k != "label"}
        key = configuration_id(base)
        seeds.setdefault(key, []).append(run.seed)
        if key in studies:
            continue
        loss = LOSSES.get(base["loss"]["name"])
        space = _study_space(block, loss, written.get(run.run_id, set()), problems)
        metric = (block.metric or base["select_by"]).rpartition(".")[2]
        if base["select_by"] == "last" and block.metric is None:
            problems.add(("tune",), "needs metric: val.<metric> when select_by is last")
            continue
        if metric not in base["metrics"]:
            problems.add(("tune", "metric"), f"must be a metric of the run ({', '.join(base['metrics'])}), got "
                         f"{metric!r}")
            continue
        trial_base = copy.deepcopy(base)
        trial_base["seed"] = min(seeds[key])
        studies[key] = Study(study_key(key, block, space, metric), run.label, run.position, trial_base, space,
                             block.trials, metric, bool(METRICS.get(metric).higher_is_better), block.prune,
                             block.parallel, block.seed)
    for key, study in studies.items():
        study.final_seeds = sorted(set(seeds[key]))
        study.base["seed"] = study.final_seeds[0]
    return list(studies.values())


def study_key(configuration: str, block: TuneBlock, space: list[Dimension], metric: str) -> str:
    """A study's identity: its loss configuration, and everything that decides which trials it proposes and
    which it stops (space, metric, pruning, proposals at a time, sampler seed). The budget is left out: more
    trials extend a study, its first trials reused. Trials and final runs carry it, so a setting changed is a
    new study, never an old one's runs taken as its own."""
    shape = [configuration, [asdict(d) for d in space], metric, block.prune, block.parallel, block.seed]
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:12]


def _study_space(block: TuneBlock, loss: Any, fixed: set[str], problems: Problems) -> list[Dimension]:
    params = {p.name: p for p in loss.params}
    if block.space is None:  # the loss's own tunable hyperparameters (bar those the recipe sets) and the lr
        chosen = {f"loss.{p.name}": p.tune for p in loss.params if p.tune is not None and p.name not in fixed}
        chosen["train.optimizer.lr"] = LR_TUNE
    else:
        chosen = dict(block.space)
    dims = []
    for key, tune in chosen.items():
        root, _, name = key.partition(".")
        if root == "loss":
            param = params.get(name)
            if param is None or param.type not in ("float", "int"):
                what = "does not take" if param is None else "takes a non-number as"
                problems.add(("tune", "space", key), f"loss {loss.name!r} {what} {name!r}; tune.space keys must be "
                             "numeric hyperparameters of every loss of the recipe")
                continue
            _within(param, tune, ("tune", "space", key), problems, loss.name)
            dims.append(Dimension(key, tune.low, tune.high, tune.log, param.type == "int"))
        else:
            dims.append(_train_dimension(key, tune, problems))
    return [d for d in dims if d is not None]


def _within(param: Param, tune: Tune, path: tuple, problems: Problems, loss: str) -> None:
    for end in (tune.low, tune.high):
        problem = param.problem(int(end) if param.type == "int" else end)
        if problem:
            problems.add(path, f"for loss {loss!r}: {param.name} {problem}")
            return


def _train_dimension(key: str, tune: Tune, problems: Problems) -> Dimension | None:
    """A numeric train key (lr, weight decay, momentum, epochs, batch size): both ends must validate."""
    parts = key.split(".")[1:]

    def valid(value: float) -> bool:
        raw: dict[str, Any] = {}
        node = raw
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
        try:
            Train.model_validate(raw)
        except Exception:
            return False
        return True

    for integer in (False, True):
        ends = (int(tune.low), int(tune.high)) if integer else (tune.low, tune.high)
        if all(valid(end) for end in ends):
            return Dimension(key, tune.low, tune.high, tune.log, integer)
    problems.add(("tune", "space", key), f"{tune.describe()} is not a range of valid {key} values (or no such "
                 "train key)")
    return None
