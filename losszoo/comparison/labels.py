"""What a row of a comparison is called: its dataset, model, loss and training
settings, each shown with exactly the keys that differ between rows.

A row is one configuration (a resolved config minus its seed). Two rows never
print the same label: where they would, the label shows the keys that tell
them apart, e.g. ``digits(label_noise=0.4)``, ``mlp(hidden=[32])``,
``focal(gamma=2.0000001)`` (exact values where rounding would collide). A
user's file is always named: ``csv(iris.csv)``.

>>> rows = [{"dataset": {"name": "digits", "label_noise": 0.0}, "loss": {"name": "ce"}},
...         {"dataset": {"name": "digits", "label_noise": 0.4}, "loss": {"name": "ce"}}]
>>> describe(rows, ["ce", "ce"])
[{'dataset': 'digits(label_noise=0)', 'label': 'ce'}, {'dataset': 'digits(label_noise=0.4)', 'label': 'ce'}]
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import PurePath
from typing import Any

from losszoo.spec import UNHASHED_KEYS, UNHASHED_TRAIN_KEYS

#: The parts of a config a row's label shows, in column order; anything else that differs goes to "other".
PARTS = ("dataset", "model", "label", "train")
#: Config keys that never go into a label: the seed, what is not part of what a run computes (the keys the
#: run identity leaves out, declared once in ``losszoo.spec``), and a final run's tuning record (part of its
#: identity, so a larger budget is a new run, but shown in the table's own ``tuned`` column).
IGNORED = ("seed", "tuned", *UNHASHED_KEYS, *(f"train.{k}" for k in UNHASHED_TRAIN_KEYS))


@functools.lru_cache(maxsize=4096)  # the same few hundred keys, asked for every run of a large store
def ignored(key: str) -> bool:
    """Whether a flat config key never tells rows apart: the seed and what is not part of a run's identity
    (``tuned.values.lr`` as much as ``tuned``; ``train.log`` as much as ``train.log.0``)."""
    return key in IGNORED or any(key.startswith(f"{k}.") for k in IGNORED)


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"optimizer": {"lr": 0.1}}}`` as ``{"train.optimizer.lr": 0.1}`` (lists stay values)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _text(value: Any, exact: bool = False) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return repr(value) if exact or not math.isfinite(value) else f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_text(v, exact) for v in value) + "]"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _part(key: str) -> str:
    head = key.split(".", 1)[0]
    if head == "loss":
        return "label"
    return head if head in PARTS else "other"


def describe(configs: list[dict[str, Any]], labels: list[str]) -> list[dict[str, str]]:
    """One label per row, as ``{part: text}`` for the parts that differ between rows (dataset and loss
    always); ``configs`` are the rows' resolved configs, ``labels`` their loss labels."""
    flats = [{k: v for k, v in flatten(c).items() if not ignored(k)} | {"loss.label": label}
             for c, label in zip(configs, labels, strict=True)]
    varying = _varying(flats)
    parts_shown = {"dataset", "label"} | {_part(k) for keys in varying for k in keys}
    shown = [_render(flat, label, keys, parts_shown, exact=False)
             for flat, label, keys in zip(flats, labels, varying, strict=True)]
    # Rows whose labels still coincide differ only in digits the short form rounds away: show them exactly.
    seen: dict[tuple, list[int]] = {}
    for i, row in enumerate(shown):
        seen.setdefault(tuple(sorted(row.items())), []).append(i)
    for group in (g for g in seen.values() if len(g) > 1):
        for i in group:
            shown[i] = _render(flats[i], labels[i], varying[i], parts_shown, exact=True)
    return shown


#: Keys compared only among rows of the same dataset, model or loss (other names are told apart by the name).
_PEERS = {"dataset": "dataset.name", "model": "model.name", "loss": "loss.label",  # a loss's label shows its values
          "file": "dataset.path"}


