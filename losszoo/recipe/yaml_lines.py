"""YAML loaded with the line of every node, so errors can name ``file:line``.

``load_yaml`` returns plain Python data and a map from each node's path, a
tuple such as ``("losses", 2, "margin")``, to its 1-based line.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

Path = tuple[Any, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` as a number (YAML 1.1 wants ``1.0e-3``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(text: str) -> tuple[Any, dict[Path, int]]:
    """Parse ``text``; raises ``yaml.YAMLError`` (with a ``problem_mark``) when malformed."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        positions: dict[Path, int] = {}
        data = None if node is None else _build(loader, node, (), positions)
    finally:
        loader.dispose()
    return data, positions


def _build(loader: _Loader, node: yaml.Node, path: Path, positions: dict[Path, int]) -> Any:
    positions[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in result:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            positions[(*path, key)] = key_node.start_mark.line + 1
            result[key] = _build(loader, value_node, (*path, key), positions)
            positions[(*path, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*path, i), positions) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def dotted(path: Path) -> str:
    """``("losses", 2, "margin")`` as ``losses[2].margin``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
