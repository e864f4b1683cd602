"""One registry type for losses, datasets, models and metrics.

An :class:`Entry` is the metadata of one registered name: family, the input it
takes, its hyperparameters (:class:`Param`, with default, bounds and meaning),
its paper and formula, and where its implementation lives. Built-in entries
name their implementation as ``"module:attribute"`` so that ``losszoo list``,
``losszoo show`` and recipe validation never import torch; the object is
imported the first time something is built from it.
"""

from __future__ import annotations

import contextvars
import dataclasses
import difflib
import fnmatch
import importlib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from losszoo.errors import InvalidParameterError, LosszooError, UnknownNameError
from losszoo.inputs import INPUT_KINDS

#: Parameter types, as a recipe writes them.
TYPES = ("float", "int", "bool", "str", "ints", "floats", "float_or_floats", "strs")


def yaml_repr(value: Any) -> str:
    """A value as a recipe would spell it, for messages and tables."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_repr(v) for v in value) + "]"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: What each parameter type admits, and how a message says it.
_TYPE_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "float": (_is_number, "a number"),
    "int": (_is_int, "an integer"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "ints": (lambda v: isinstance(v, (list, tuple)) and all(_is_int(x) for x in v), "a list of integers"),
    "floats": (lambda v: isinstance(v, (list, tuple)) and all(_is_number(x) for x in v), "a list of numbers"),
    "float_or_floats": (
        lambda v: _is_number(v) or (isinstance(v, (list, tuple)) and all(_is_number(x) for x in v)),
        "a number or a list of numbers",
    ),
    "strs": (lambda v: isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v), "a list of strings"),
}


def _type_problem(kind: str, value: Any) -> str | None:
    admits, wanted = _TYPE_CHECKS[kind]
    return None if admits(value) else f"must be {wanted}, got {yaml_repr(value)}"


@dataclass(frozen=True)
class Tune:
    """The range a tuner searches for one hyperparameter, declared next to it.

    Numbers are drawn from ``[low, high]`` (on a log scale with ``log``);
    an ``int`` parameter draws integers. The range must lie within the
    parameter's bounds (a registry-wide test checks it).
    """

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ValueError(f"tune range needs low < high, got [{self.low}, {self.high}]")
        if self.log and self.low <= 0:
            raise ValueError(f"a log tune range needs low > 0, got {self.low}")

    def describe(self) -> str:
        return f"[{self.low:g}, {self.high:g}]" + (" log" if self.log else "")


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its default, type, bounds, tuning range and a one-line meaning.

    Numbers must be finite unless ``finite=False`` (Barron's alpha may be -inf).
    """

    name: str
    default: Any
    doc: str
    type: str = "float"
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    short: str | None = None  # abbreviation used in run labels, e.g. "m" for margin
    tune: Tune | None = None  # the range `tune:` searches when a recipe gives no space
    finite: bool = True
    example: Any = None  # shown in `losszoo show` snippets where the default cannot stand (a file's path)

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"Param {self.name!r}: type must be one of {TYPES}")
        if isinstance(self.tune, tuple):  # Param(..., tune=(0.1, 0.8)) or (1e-4, 1e-2, "log")
            low, high, *log = self.tune
            object.__setattr__(self, "tune", Tune(low, high, log == ["log"]))

    def bounds(self) -> str:
        """The admissible values in words: ``> 0``, ``[0, 1)``, ``one of a, b``."""
        if self.choices is not None:
            return "one of " + ", ".join(yaml_repr(c) for c in self.choices)
        lo = f"[{self.ge:g}" if self.ge is not None else f"({self.gt:g}" if self.gt is not None else None
        hi = f"{self.le:g}]" if self.le is not None else f"{self.lt:g})" if self.lt is not None else None
        if lo and hi:
            return f"in {lo}, {hi}"
        if lo:
            return (">= " if lo[0] == "[" else "> ") + lo[1:]
        if hi:
            return ("<= " if hi[-1] == "]" else "< ") + hi[:-1]
        return ""

    def normalize(self, value: Any) -> Any:
        """An admissible value in canonical form: ``64`` for a float parameter is ``64.0``,
        so the written and the default spelling of a run hash alike."""
        if value is None or self.type not in ("float", "floats", "float_or_floats"):
            return value
        if isinstance(value, (list, tuple)):
            return [float(v) for v in value]
        return float(value)

    def within(self, v: float) -> bool:
        """Whether the number ``v`` lies within the bounds (finiteness aside)."""
        return not (
            math.isnan(v) or (self.gt is not None and not v > self.gt) or (self.ge is not None and not v >= self.ge)
            or (self.lt is not None and not v < self.lt) or (self.le is not None and not v <= self.le)
        )

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not admissible, or None when it is."""
        if value is None:
            return None if self.nullable else f"must not be null ({self.doc})"
        type_problem = _type_problem(self.type, value)
        if type_problem:
            return type_problem
        if self.choices is not None:
            if value not in self.choices:
                close = difflib.get_close_matches(str(value), [str(c) for c in self.choices], n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                return f"must be {self.bounds()}, got {yaml_repr(value)}{hint}"
            return None
        numbers = value if isinstance(value, (list, tuple)) else [value]
        for v in numbers:
            if not _is_number(v):
                continue
            if (self.finite and math.isinf(v)) or math.isnan(v):
                return f"must be a finite number{' ' + self.bounds() if self.bounds() else ''}, got {yaml_repr(v)}"
            if not self.within(v):
                return f"must be {self.bounds()}, got {yaml_repr(v)}"
        return None


@dataclass(frozen=True)
class Rule:
    """A rule over several values of one entry: its hyperparameters together, or with the data.

    ``check(values)`` is True when admissible, and False or a message in its
    own words when not; ``values`` holds the resolved
    hyperparameters and the context (``num_classes``, ``embedding_dim``; for a
    dataset its :class:`Facts` as ``samples``, ``classes``, ...). ``needs``
    names the context keys it reads: without them (a loss built by hand
    without ``num_classes``) the rule waits for the trainer, which has them.
    ``key`` is the hyperparameter the message blames, so a recipe error points
    at its line; ``message`` is formatted with the values, e.g.
    ``"must be > l_a = {l_a:g}, got {u_a:g}"``.
    """

    key: str
    message: str
    check: Callable[[Mapping[str, Any]], bool | str]
    needs: tuple[str, ...] = ()

    def problem(self, values: Mapping[str, Any]) -> str | None:
        """None when the rule holds; else its message, or the words ``check`` returned instead of False."""
        if any(values.get(k) is None for k in self.needs):
            return None
        verdict = self.check(values)
        if verdict is True:
            return None
        return verdict if isinstance(verdict, str) else self.message.format(**values)


#: Keys the trainer supplies to a loss, not hyperparameters a user sets.
CONTEXT_KEYS = ("num_classes", "embedding_dim", "class_counts", "in_channels")


@dataclass(frozen=True)
class Facts:
    """What the recipe checks know of a dataset before its runs: its task and sizes.

    Built-in datasets declare them (or a function of their parameters); a
    user's file or a plugin's dataset is read when the recipe is validated,
    and its facts come from what it returned.
    """

    task: str
    samples: int
    classes: int | None = None  # classes (or labels) of a classification, segmentation or multi-label task
    smallest_class: int | None = None  # samples of the rarest class (stratified splits need 2)
    features: int | None = None
    image_shape: tuple[int, ...] | None = None  # (C, H, W) when the samples are images

    def as_context(self) -> dict[str, Any]:
        return {"task": self.task, "samples": self.samples, "classes": self.classes,
                "smallest_class": self.smallest_class, "features": self.features, "image_shape": self.image_shape}


@dataclass(frozen=True)
class Entry:
    """A registered name and what losszoo knows about it; one subclass per kind."""

    kind: str  # "loss" | "dataset" | "model" | "metric"
    name: str
    target: str | Callable[..., Any]  # "module:attribute", or the object itself
    family: str = ""
    summary: str = ""
    params: tuple[Param, ...] = ()
    rules: tuple[Rule, ...] = ()
    paper: str = ""
    formula: str = ""
    reference: str = ""  # the library it equals, or "formula"
    origin: str = "built-in"

    @property
    def qualified(self) -> str:
        return f"{self.kind} {self.name!r}"

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise InvalidParameterError(self._unknown_param(name), name)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def _unknown_param(self, key: str) -> str:
        names = [p.name for p in self.params]
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        known = ", ".join(names) if names else "none"
        return f"unknown hyperparameter of {self.qualified}{hint} (it takes: {known})"

    def problems(self, given: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
        """Every problem with ``given`` hyperparameters, as ``(key, message)``: unknown keys,
        types and bounds first; then, when those are fine, the entry's rules with ``context``."""
        known = {p.name: p for p in self.params}
        found = []
        for key, value in given.items():
            if key not in known:
                found.append((key, self._unknown_param(key)))
                continue
            problem = known[key].problem(value)
            if problem:
                found.append((key, problem))
        if not found:
            found = self.rule_problems(self._resolved(given), context)
        return found

    def rule_problems(self, params: Mapping[str, Any], context: Mapping[str, Any] | None = None
                      ) -> list[tuple[str, str]]:
        """The entry's rules on resolved ``params`` and whatever ``context`` is known."""
        values = {**(context or {}), **params}
        return [(rule.key, problem) for rule in self.rules if (problem := rule.problem(values))]

    def check(self, params: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> None:
        """Raise InvalidParameterError for the first value out of bounds or broken rule: the one check that a
        recipe, ``create_loss`` and a module built by hand all run."""
        problems = self.problems(params, context)
        if problems:
            key, message = problems[0]
            raise InvalidParameterError(f"{self.name}.{key}: {message}", key)

    def _resolved(self, given: Mapping[str, Any]) -> dict[str, Any]:
        resolved = self.defaults()
        resolved.update({key: self.param(key).normalize(value) for key, value in given.items()})
        return resolved

    def resolve(self, given: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults filled in and every value and rule checked; raises InvalidParameterError."""
        problems = self.problems(given, context)
        if problems:
            key, message = problems[0]
            raise InvalidParameterError(f"{self.name}.{key}: {message}", key)
        return self._resolved(given)

    def load(self) -> Any:
        """The implementation, imported on first use."""
        if not isinstance(self.target, str):
            return self.target
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class LossEntry(Entry):
    input: str = ""  # the InputKind it consumes (losszoo.inputs)
    target_kind: str = ""  # "labels" | "values" | "masks" | "multilabel" | "boxes"
    context: tuple[str, ...] = ()  # CONTEXT_KEYS it needs: class-sized parameters (centres, proxies, priors)
    optional_context: tuple[str, ...] = ()  # CONTEXT_KEYS it checks against when given (num_classes vs the logits)
    elementwise: bool = False  # accepts reduction="mean" | "sum" | "none"
    needs_pairs: bool = False  # batches must hold several samples of each class
    input_range: tuple[float, float] | None = None  # open interval of admissible inputs (msle: > 0)
    target_range: tuple[float, float] | None = None  # open interval of admissible targets
    no_gradcheck: str = ""  # why gradcheck does not apply (a gradient stopped by design)
    classifies: bool = False  # embeddings whose class centres classify: default metrics include accuracy
    stackable: bool = False  # trains in a stack of runs (training/stacked.py): its forward draws no random numbers


@dataclass(frozen=True)
class MetricEntry(Entry):
    input: str = ""
    target_kind: str = ""
    task: str = ""  # the task it measures
    higher_is_better: bool | None = None
    value_range: tuple[float, float] = (-math.inf, math.inf)  # where values (and intervals) can lie
    default: bool = False  # reported when a recipe names no metrics (catalogue order; the first selects)
    computed_with: str = ""  # "module:function" computing this and sibling metrics in one pass
    fitted_on_val: str = ""  # "module:function" choosing a parameter on val (a threshold), applied on test...
    applied_with: str = ""  # ...by "module:function"(output, target, parameter)


@dataclass(frozen=True)
class ModelEntry(Entry):
    input: str = ""  # "features" or "images"
    tasks: tuple[str, ...] = ("classification", "regression", "multilabel", "boxes")


@dataclass(frozen=True)
class DatasetEntry(Entry):
    task: str | None = ""  # None: the `task` hyperparameter says (a user's file)
    images: bool = False  # samples are images (cnn, resnet, unet can read them)
    facts: Facts | Callable[[Mapping[str, Any]], Facts] | None = None  # None: read the data to know

    def task_of(self, params: Mapping[str, Any]) -> str:
        return params["task"] if self.task is None else self.task

    def facts_of(self, params: Mapping[str, Any]) -> Facts | None:
        return self.facts(params) if callable(self.facts) else self.facts


ENTRY_TYPES: dict[str, type[Entry]] = {"loss": LossEntry, "metric": MetricEntry, "model": ModelEntry,
                                       "dataset": DatasetEntry}


def natural_key(name: str) -> list[Any]:
    """Sort key that orders ``resnet2`` before ``resnet10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def close_matches(name: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.5)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


class Registry:
    """Names of one kind (losses, datasets, models or metrics) and their entries.

    Built-in entries come from the ``ENTRIES`` list of each catalogue module,
    read the first time the registry is asked anything.
    """

    def __init__(self, kind: str, plural: str, catalogue: tuple[str, ...]):
        self.kind = kind
        self.plural = plural
        self._catalogue = catalogue
        self._entries: dict[str, Entry] = {}
        self._loaded = False

    def _load_catalogue(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self._catalogue:
            for entry in importlib.import_module(module).ENTRIES:
                if entry.kind == self.kind:  # a family's module may declare its losses, metrics and datasets
                    self.add(entry)
        _load_installed_plugins()

    def add(self, entry: Entry) -> Entry:
        self._load_catalogue()
        if entry.kind != self.kind:
            raise ValueError(f"{entry.qualified} does not belong to the {self.plural} registry")
        if entry.name in self._entries:
            first = self._entries[entry.name]
            raise LosszooError(
                f"{self.kind} {entry.name!r} is registered twice ({first.origin} and {entry.origin}); "
                "choose another name"
            )
        self._entries[entry.name] = entry
        return entry

    def remove(self, name: str) -> None:
        """Forget a name (tests and plugin reloads)."""
        self._entries.pop(name, None)

    def get(self, name: str) -> Entry:
        self._load_catalogue()
        if not isinstance(name, str):
            raise UnknownNameError(f"{self.kind} name must be a string, got {yaml_repr(name)}")
        try:
            return self._entries[name]
        except KeyError:
            hint = close_matches(name, self._entries)
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{hint} (`losszoo list {self.plural}` shows them all)"
            ) from None

    def __contains__(self, name: object) -> bool:
        self._load_catalogue()
        return name in self._entries

    def names(self, pattern: str | None = None, family: str | None = None) -> list[str]:
        """Registered names matching a shell-style ``pattern``, in natural order."""
        return [e.name for e in self.entries(pattern, family)]

    def entries(self, pattern: str | None = None, family: str | None = None, order: str = "natural") -> list[Entry]:
        """Entries matching ``pattern`` and ``family``, in natural name order (``order="catalogue"``: as declared,
        built-ins first)."""
        self._load_catalogue()
        chosen = [
            e
            for e in self._entries.values()
            if (pattern is None or fnmatch.fnmatchcase(e.name, pattern))
            and (family is None or e.family == family)
        ]
        return chosen if order == "catalogue" else sorted(chosen, key=lambda e: natural_key(e.name))

    def families(self) -> list[str]:
        self._load_catalogue()
        return sorted({e.family for e in self._entries.values()})

    def register(self, name: str | None = None, **metadata: Any) -> Callable[[Any], Any]:
        """Decorator that registers a class or function under ``name``.

        ``params`` takes :class:`Param` objects or a ``{name: default}`` mapping
        (type inferred from the default, no bounds). Losses must say their
        ``input`` kind; the target kind follows from it unless given.

        >>> import losszoo
        >>> @losszoo.register_loss("doc_example", input="values", family="custom", params={"w": 0.5})
        ... def doc_example(pred, target, w):
        ...     return (w * (pred - target) ** 2).mean()
        >>> losszoo.loss_spec("doc_example").params[0].default
        0.5
        >>> losszoo.LOSSES.remove("doc_example")
        """
        if callable(name) and not metadata:  # bare @register_loss
            return self.register()(name)

        def decorate(obj: Any) -> Any:
            meta = dict(metadata)
            entry_name = name or _snake(obj.__name__)
            params = _as_params(entry_name, meta.pop("params", ()))
            meta.setdefault("origin", PLUGIN_ORIGIN.get())
            if self.kind in ("loss", "metric"):
                kind = INPUT_KINDS.get(meta.get("input"))
                if kind is None:
                    raise LosszooError(
                        f"{self.kind} {entry_name!r} must declare input= one of {', '.join(INPUT_KINDS)} "
                        f"(got {meta.get('input')!r})"
                    )
                meta.setdefault("target_kind", kind.targets[0])
                if self.kind == "metric":
                    meta.setdefault("task", kind.tasks[0])
            if self.kind == "metric" and meta.get("higher_is_better") is None:
                raise LosszooError(f"metric {entry_name!r} must declare higher_is_better=True or False")
            if self.kind == "dataset":
                params, meta = _with_split(params, meta)
            meta.setdefault("family", "custom")
            try:
                entry = ENTRY_TYPES[self.kind](kind=self.kind, name=entry_name, target=obj, params=params, **meta)
            except TypeError as error:  # an unknown keyword: say which ones a plugin may give
                fields = ", ".join(f.name for f in dataclasses.fields(ENTRY_TYPES[self.kind])
                                   if f.name not in ("kind", "name", "target"))
                raise LosszooError(f"{self.kind} {entry_name!r}: {error} (it takes: {fields})") from None
            self.add(entry)
            return obj

        return decorate


_TYPE_OF_DEFAULT = {bool: "bool", int: "int", float: "float", str: "str"}

#: Where entries registered right now come from; the plugin loader sets it.
PLUGIN_ORIGIN: contextvars.ContextVar[str] = contextvars.ContextVar("losszoo_origin", default="python")


def _as_params(owner: str, params: Any) -> tuple[Param, ...]:
    if isinstance(params, Mapping):
        out = []
        for key, default in params.items():
            kind = _TYPE_OF_DEFAULT.get(type(default))
            if isinstance(default, (list, tuple)):
                kind = "ints" if all(isinstance(v, int) for v in default) else "floats"
            if kind is None:
                raise LosszooError(f"{owner}: cannot infer the type of parameter {key!r} from {default!r}; "
                                   "pass losszoo.Param objects")
            out.append(Param(key, default, key, type=kind))
        return tuple(out)
    if not all(isinstance(p, Param) for p in params):
        raise LosszooError(f"{owner}: params must be losszoo.Param objects or a {{name: default}} mapping")
    return tuple(params)


_entry_points_loaded = False


def _load_installed_plugins() -> None:
    """Once per process: the plugins installed packages offer (entry-point group ``losszoo.plugins``)."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from losszoo.plugins import load_entry_points

    load_entry_points()


def _with_split(params: tuple[Param, ...], meta: dict[str, Any]) -> tuple[tuple[Param, ...], dict[str, Any]]:
    """A plugin's dataset takes the split fractions (and their rules) every dataset takes, unless it declares
    its own; its task defaults to classification."""
    from losszoo.catalog.datasets import SPLIT, SPLIT_RULES

    names = {p.name for p in params}
    missing = tuple(p for p in SPLIT if p.name not in names)
    meta.setdefault("task", "classification")
    if missing:
        meta["rules"] = (*meta.get("rules", ()), *SPLIT_RULES)
    return params + missing, meta


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


_TASKS = ("losszoo.catalog.multilabel", "losszoo.catalog.boxes")  # each declares losses, metrics and datasets
LOSSES = Registry(
    "loss",
    "losses",
    (
        "losszoo.catalog.classification",
        "losszoo.catalog.margin",
        "losszoo.catalog.regression",
        "losszoo.catalog.metric_learning",
        "losszoo.catalog.segmentation",
        *_TASKS,
    ),
)
DATASETS = Registry("dataset", "datasets", ("losszoo.catalog.datasets", "losszoo.catalog.files", *_TASKS))
MODELS = Registry("model", "models", ("losszoo.catalog.models",))
METRICS = Registry("metric", "metrics", ("losszoo.catalog.metrics", *_TASKS))

REGISTRIES = {"losses": LOSSES, "datasets": DATASETS, "models": MODELS, "metrics": METRICS}
