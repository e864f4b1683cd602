"""Check one variant of a recipe against the registry and resolve it into run configs.

Every problem is collected, not just the first, and placed at the file line
(or ``--set``, or the sweep value) it came from. Rules declared with an entry
(``losszoo.registry.Rule``) are evaluated here with what the recipe knows
before any run: a dataset's :class:`~losszoo.registry.Facts` (task, sizes,
classes), the model's embedding size. Nothing here imports torch, except to
ask whether a device the recipe names exists.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from losszoo.errors import DataError, LosszooError, RecipeError, UnknownNameError
from losszoo.inputs import INPUT_KINDS
from losszoo.recipe.overrides import hint
from losszoo.recipe.schema import Train
from losszoo.recipe.yaml_lines import Path as NodePath
from losszoo.recipe.yaml_lines import dotted
from losszoo.registry import (
    METRICS,
    MODELS,
    DatasetEntry,
    Entry,
    Facts,
    LossEntry,
    Registry,
    yaml_repr,
)

MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit
#: Runs one recipe may expand to (datasets x loss variants x seeds x sweep points), counted before any is
#: built: a long list in the wrong place should not queue a year of training, nor take minutes to list.
MAX_RUNS = 10_000
#: The model of a recipe that names none (``--set model.hidden=[64]`` and ``sweep: model.hidden`` change it).
DEFAULT_MODEL = "mlp"


class Problems:
    """Problems found so far, each placed at a file line, at ``--set`` or at the sweep value it came from."""

    def __init__(self, source: str, positions: dict[NodePath, int]):
        self.source = source
        self.positions = positions
        self.moved: dict[NodePath, NodePath | str] = {}  # recipe path -> "--set" or the sweep value's path
        self.found: list[str] = []
        self.warnings: list[str] = []  # met while checking (a corrupt image skipped): printed before training

    def line_of(self, path: NodePath) -> str:
        for end in range(len(path), -1, -1):
            if path[:end] in self.positions:
                return f"{self.source}:{self.positions[path[:end]]}"
        return self.source

    def where(self, path: NodePath) -> tuple[str, NodePath]:
        for end in range(len(path), -1, -1):
            origin = self.moved.get(path[:end])
            if origin == "--set":
                return "--set", path
            if origin is not None:
                return self.line_of(origin), (*origin, *path[end:])
        return self.line_of(path), path

    def add(self, path: NodePath, message: str) -> None:
        place, shown = self.where(path)
        problem = f"{place} {dotted(shown) or '(recipe)'}: {message}"
        if problem not in self.found:
            self.found.append(problem)

    def raise_if_any(self) -> None:
        if self.found:
            raise RecipeError(self.found)


@dataclass
class Named:
    """A registry entry with its hyperparameters as written (``given``) and resolved."""

    entry: Entry
    params: dict[str, Any]
    given: dict[str, Any]
    path: NodePath
    places: dict[str, NodePath] = field(default_factory=dict)  # where each given value was written (a sweep's item)

    def place(self, key: str) -> NodePath:
        """Where a problem with ``key`` is reported: its value as written, else the entry itself."""
        return self.places.get(key, (*self.path, key) if self.given else self.path)


def named(value: Any, path: NodePath, registry: Registry, problems: Problems,
          sweepable: bool = False) -> list[Named]:
    """``name`` or ``{name: ..., hyperparameter: ...}`` checked against ``registry``; with ``sweepable``, a
    list where the hyperparameter takes one value is a sweep, and each of its values is one variant."""
    if isinstance(value, str):
        name, given, name_path = value, {}, path
    elif isinstance(value, dict):
        if "name" not in value:
            problems.add(path, f"needs `name:`, the {registry.kind} to use (`losszoo list {registry.plural}`)")
            return []
        name, name_path = value["name"], (*path, "name")
        given = {k: v for k, v in value.items() if k != "name"}
    else:
        problems.add(path, f"must be a {registry.kind} name or a mapping with `name:`, got {yaml_repr(value)}")
        return []
    try:
        entry = registry.get(name)
    except UnknownNameError as error:
        problems.add(name_path, str(error))
        return []
    axes = []
    for key, written in given.items():
        param = next((p for p in entry.params if p.name == key), None)
        if sweepable and param is not None and _is_sweep(param, written):
            if not written:
                problems.add((*path, key), "an empty list sweeps nothing; give at least one value")
                return []
            axes.append([(key, v, (*path, key, i)) for i, v in enumerate(written)])
        else:
            axes.append([(key, written, (*path, key))])
    combinations = math.prod(len(axis) for axis in axes)
    if combinations > MAX_RUNS:
        problems.add(path, f"its lists sweep {combinations:,} combinations; at most {MAX_RUNS:,}")
        return []
    variants = []
    for choice in itertools.product(*axes):
        values = {key: v for key, v, _ in choice}
        found = entry.problems(values)
        for key, message in found:
            problems.add(next((p for k, _, p in choice if k == key), (*path, key)), message)
        if not found:
            variants.append(Named(entry, entry.resolve(values), values, path, {key: p for key, _, p in choice}))
    return variants


def _is_sweep(param: Any, written: Any) -> bool:
    """A list is a sweep of a hyperparameter when the list itself is not a value of it."""
    return isinstance(written, list) and param.problem(written) is not None and (
        not written or all(param.problem(v) is None or not isinstance(v, list) for v in written))


def one_or_many(data: dict[str, Any], one: str, many: str, problems: Problems) -> list[tuple[NodePath, Any]]:
    if one in data and many in data:
        problems.add((many,), f"give either `{one}:` or `{many}:`, not both")
        return []
    if many in data:
        items = data[many]
        if not isinstance(items, list) or not items:
            problems.add((many,), f"must be a non-empty list, got {yaml_repr(items)}")
            return []
        return [((many, i), item) for i, item in enumerate(items)]
    if one in data:
        return [((one,), data[one])]
    return []


# --- train: ---------------------------------------------------------------------------------------


def check_train(raw: Any, problems: Problems) -> dict[str, Any] | None:
    try:
        train = Train.model_validate(raw if raw is not None else {})
    except ValidationError as error:
        _pydantic_problems(error, ("train",), problems)
        return None
    from losszoo.training.trackers import missing

    for i, name in enumerate(train.log):
        if missing(name):
            problems.add(("train", "log", i), missing(name))
    device = train.device
    if device.startswith(("cuda", "mps")):
        problem = _missing_device(device)
        if problem:
            problems.add(("train", "device"), problem)
    return train.model_dump()


def _missing_device(device: str) -> str | None:
    """Why ``device`` does not exist here, or None; imports torch only for a recipe that names a device."""
    import torch

    if device.startswith("mps"):
        available = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
        return None if available else "mps is not available here; use auto or cpu"
    if not torch.cuda.is_available():
        why = "is built without CUDA" if torch.version.cuda is None else "sees no GPU"
        return f"{device} is not available: this torch {torch.__version__} {why}; use auto or cpu"
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        return f"{device} does not exist: {torch.cuda.device_count()} GPU(s) visible (cuda:0 ...)"
    return None


def _pydantic_problems(error: ValidationError, base: NodePath, problems: Problems) -> None:
    wanted = {
        "int_type": "an integer", "float_type": "a number", "string_type": "a string", "bool_type": "true or false",
        "model_type": "a mapping", "model_attributes_type": "a mapping", "dict_type": "a mapping",
        "list_type": "a list", "finite_number": "a finite number",
    }
    bounds = {"greater_than": "> {gt}", "greater_than_equal": ">= {ge}", "less_than": "< {lt}",
              "less_than_equal": "<= {le}"}
    for item in error.errors():
        loc = tuple(p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        path = (*base, *loc)
        kind, value, ctx = item["type"], item.get("input"), item.get("ctx") or {}
        if kind == "extra_forbidden":
            siblings = _model_fields(loc[:-1])
            message = f"unknown key{hint(loc[-1], siblings)} (known: {', '.join(siblings)})"
        elif kind == "literal_error":
            choices = re.findall(r"'([^']*)'", ctx.get("expected", ""))
            message = f"must be one of {', '.join(choices)}, got {yaml_repr(value)}{hint(value, choices)}"
        elif kind in wanted:
            message = f"must be {wanted[kind]}, got {yaml_repr(value)}"
        elif kind in bounds:
            message = f"must be {bounds[kind].format(**ctx)}, got {yaml_repr(value)}"
        else:
            message = item["msg"][0].lower() + item["msg"][1:]
            message = message.removeprefix("value error, ")
        problems.add(path, message)


def _model_fields(loc: NodePath) -> list[str]:
    model: Any = Train
    for part in loc:
        if not isinstance(part, str) or part not in getattr(model, "model_fields", {}):
            return []
        annotation = model.model_fields[part].annotation
        model = getattr(annotation, "model_fields", None) and annotation
        if model is None:
            return []
    return list(model.model_fields)


# --- datasets: what they are, read before any run -------------------------------------------------


@dataclass
class DatasetCheck:
    named: Named
    facts: Facts | None
    inputs: dict[str, str]  # content hashes of the files it reads, by recipe key


def check_dataset(d: Named, base_dir: Path, problems: Problems, cache: dict[str, Any],
                  seeds: list[int] | tuple[int, ...] = (0,)) -> DatasetCheck:
    """A dataset's facts (declared, or read from the user's file or a plugin's function, once per
    configuration) and its rules evaluated with them; a user's data is also split for every seed."""
    entry: DatasetEntry = d.entry  # type: ignore[assignment]
    facts = entry.facts_of(d.params)
    inputs: dict[str, str] = {}
    source = None
    if entry.facts is None:  # a user's file or a plugin: read it now, so its mistakes are recipe mistakes
        key = json.dumps([entry.name, d.params, str(base_dir)], sort_keys=True, default=str)
        if key not in cache:
            cache[key] = _read_dataset(entry, d.params, base_dir)
        outcome = cache[key]
        if isinstance(outcome, DataError):
            problems.add((*d.path, outcome.key) if d.given else d.path, str(outcome))
            return DatasetCheck(d, None, {})
        facts, inputs, warnings, source = outcome
        problems.warnings.extend(w for w in warnings if w not in problems.warnings)
    found = entry.rule_problems(d.params, facts.as_context() if facts else None)
    for key, message in found:
        problems.add((*d.path, key) if d.given or key != "name" else d.path, message)
    if source is not None and not found:
        key = json.dumps(["split", entry.name, d.params, str(base_dir), list(seeds)], sort_keys=True, default=str)
        if key not in cache:  # once per configuration, not per sweep point
            cache[key] = _split_problem(d, facts, source, seeds)
        if cache[key] is not None:
            problems.add((*d.path, cache[key][0]), cache[key][1])
    return DatasetCheck(d, facts, inputs)


