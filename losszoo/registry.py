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
import difflib
import fnmatch
import importlib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from losszoo.errors import InvalidParameterError, LosszooError, UnknownNameError

#: Parameter types, as a recipe writes them.
TYPES = ("float", "int", "bool", "str", "ints", "floats", "float_or_floats")

#: What a loss or metric consumes; the trainer builds the model head from it.
INPUTS = {
    "logits": "class logits (N, C)",
    "embeddings": "embeddings (N, D); class centres inside the loss",
    "values": "predicted values (N,)",
    "mean_var": "predicted mean and raw variance (N, 2)",
    "pixel_logits": "per-pixel class logits (N, C, H, W)",
}

#: Tasks each input kind serves.
TASKS_OF_INPUT = {
    "logits": ("classification", "segmentation"),  # per-pixel when given (N, C, H, W)
    "embeddings": ("classification",),
    "values": ("regression",),
    "mean_var": ("regression",),
    "pixel_logits": ("segmentation",),
}


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


def _type_problem(kind: str, value: Any) -> str | None:
    if kind == "float":
        ok = _is_number(value)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "str":
        ok = isinstance(value, str)
    elif kind == "ints":
        ok = isinstance(value, (list, tuple)) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        )
    elif kind == "floats":
        ok = isinstance(value, (list, tuple)) and all(_is_number(v) for v in value)
    elif kind == "float_or_floats":
        ok = _is_number(value) or (
            isinstance(value, (list, tuple)) and all(_is_number(v) for v in value)
        )
    else:  # pragma: no cover - guarded in Param.__post_init__
        raise AssertionError(kind)
    if ok:
        return None
    wanted = {
        "float": "a number",
        "int": "an integer",
        "bool": "true or false",
        "str": "a string",
        "ints": "a list of integers",
        "floats": "a list of numbers",
        "float_or_floats": "a number or a list of numbers",
    }[kind]
    return f"must be {wanted}, got {yaml_repr(value)}"


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its default, type, bounds and a one-line meaning."""

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

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"Param {self.name!r}: type must be one of {TYPES}")

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
            if math.isnan(v) or (self.gt is not None and not v > self.gt) or (
                self.ge is not None and not v >= self.ge
            ) or (self.lt is not None and not v < self.lt) or (self.le is not None and not v <= self.le):
                return f"must be {self.bounds()}, got {yaml_repr(v)}"
        return None


#: Keys the trainer supplies to a loss, not hyperparameters a user sets.
CONTEXT_KEYS = ("num_classes", "embedding_dim", "class_counts", "in_channels")


@dataclass(frozen=True)
class Entry:
    """A registered name and everything losszoo knows about it."""

    kind: str  # "loss" | "dataset" | "model" | "metric"
    name: str
    target: str | Callable[..., Any]  # "module:attribute", or the object itself
    family: str = ""
    summary: str = ""
    params: tuple[Param, ...] = ()
    input: str = ""  # what a loss or metric consumes (INPUTS)
    target_kind: str = ""  # "labels" | "values" | "masks"
    context: tuple[str, ...] = ()  # CONTEXT_KEYS this loss or model needs
    paper: str = ""
    formula: str = ""
    reference: str = ""  # the library it equals, or "formula"
    elementwise: bool = False  # accepts reduction="mean" | "sum" | "none"
    needs_pairs: bool = False  # batches must hold several samples of each class
    higher_is_better: bool | None = None  # metrics
    task: str = ""  # datasets: the task they fix; metrics: the task they measure
    origin: str = "built-in"
    extra: Mapping[str, Any] = field(default_factory=dict)

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

    def problems(self, given: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Every problem with ``given`` hyperparameters, as ``(key, message)``."""
        known = {p.name: p for p in self.params}
        found = []
        for key, value in given.items():
            if key not in known:
                found.append((key, self._unknown_param(key)))
                continue
            problem = known[key].problem(value)
            if problem:
                found.append((key, problem))
        return found

    def resolve(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults filled in and every value checked; raises InvalidParameterError."""
        problems = self.problems(given)
        if problems:
            key, message = problems[0]
            raise InvalidParameterError(f"{self.name}.{key}: {message}", key)
        resolved = self.defaults()
        resolved.update({key: self.param(key).normalize(value) for key, value in given.items()})
        return resolved

    def load(self) -> Any:
        """The implementation, imported on first use."""
        if not isinstance(self.target, str):
            return self.target
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)


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

    def entries(self, pattern: str | None = None, family: str | None = None) -> list[Entry]:
        self._load_catalogue()
        chosen = [
            e
            for e in self._entries.values()
            if (pattern is None or fnmatch.fnmatchcase(e.name, pattern))
            and (family is None or e.family == family)
        ]
        return sorted(chosen, key=lambda e: natural_key(e.name))

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
                if meta.get("input") not in INPUTS:
                    raise LosszooError(
                        f"{self.kind} {entry_name!r} must declare input= one of {', '.join(INPUTS)} "
                        f"(got {meta.get('input')!r})"
                    )
                meta.setdefault("target_kind", _TARGET_OF_INPUT[meta["input"]])
            if self.kind == "metric" and meta.get("higher_is_better") is None:
                raise LosszooError(f"metric {entry_name!r} must declare higher_is_better=True or False")
            meta.setdefault("family", "custom")
            self.add(Entry(kind=self.kind, name=entry_name, target=obj, params=params, **meta))
            return obj

        return decorate

    def replace(self, name: str, **changes: Any) -> None:
        self._entries[name] = replace(self.get(name), **changes)


_TARGET_OF_INPUT = {"logits": "labels", "embeddings": "labels", "values": "values", "mean_var": "values",
                    "pixel_logits": "masks"}
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


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


LOSSES = Registry(
    "loss",
    "losses",
    (
        "losszoo.catalog.classification",
        "losszoo.catalog.margin",
        "losszoo.catalog.regression",
        "losszoo.catalog.metric_learning",
        "losszoo.catalog.segmentation",
    ),
)
DATASETS = Registry("dataset", "datasets", ("losszoo.catalog.datasets", "losszoo.catalog.files"))
MODELS = Registry("model", "models", ("losszoo.catalog.models",))
METRICS = Registry("metric", "metrics", ("losszoo.catalog.metrics",))

REGISTRIES = {"losses": LOSSES, "datasets": DATASETS, "models": MODELS, "metrics": METRICS}
