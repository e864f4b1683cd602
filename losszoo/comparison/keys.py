"""What a dotted key means in a result, and the keys a user names checked against the runs.

``test.accuracy`` reads a run's metrics, ``loss.name`` or ``landscape.radius``
the result itself, anything else its resolved config (``model.hidden``,
``train.optimizer.lr``, ``inputs.dataset.path``, where an input's own name
holds a dot). A key that no run answers is a ``LosszooError`` with a
did-you-mean, whichever option named it.
"""

from __future__ import annotations

import difflib
import json
import math
from typing import Any

from losszoo.comparison import labels
from losszoo.errors import LosszooError
from losszoo.registry import METRICS

SPLITS = ("test", "val", "train")  # the metrics a result holds; ``train.epochs`` is still the config's


_MISSING = object()


def _walk(node: Any, parts: list[str]) -> Any:
    i = 0
    while i < len(parts):
        if not isinstance(node, dict):
            return _MISSING
        if parts[i] in node:
            node, i = node[parts[i]], i + 1
            continue
        # keys that hold a dot themselves: config["inputs"]["dataset.path"], ["loss.my_plugin_loss"]
        for j in range(len(parts), i + 1, -1):
            joined = ".".join(parts[i:j])
            if joined in node:
                node, i = node[joined], j
                break
        else:
            return _MISSING
    return node


def lookup(result: dict[str, Any], key: str) -> Any:
    """A dotted key of a result: ``test.accuracy`` (or ``val.``, ``train.``) reads its metrics, ``loss.name``
    or ``landscape.trace`` the result itself, and anything else its resolved config (``model.skip``,
    ``train.epochs``, ``dataset.label_noise``)."""
    parts = key.split(".")
    if parts[0] in SPLITS:
        value = _walk(result.get("metrics"), parts)
        if value is _MISSING and parts[0] == "train":  # not a metric: the recipe's train block
            value = _walk(result.get("config"), parts)
    else:
        value = _walk(result, parts)
        if value is _MISSING:
            value = _walk(result.get("config"), parts)
    return None if value is _MISSING else value


def column_name(metric: str) -> str:
    """``accuracy`` means ``test.accuracy``; anything dotted is taken as written."""
    return metric if "." in metric else f"test.{metric}"


#: Result fields, not metrics, where more is better (for the rest, such as seconds,
#: Hessian eigenvalues or SAM sharpness, less is better).
HIGHER_IS_BETTER_FIELDS = ("landscape.radius", "landscape.accuracy", "samples_per_second")


def higher_is_better(column: str, results: list[dict[str, Any]] = ()) -> bool:
    """The direction of a column: the registry's, else the one a run recorded (a plugin's metric compared
    without its plugin), else the known result fields; anything else is lower-is-better."""
    if column in HIGHER_IS_BETTER_FIELDS:
        return True
    split, _, name = column.rpartition(".")
    if split in SPLITS:
        if name in METRICS:
            return bool(METRICS.get(name).higher_is_better)
        for r in results:
            recorded = (r.get("higher_is_better") or {}).get(name)
            if recorded is not None:
                return bool(recorded)
    return False


def value_range(column: str) -> tuple[float, float]:
    split, _, name = column.rpartition(".")
    if split in SPLITS and name in METRICS:
        return METRICS.get(name).value_range  # type: ignore[attr-defined]
    return (-math.inf, math.inf)


def known_keys(results: list[dict[str, Any]]) -> list[str]:
    """Every dotted key some result answers (metrics, result fields, config), for did-you-mean."""
    keys: dict[str, None] = {}
    for r in results[:200]:  # a sample: keys repeat across runs
        for split, metrics in (r.get("metrics") or {}).items():
            for name in metrics or {}:
                keys[f"{split}.{name}"] = None
        for name in labels.flatten(r.get("config") or {}):
            keys[name] = None
        for name, value in r.items():
            if name not in ("config", "metrics") and not isinstance(value, dict):
                keys[name] = None
        for name in labels.flatten({k: v for k, v in r.items() if isinstance(v, dict) and k not in ("config",
                                                                                                  "metrics")}):
            keys[name] = None
    return list(keys)


def require(key: str, option: str, results: list[dict[str, Any]]) -> None:
    """A key that some run answers, else an error that names ``option`` and the closest keys."""
    if any(lookup(r, key) is not None for r in results):
        return
    known = known_keys(results)
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6) or difflib.get_close_matches(
        column_name(key), known, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise LosszooError(f"{option} {key!r}: no run has this key{hint}")


def parse_filters(filters: list[str], results: list[dict[str, Any]]) -> list[tuple[str, str, bool]]:
    """``key=value`` and ``key!=value`` as (key, value, negated), each key checked against the runs."""
    parsed = []
    for rule in filters:
        if "=" not in rule:
            raise LosszooError(f"--filter {rule!r}: expected key=value or key!=value, e.g. --filter loss.name=arcface")
        negate = "!=" in rule
        key, _, wanted = rule.partition("!=" if negate else "=")
        require(key.strip(), "--filter", results)
        parsed.append((key.strip(), wanted.strip(), negate))
    return parsed


def matches(result: dict[str, Any], filters: list[tuple[str, str, bool]]) -> bool:
    """Whether a result passes every filter (values compared as text: ``true``, ``[32]``, ``0.1``)."""
    for key, wanted, negate in filters:
        value = lookup(result, key)
        equal = json_text(value) == wanted
        if equal == negate:
            return False
    return True


def json_text(value: Any) -> str:
    """A value as a filter or a table cell spells it: JSON for booleans, None and containers."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def require_metric(metric: str, column: str, results: list[dict[str, Any]]) -> None:
    """A ``--metric`` some run reports, else an error listing the metrics the runs have."""
    if any(lookup(r, column) is not None for r in results):
        return
    names = sorted({n for r in results for split in SPLITS for n in ((r.get("metrics") or {}).get(split) or {})})
    close = difflib.get_close_matches(metric, names, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise LosszooError(f"--metric {metric!r}: no run reports it{hint} (metrics: {', '.join(names) or 'none'})")


def close_words(word: str, choices: list[str]) -> str:
    """``; did you mean 'x'?`` for the closest of ``choices``, or nothing."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