def _split_problem(d: Named, facts: Facts, source: Any, seeds: list[int] | tuple[int, ...]) -> tuple[str, str] | None:
    """The user's data split as each seed's run will split it (``load_data``), so that a class too rare for
    one seed's stratified split is a recipe error, not a run failing half-way through the grid."""
    from losszoo.data.splits import split_problem

    classify = facts.task == "classification"
    if classify and d.params.get("open_set") and source.split is not None:
        return "open_set", ("open_set chooses its own test split, and this data brings one (train/ val/ test/); "
                            "remove open_set or those folders")
    error = split_problem(source.y, source.split, d.params, list(seeds), classify)
    return None if error is None else (error.key, f"{error}: change {error.key}, or add samples of the rarest class")


def source_facts(source: Any) -> Facts:
    """The facts of data a user's file or a plugin gave (a ``losszoo.Dataset``)."""
    import numpy as np

    y = np.asarray(source.y)
    classes = smallest = None
    if source.task == "classification" and len(y):
        counts = np.bincount(y.astype(np.int64))
        counts = counts[counts > 0]
        classes, smallest = len(counts), int(counts.min())
    elif source.task == "segmentation":
        classes = len(source.class_names) if source.class_names else int(y.max()) + 1 if y.size else 0
    elif source.task == "multilabel":
        classes = int(y.shape[1]) if y.ndim == 2 else 1
    x = np.asarray(source.x)
    return Facts(source.task, len(y), classes, smallest, int(np.prod(x.shape[1:])) if x.ndim > 1 else 1,
                 tuple(source.image_shape) if source.image_shape else None)


