"""``--set key=value``: change one value of a recipe from the command line.

The value is read as YAML, with the same limits as a recipe file (no tags,
no alias bombs); a key must exist in the recipe or be a known top-level key,
so a typo is an error with a suggestion rather than a silently unused value.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

import yaml

from losszoo.errors import RecipeError
from losszoo.recipe.yaml_lines import Path, dotted, load_yaml

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def hint(word: Any, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def parse_key(key: str, what: str) -> Path:
    """``losses[1].gamma`` as ``("losses", 1, "gamma")``; a RecipeError when it is not a dotted key."""
    parts: list[Any] = [int(index) if index else name for name, index in _PART.findall(key.strip())]
    if not parts or dotted(tuple(parts)) != key.strip():
        raise RecipeError([f"{what}: not a dotted key such as train.epochs or losses[1].gamma"])
    return tuple(parts)


def parse_override(text: str) -> tuple[Path, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise RecipeError([f"--set {text}: expected key=value, e.g. --set train.epochs=5"])
    path = parse_key(key, f"--set {key}")
    try:
        value = load_yaml(raw)[0] if raw.strip() else ""
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error)
        if "expands to more than" in problem or "nested too deeply" in problem or "refers to" in problem:
            raise RecipeError([f"--set {text[:80]}: {problem}"]) from None
        value = raw  # not YAML: the text as written (a path, a name)
    return path, value


def apply_override(data: dict[str, Any], path: Path, value: Any, text: str, top_keys: tuple[str, ...]) -> None:
    """Set ``path`` in ``data`` to ``value``; a bare name on the way (``- focal``) becomes ``{name: focal}``."""
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
                if depth == 0 and part not in top_keys:
                    raise RecipeError([f"--set {text}: unknown key {part!r}{hint(part, top_keys)}"])
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
    elif len(path) == 1 and last not in top_keys:
        raise RecipeError([f"--set {text}: unknown key {last!r}{hint(last, top_keys)}"])
    node[last] = value
