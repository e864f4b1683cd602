"""``sweep:``: a grid over any recipe value.

    sweep:
      train.optimizer.lr: [1.0e-3, 3.0e-3]
      model.hidden: [[32], [256, 256]]
      model: [mlp, {name: resnet, skip: false}]
      loss.margin: [0.2, 0.5]          # every loss of the recipe must take a margin

Each key is a dotted path into the recipe (``train.*``, ``model``,
``model.<hyperparameter>``, ``dataset.<hyperparameter>`` for every dataset,
``loss.<hyperparameter>`` for every loss) and maps to a non-empty list of
values. The grid is the product of the lists; every point is a variant of the
recipe, checked like a plain recipe, with each problem placed at the sweep
value that caused it. A list inside a loss entry (``{name: focal, gamma:
[0.5, 2.0]}``) sweeps that loss alone (``recipe.check.named``).
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import Any

from losszoo.recipe.check import DEFAULT_MODEL, Problems, one_or_many
from losszoo.recipe.overrides import hint
from losszoo.recipe.schema import Train
from losszoo.recipe.yaml_lines import Path as NodePath
from losszoo.registry import yaml_repr

ROOTS = ("train", "model", "dataset", "loss")
#: Runs a recipe may expand to: a typo in a sweep should not queue a year of training.
MAX_POINTS = 10_000


@dataclass
class Axis:
    key: str  # as written under sweep:
    values: list[Any]


def axes_of(data: dict[str, Any], problems: Problems) -> list[Axis]:
    """The sweep's axes, each key checked for where it points; values are checked per variant."""
    sweep = data.get("sweep")
    if sweep is None:
        return []
    if not isinstance(sweep, dict) or not sweep:
        problems.add(("sweep",), f"must be a mapping of dotted keys to lists of values, got {yaml_repr(sweep)}")
        return []
    axes = []
    for key, values in sweep.items():
        path = ("sweep", key)
        parts = str(key).split(".")
        if parts[0] not in ROOTS or (parts[0] in ("dataset", "loss") and len(parts) != 2) or (
                parts[0] == "model" and len(parts) > 2) or (parts[0] == "train" and len(parts) == 1):
            problems.add(path, "sweeps train.<key>, model, model.<key>, dataset.<key> or loss.<key>"
                         + hint(key, _known()))
            continue
        if parts[0] == "train" and not _train_key(parts[1:]):
            problems.add(path, f"no such train key{hint(key, _known())}")
            continue
        if not isinstance(values, list) or not values:
            problems.add(path, f"must be a non-empty list of values to try, got {yaml_repr(values)}")
            continue
        axes.append(Axis(str(key), values))
    points = 1
    for axis in axes:
        points *= len(axis.values)
    if points > MAX_POINTS:
        problems.add(("sweep",), f"is a grid of {points:,} points; at most {MAX_POINTS:,}")
        return []
    return axes


def _train_key(parts: list[str]) -> bool:
    model: Any = Train
    for part in parts:
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return False
        model = fields[part].annotation
    return True


def _known() -> list[str]:
    return ["model", *(f"train.{k}" for k in Train.model_fields), "train.optimizer.lr",
            "train.optimizer.weight_decay"]


def points(axes: list[Axis]) -> list[tuple[int, ...]]:
    """Every grid point as the index of its value on each axis, in order."""
    return list(itertools.product(*(range(len(a.values)) for a in axes)))


def variant(data: dict[str, Any], axes: list[Axis], point: tuple[int, ...], problems: Problems) -> dict[str, Any]:
    """``data`` with the point's values set; each set path remembered in ``problems.moved`` (where to blame)."""
    out = copy.deepcopy(data)
    out.pop("sweep", None)
    problems.moved = {k: v for k, v in problems.moved.items() if v == "--set"}
    for axis, index in zip(axes, point, strict=True):
        value = copy.deepcopy(axis.values[index])
        origin = ("sweep", axis.key, index)
        root, *rest = axis.key.split(".")
        if root in ("train", "model"):
            if root == "model" and rest:
                out.setdefault("model", DEFAULT_MODEL)  # whose hyperparameter this sweeps
            for path in _set(out, (root, *rest), value):
                problems.moved[path] = origin
        else:
            plural = "datasets" if root == "dataset" else "losses"
            for path, _ in one_or_many(out, root, plural, Problems("", {})):
                for written in _set(out, (*path, *rest), value):
                    problems.moved[written] = origin
    return out


def _set(data: dict[str, Any], path: NodePath, value: Any) -> list[NodePath]:
    """Set ``path`` (turning a bare name on the way into ``{name: ...}``); returns the paths written, none
    where the recipe holds no mapping to set it in (``train: []``: its own check says what is wrong)."""
    node: Any = data
    for part in path[:-1]:
        if isinstance(node, dict):
            child = node.setdefault(part, {})
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            child = node[part]
        else:
            return []
        if isinstance(child, str):
            child = node[part] = {"name": child}
        if not isinstance(child, (dict, list)):
            return []
        node = child
    if isinstance(node, dict) or (isinstance(node, list) and isinstance(path[-1], int) and 0 <= path[-1] < len(node)):
        node[path[-1]] = value
        return [path]
    return []