def _read_dataset(entry: DatasetEntry, params: dict[str, Any], base_dir: Path) -> Any:
    from losszoo.data.sources import check_source

    try:
        source = check_source(entry.load()(**params, base_dir=base_dir), entry.name)
    except DataError as error:
        return error
    except LosszooError as error:
        return DataError(str(error), "name")
    except Exception as error:  # a plugin's own bug: say where, as a recipe problem
        return DataError(f"dataset {entry.name!r} failed: {type(error).__name__}: {error}", "name")
    inputs = {}
    path = params.get("path")
    if path:
        from losszoo.data.fingerprint import fingerprint

        file = Path(path) if Path(path).is_absolute() else base_dir / path
        inputs["dataset.path"] = fingerprint(file)
    return source_facts(source), inputs, list(getattr(source, "warnings", None) or []), source


# --- pairing: the dataset, the model and each loss fit together ---------------------------------


def task_of(d: Named) -> str:
    return d.entry.task_of(d.params)  # type: ignore[attr-defined]


def check_pairing(dataset: DatasetCheck, model: Named | None, losses: list[Named], problems: Problems,
                  train: dict[str, Any] | None = None) -> None:
    d = dataset.named
    task = dataset.facts.task if dataset.facts else task_of(d)
    params = d.params
    if task != "classification" and params.get("label_noise", 0) + (1 - params.get("imbalance", 1)) > 0:
        problems.add(d.path, f"label_noise and imbalance need a classification task, this is {task}")
    if task == "classification" and params.get("outliers", 0) > 0:
        problems.add(d.path, "outliers need a regression task; for classification use label_noise")
    if task != "classification" and params.get("open_set"):
        problems.add(d.path, f"open_set needs a classification task (it holds classes out), this is {task}")
    context = {"num_classes": dataset.facts.classes if dataset.facts else None,
               "embedding_dim": model.params.get("embedding_dim", 64) if model else None}
    for loss in losses:
        entry: LossEntry = loss.entry  # type: ignore[assignment]
        kind = INPUT_KINDS[entry.input]
        if not kind.serves(task):
            problems.add(loss.path, f"loss {entry.name!r} takes {kind.doc} and cannot serve dataset {d.entry.name!r}, "
                         f"a {task} task; choose a {task} loss (`losszoo list losses`)")
            continue
        for key, message in entry.rule_problems(loss.params, context):
            problems.add(loss.place(key), message)
    if model is None:
        return
    known = {**(dataset.facts.as_context() if dataset.facts else {}), "batch_size": train and train["batch_size"]}
    for key, message in model.entry.rule_problems(model.params, known):  # its size for this data; batch norm
        problems.add(model.place(key), message)
    if task not in model.entry.tasks:  # type: ignore[attr-defined]
        fits = [m.name for m in MODELS.entries() if task in m.tasks]  # type: ignore[attr-defined]
        problems.add(model.path, f"model {model.entry.name!r} serves {' and '.join(model.entry.tasks)}; dataset "
                     f"{d.entry.name!r} is {task}: use {' or '.join(fits)}")
    elif model.entry.input == "images" and dataset.facts is not None and dataset.facts.image_shape is None:
        problems.add(model.path, f"model {model.entry.name!r} needs images; dataset {d.entry.name!r} is a table of "
                     "features: use mlp or linear")


