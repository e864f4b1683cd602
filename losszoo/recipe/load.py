"""Read a recipe, check every key against the registry, expand it into runs.

Every problem is collected, not just the first, and reported as
``recipe.yaml:7 losses[2].margin: must be > 0, got -1`` with a "did you mean"
for misspelt names and keys. Nothing here imports torch.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from losszoo.errors import DataError, LosszooError, RecipeError, UnknownNameError
from losszoo.recipe.schema import Train
from losszoo.recipe.yaml_lines import Path as NodePath
from losszoo.recipe.yaml_lines import _Loader, dotted, load_yaml
from losszoo.registry import DATASETS, INPUTS, LOSSES, METRICS, MODELS, TASKS_OF_INPUT, Entry, Registry, yaml_repr

TOP_KEYS = (
    "experiment", "dataset", "datasets", "model", "loss", "losses", "seed", "seeds",
    "train", "metrics", "select_by", "plugins",
)
#: Keys the run hash ignores: where a run trains does not change what it is.
UNHASHED_TRAIN_KEYS = ("device", "threads")


@dataclass(frozen=True)
class RunSpec:
    """One run: a dataset, a model, a loss and a seed, fully resolved."""

    run_id: str
    experiment: str
    label: str
    config: dict[str, Any]
    position: int = 0  # the loss's place in the recipe: tables list losses in recipe order

    @property
    def seed(self) -> int:
        return self.config["seed"]


@dataclass
class Recipe:
    experiment: str
    source: str
    base_dir: Path
    runs: list[RunSpec]
    plugins: list[str] = field(default_factory=list)


class _Problems:
    """Problems found so far, each placed at a file line or at ``--set``."""

    def __init__(self, source: str, positions: dict[NodePath, int], overridden: set[NodePath]):
        self.source = source
        self.positions = positions
        self.overridden = overridden
        self.found: list[str] = []

    def where(self, path: NodePath) -> str:
        for end in range(len(path), -1, -1):
            if path[:end] in self.overridden:
                return "--set"
            if path[:end] in self.positions:
                return f"{self.source}:{self.positions[path[:end]]}"
        return self.source

    def add(self, path: NodePath, message: str) -> None:
        problem = f"{self.where(path)} {dotted(path) or '(recipe)'}: {message}"
        if problem not in self.found:
            self.found.append(problem)

    def raise_if_any(self) -> None:
        if self.found:
            raise RecipeError(self.found)


# --- reading -------------------------------------------------------------------------------------


def _read(recipe: str | Path | dict[str, Any]) -> tuple[Any, dict[NodePath, int], str, Path]:
    if isinstance(recipe, dict):
        return recipe, {}, "<recipe>", Path.cwd()
    path = Path(recipe)
    if not path.is_file():
        close = difflib.get_close_matches(path.name, [p.name for p in path.parent.glob("*.y*ml")], n=1)
        hint = f"; did you mean {str(path.parent / close[0])!r}?" if close else ""
        raise RecipeError([f"{path}: no such recipe file{hint}"])
    try:
        data, positions = load_yaml(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise RecipeError([f"{path}{line}: malformed YAML: {problem}"]) from None
    except UnicodeDecodeError:
        raise RecipeError([f"{path}: not a text file"]) from None
    return data, positions, str(path), path.parent.resolve()


_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _parse_override(text: str) -> tuple[NodePath, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise RecipeError([f"--set {text}: expected key=value, e.g. --set train.epochs=5"])
    parts: list[Any] = []
    for name, index in _PART.findall(key.strip()):
        parts.append(int(index) if index else name)
    if "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".") != key.strip():
        raise RecipeError([f"--set {key}: not a dotted key such as train.epochs or losses[1].gamma"])
    try:
        value = yaml.load(raw, Loader=_Loader) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return tuple(parts), value


def _apply_override(data: dict[str, Any], path: NodePath, value: Any, text: str) -> None:
    node: Any = data
    for depth, part in enumerate(path[:-1]):
        nxt = path[depth + 1]
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise RecipeError([f"--set {text}: {dotted(path[: depth + 1])} does not exist"])
            if isinstance(node[part], str) and not isinstance(nxt, int):
                node[part] = {"name": node[part]}  # `- focal` becomes `- {name: focal}`
            node = node[part]
        else:
            if not isinstance(node, dict):
                raise RecipeError([f"--set {text}: {dotted(path[:depth])} is not a mapping"])
            if part not in node:
                if part not in TOP_KEYS and depth == 0:
                    raise RecipeError([f"--set {text}: unknown key {part!r}{_hint(part, TOP_KEYS)}"])
                node[part] = [] if isinstance(nxt, int) else {}
            elif isinstance(node[part], str) and not isinstance(nxt, int):
                node[part] = {"name": node[part]}
            node = node[part]
    last = path[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise RecipeError([f"--set {text}: {dotted(path)} does not exist"])
    elif not isinstance(node, dict):
        raise RecipeError([f"--set {text}: {dotted(path[:-1])} is not a mapping"])
    elif len(path) == 1 and last not in TOP_KEYS:
        raise RecipeError([f"--set {text}: unknown key {last!r}{_hint(last, TOP_KEYS)}"])
    node[last] = value


def _hint(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


# --- checking ------------------------------------------------------------------------------------


@dataclass
class _Named:
    entry: Entry
    params: dict[str, Any]  # resolved, defaults filled
    given: dict[str, Any]  # as written, for labels


def _named(value: Any, path: NodePath, registry: Registry, problems: _Problems) -> _Named | None:
    """A `name` or `{name: ..., hyperparameter: ...}` checked against ``registry``."""
    if isinstance(value, str):
        name, given, name_path = value, {}, path
    elif isinstance(value, dict):
        if "name" not in value:
            problems.add(path, f"needs `name:`, the {registry.kind} to use (`losszoo list {registry.plural}`)")
            return None
        name, name_path = value["name"], (*path, "name")
        given = {k: v for k, v in value.items() if k != "name"}
    else:
        problems.add(path, f"must be a {registry.kind} name or a mapping with `name:`, got {yaml_repr(value)}")
        return None
    try:
        entry = registry.get(name)
    except UnknownNameError as error:
        problems.add(name_path, str(error))
        return None
    found = entry.problems(given)
    for key, message in found:
        problems.add((*path, key), message)
    return None if found else _Named(entry, entry.resolve(given), given)


def _one_or_many(data: dict[str, Any], one: str, many: str, problems: _Problems) -> list[tuple[NodePath, Any]]:
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


def _pydantic_problems(error: ValidationError, base: NodePath, problems: _Problems) -> None:
    wanted = {
        "int_type": "an integer", "float_type": "a number", "string_type": "a string", "bool_type": "true or false",
        "model_type": "a mapping", "model_attributes_type": "a mapping", "dict_type": "a mapping",
    }
    bounds = {"greater_than": "> {gt}", "greater_than_equal": ">= {ge}", "less_than": "< {lt}",
              "less_than_equal": "<= {le}"}
    for item in error.errors():
        loc = tuple(p for p in item["loc"] if p != "function-before[_name_alone(), Optimizer]")
        path = (*base, *loc)
        kind, value, ctx = item["type"], item.get("input"), item.get("ctx") or {}
        if kind == "extra_forbidden":
            siblings = _model_fields(loc[:-1])
            message = f"unknown key{_hint(loc[-1], siblings)} (known: {', '.join(siblings)})"
        elif kind == "literal_error":
            choices = re.findall(r"'([^']*)'", ctx.get("expected", ""))
            message = f"must be one of {', '.join(choices)}, got {yaml_repr(value)}{_hint(value, choices)}"
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
        annotation = model.model_fields[part].annotation
        model = getattr(annotation, "model_fields", None) and annotation
        if model is None:
            return []
    return list(model.model_fields)


def default_metrics(task: str, loss: Entry) -> list[str]:
    """The metrics a run reports when the recipe names none."""
    if task == "regression":
        return ["mae", "rmse", "r2"]
    if task == "segmentation":
        return ["dice", "miou", "pixel_accuracy"]
    if loss.input == "embeddings":
        retrieval = ["precision_at_1", "r_precision", "map_at_r"]
        return retrieval if loss.family == "metric_learning" else ["accuracy", "macro_f1", "nll", "ece", *retrieval]
    return ["accuracy", "macro_f1", "nll", "ece"]


def _metric_entries(names: list[str]) -> list[Entry]:
    return [METRICS.get(n) for n in names if n in METRICS]


def _default_select_by(metrics: list[str]) -> str:
    return "val." + metrics[0] if metrics[0] != "mae" else "val.rmse"


def _label(named: _Named) -> str:
    if not named.given:
        return named.entry.name
    shorts = {p.name: p.short or p.name for p in named.entry.params}

    def text(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:g}"
        if isinstance(value, (list, tuple)):
            return "[" + ",".join(text(v) for v in value) + "]"
        return yaml_repr(value).strip("'")

    inner = ",".join(f"{shorts[k]}={text(v)}" for k, v in named.given.items())
    return f"{named.entry.name}({inner})"


def config_hash(config: dict[str, Any]) -> str:
    """A short hash of what a run computes (the device it runs on excluded)."""
    hashed = dict(config)
    hashed["train"] = {k: v for k, v in config["train"].items() if k not in UNHASHED_TRAIN_KEYS}
    hashed.pop("experiment", None)
    hashed.pop("plugins", None)
    text = json.dumps(hashed, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def load_recipe(recipe: str | Path | dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Validate ``recipe`` (a path or a dict) with ``--set`` overrides and expand its runs."""
    data, positions, source, base_dir = _read(recipe)
    if data is None:
        raise RecipeError([f"{source}: the recipe is empty; it needs at least `dataset:` and `loss:`"])
    if not isinstance(data, dict):
        raise RecipeError([f"{source}:1 (recipe): must be a mapping of keys such as dataset: and losses:"])
    data = json.loads(json.dumps(data))  # a private copy that --set may change
    overridden: set[NodePath] = set()
    for text in overrides:
        path, value = _parse_override(text)
        _apply_override(data, path, value, text)
        overridden.add(path)
    problems = _Problems(source, positions, overridden)

    for key in data:
        if key not in TOP_KEYS:
            problems.add((key,), f"unknown key{_hint(key, TOP_KEYS)} (known: {', '.join(TOP_KEYS)})")

    plugins = data.get("plugins", [])
    if plugins:
        from losszoo.plugins import load_plugins

        try:
            load_plugins(plugins, base_dir)
        except LosszooError as error:
            problems.add(("plugins",), str(error))
            problems.raise_if_any()

    experiment = data.get("experiment", Path(source).stem if source != "<recipe>" else "experiment")
    if not isinstance(experiment, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", experiment):
        problems.add(("experiment",),
                     f"must be a name of letters, digits, '.', '_' or '-', got {yaml_repr(experiment)}")

    datasets = [(p, _named(v, p, DATASETS, problems)) for p, v in _one_or_many(data, "dataset", "datasets", problems)]
    losses = [(p, _named(v, p, LOSSES, problems)) for p, v in _one_or_many(data, "loss", "losses", problems)]
    if not datasets and "dataset" not in data and "datasets" not in data:
        problems.add((), "needs `dataset:` (e.g. `dataset: digits`; `losszoo list datasets` shows them)")
    if not losses and "loss" not in data and "losses" not in data:
        problems.add((), "needs `loss:` or `losses:` (e.g. `losses: [cross_entropy, focal]`)")
    model = _named(data.get("model", "mlp"), ("model",), MODELS, problems)

    seeds_given = _one_or_many(data, "seed", "seeds", problems)
    seeds = []
    for path, seed in seeds_given or [((), 0)]:
        if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0:
            seeds.append(seed)
        else:
            problems.add(path, f"must be a non-negative integer, got {yaml_repr(seed)}")
    if len(set(seeds)) != len(seeds):
        problems.add(("seeds",), "lists a seed twice")

    train = None
    try:
        train = Train.model_validate(data.get("train") or {})
    except ValidationError as error:
        _pydantic_problems(error, ("train",), problems)

    metric_names = data.get("metrics")
    if metric_names is not None:
        if not isinstance(metric_names, list) or not all(isinstance(m, str) for m in metric_names):
            problems.add(("metrics",), f"must be a list of metric names, got {yaml_repr(metric_names)}")
            metric_names = None
        else:
            for i, name in enumerate(metric_names):
                if name not in METRICS:
                    problems.add(("metrics", i), _unknown(METRICS, name))
    select_by = data.get("select_by")
    if select_by is not None and not isinstance(select_by, str):
        problems.add(("select_by",), f"must be a metric such as val.macro_f1, got {yaml_repr(select_by)}")
        select_by = None

    for d_path, d in datasets:
        if d is not None:
            _check_pairing(d_path, d, losses, model, data, base_dir, problems)
    problems.raise_if_any()

    resolved_plugins = [str((base_dir / p).resolve()) if p.endswith(".py") else p for p in plugins]
    runs = []
    for (_, d), (position, (_, loss)), seed in itertools.product(datasets, enumerate(losses), seeds):
        task = _task(d)
        metrics = list(metric_names) if metric_names else default_metrics(task, loss.entry)
        for m in _metric_entries(metrics):
            if m.task and m.task != task:
                problems.add(("metrics",), f"metric {m.name!r} measures {m.task}; dataset {d.entry.name!r} is {task}")
        chosen = select_by or _default_select_by(metrics)
        split, _, metric = chosen.rpartition(".")
        if split not in ("", "val") or metric not in metrics:
            problems.add(("select_by",), f"must be val.<metric> for a metric of the run ({', '.join(metrics)}), "
                         f"got {chosen!r}")
        dataset_params = dict(d.params)
        if "path" in dataset_params and dataset_params["path"]:
            dataset_params["path"] = str((base_dir / dataset_params["path"]).resolve())
        config = {
            "experiment": experiment,
            "dataset": {"name": d.entry.name, **dataset_params},
            "model": {"name": model.entry.name, **model.params},
            "loss": {"name": loss.entry.name, **loss.params},
            "seed": seed,
            "train": train.model_dump(),
            "metrics": metrics,
            "select_by": "val." + metric,
            "plugins": resolved_plugins,  # so `compare` and `landscape` can load them again
        }
        label = _label(loss)
        run = RunSpec(config_hash(config), experiment, label, {**config, "label": label}, position)
        twin = next((r for r in runs if r.run_id == run.run_id), None)
        if twin is not None:
            problems.add(("losses",), f"{label} and {twin.label} are the same run once defaults are filled in; "
                         "remove one")
        runs.append(run)
    problems.raise_if_any()
    return Recipe(experiment, source, base_dir, runs, list(plugins))


def _task(dataset: _Named) -> str:
    """The task a dataset fixes: from its metadata, or from `task:` for a user's file."""
    return dataset.params["task"] if dataset.entry.task == "from file" else dataset.entry.task


def _check_pairing(d_path: NodePath, d: _Named, losses: list[tuple[NodePath, _Named | None]], model: _Named | None,
                   data: dict[str, Any], base_dir: Path, problems: _Problems) -> None:
    """Cross-field rules: the user's file reads, the modifiers fit the task, every loss serves the
    dataset's task, and the model fits the data."""
    task = _task(d)
    if d.entry.task == "from file":  # the user's file is read now: its mistakes are recipe mistakes
        try:
            d.entry.load()(**d.params, base_dir=base_dir)
        except DataError as error:
            written = data[d_path[0]] if len(d_path) == 1 else data[d_path[0]][d_path[1]]
            problems.add((*d_path, error.key) if isinstance(written, dict) else d_path, str(error))
    if task != "classification" and d.params.get("label_noise", 0) + (1 - d.params.get("imbalance", 1)) > 0:
        problems.add(d_path, f"label_noise and imbalance need a classification task, this is {task}")
    if task == "classification" and d.params.get("outliers", 0) > 0:
        problems.add(d_path, "outliers need a regression task; for classification use label_noise")
    for l_path, loss in losses:
        if loss is not None and task not in TASKS_OF_INPUT[loss.entry.input]:
            problems.add(
                l_path,
                f"loss {loss.entry.name!r} takes {INPUTS[loss.entry.input]} and cannot serve dataset "
                f"{d.entry.name!r}, a {task} task; choose a {task} loss (`losszoo list losses`)",
            )
    if model is None:
        return
    model_tasks = model.entry.extra.get("tasks", ("classification", "regression"))
    if task not in model_tasks:
        problems.add(("model",), f"model {model.entry.name!r} serves {' and '.join(model_tasks)}; dataset "
                     f"{d.entry.name!r} is {task}: use " + ("unet" if task == "segmentation" else "mlp or cnn"))
    elif model.entry.input == "images" and d.entry.task != "from file" and not d.entry.extra.get("images"):
        problems.add(("model",), f"model {model.entry.name!r} needs images; dataset {d.entry.name!r} is a table "
                     "of features: use mlp or linear")


def _unknown(registry: Registry, name: str) -> str:
    try:
        registry.get(name)
    except UnknownNameError as error:
        return str(error)
    return ""