def _peers_of(key: str) -> str:
    """Whose values a key is compared with: a content hash (``inputs.*``) only with the runs that read the same
    file or plugin, so that two csv files are told apart by their names, and a changed one by its hash."""
    head, _, rest = key.partition(".")
    if head in ("metrics", "select_by"):  # the defaults follow the loss: a difference between two losses says nothing
        return "loss"
    if head == "inputs":
        return "file" if rest == "dataset.path" else _peers_of(rest) if rest.split(".")[0] in _PEERS else ""
    return head if head in _PEERS else ""


def _varying(flats: list[dict[str, Any]]) -> list[list[str]]:
    """For each row, the keys that tell it from the others: a dataset's, model's or loss's keys among the rows
    with the same name (label, for a loss), a file's or plugin's content hash among the rows that read it, the
    rest among all rows. Each value is encoded once, and each key's values are collected once per group of
    peers, so a thousand rows take milliseconds."""
    def encoded(value: Any) -> str:  # equal values, equal texts; json only for what has no plain repr
        kind = type(value)
        if kind is str:
            return "s" + value
        if kind in (int, float, bool) or value is None:
            return repr(value)
        return json.dumps(value, sort_keys=True, default=str)

    texts = [{k: encoded(v) for k, v in flat.items()} for flat in flats]
    null = encoded(None)
    peers = {k: _peers_of(k) for flat in flats for k in flat if k != "loss.label"}
    values: dict[tuple[str, str], set[str]] = {}  # (key, group of peers) -> the values seen there
    groups: list[dict[str, str]] = []
    for text in texts:
        group = {kind: text.get(same, null) for kind, same in _PEERS.items()} | {"": ""}
        groups.append(group)
        for key, kind in peers.items():
            values.setdefault((key, group[kind]), set()).add(text.get(key, null))
    names = {k for k in ("dataset.name", "model.name", "loss.name") if len({t.get(k, null) for t in texts}) > 1}
    return [sorted({k for k in flat if k != "loss.label" and len(values[(k, group[peers[k]])]) > 1} | names)
            for flat, group in zip(flats, groups, strict=True)]


def _render(flat: dict[str, Any], label: str, varying: list[str], parts_shown: set[str],
            exact: bool) -> dict[str, str]:
    return {part: _part_text(part, flat, label, [k for k in varying if _part(k) == part], exact)
            for part in (*PARTS, "other") if part in parts_shown}


def _part_text(part: str, flat: dict[str, Any], label: str, keys: list[str], exact: bool) -> str:
    if part == "label":
        # The loss label names what the recipe wrote; keys that still tell rows of one label apart follow.
        extra = [k for k in keys if k != "loss.name"]
        return _with(label, [(k.split(".", 1)[1], flat.get(k)) for k in extra], exact) if extra else label
    if part in ("dataset", "model"):
        name = str(flat.get(f"{part}.name", part))
        path = flat.get("dataset.path") if part == "dataset" else None
        details = [("", str(path) if exact else PurePath(str(path)).name)] if path else []
        details += [(k.split(".", 1)[1], flat.get(k)) for k in keys if k not in (f"{part}.name", "dataset.path")]
        return _with(name, details, exact)
    if part == "train":
        return ", ".join(f"{k.split('.', 1)[1]}={_text(flat.get(k), exact)}" for k in keys)
    return ", ".join(f"{k}={_short(flat.get(k), exact)}" for k in keys)


def _with(name: str, details: list[tuple[str, Any]], exact: bool) -> str:
    if not details:
        return name
    inner = ",".join(_text(v, exact) if not k else f"{k}={_text(v, exact)}" for k, v in details)
    return f"{name}({inner})"


def _short(value: Any, exact: bool) -> str:
    """Content hashes and long values shortened for a table (the run folders hold them whole)."""
    text = _text(value, exact)
    return text[:10] if isinstance(value, str) and len(value) == 64 else text