# --- metrics --------------------------------------------------------------------------------------


def default_metrics(task: str, loss: LossEntry) -> list[str]:
    """The metrics a run reports when the recipe names none: the catalogue's defaults its task and
    loss can feed, in catalogue order."""
    views = {INPUT_KINDS[loss.input].view_for(task)} | ({"logits"} if loss.classifies else set())
    return [m.name for m in METRICS.entries(order="catalogue")
            if m.default and m.task == task and m.input in views]  # type: ignore[attr-defined]


def check_metrics(data: dict[str, Any], problems: Problems) -> list[str] | None:
    names = data.get("metrics")
    if names is None:
        return None
    if not isinstance(names, list) or not names or not all(isinstance(m, str) for m in names):
        problems.add(("metrics",), f"must be a non-empty list of metric names, got {yaml_repr(names)}")
        return None
    for i, name in enumerate(names):
        if name not in METRICS:
            try:
                METRICS.get(name)
            except UnknownNameError as error:
                problems.add(("metrics", i), str(error))
    if len(set(names)) != len(names):
        problems.add(("metrics",), "lists a metric twice")
    return names


def check_seeds(data: dict[str, Any], problems: Problems) -> list[int]:
    seeds = []
    for path, seed in one_or_many(data, "seed", "seeds", problems) or [((), 0)]:
        if isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= MAX_SEED:
            seeds.append(seed)
        else:
            problems.add(path, f"must be an integer in [0, 2**32 - 1], got {yaml_repr(seed)}")
    if len(set(seeds)) != len(seeds):
        problems.add(("seeds",), "lists a seed twice")
    return seeds


def run_metrics(metric_names: list[str] | None, select_by: Any, task: str, loss: LossEntry, path: NodePath,
                problems: Problems) -> tuple[list[str], str]:
    """The run's metrics and the val metric (or ``last``) that picks its reported epoch."""
    metrics = list(metric_names) if metric_names else default_metrics(task, loss)
    for m in (METRICS.get(n) for n in metrics if n in METRICS):
        if m.task and m.task != task:  # type: ignore[attr-defined]
            problems.add(("metrics",), f"metric {m.name!r} measures {m.task}; this dataset is {task}")  # type: ignore
    if not metrics:
        problems.add(path, f"no metric can measure loss {loss.name!r} on a {task} task; name some in `metrics:`")
        return metrics, "last"
    chosen = "val." + metrics[0] if select_by is None else select_by
    if chosen == "last":
        return metrics, chosen
    split, _, metric = str(chosen).rpartition(".")
    if not isinstance(select_by, (str, type(None))) or split not in ("", "val") or metric not in metrics:
        problems.add(("select_by",), f"must be `last` or val.<metric> for a metric of the run "
                     f"({', '.join(metrics)}), got {yaml_repr(select_by)}")
    return metrics, "val." + metric
