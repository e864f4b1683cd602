"""YAML loaded with the line of every node, so errors can name ``file:line``.

``load_yaml`` returns plain Python data and a map from each node's path, a
tuple such as ``("losses", 2, "margin")``, to its 1-based line.

A recipe is data, never code, and never a way to exhaust the machine:

- only plain scalars, lists and mappings with scalar keys are built (SafeLoader
  tags such as ``!!python/object`` are refused; dates stay strings);
- aliases are expanded at most to :data:`MAX_NODES` nodes in all, counted on
  the composed graph before anything is built, so a "billion laughs" recipe
  of a few hundred bytes fails at once instead of taking gigabytes; a
  recursive alias fails too;
- a merge key takes the merged mapping's keys unless the mapping sets them
  itself (``{<<: *focal, gamma: 1.0}`` overrides gamma), as YAML 1.1 says;
  a key written twice in one mapping is an error.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

Path = tuple[Any, ...]

#: Nodes a recipe may expand to, aliases counted at every use: far above any real recipe.
MAX_NODES = 100_000

_MERGE = "tag:yaml.org,2002:merge"
#: The tags of plain lists and mappings; any other on them (``!!set``, ``!!python/object/apply``) is refused.
_PLAIN = {yaml.MappingNode: ("tag:yaml.org,2002:map",), yaml.SequenceNode: ("tag:yaml.org,2002:seq",)}


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` as a number (YAML 1.1 wants ``1.0e-3``) and leaves dates as text."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


class TooLarge(yaml.YAMLError):
    """The document expands to more than MAX_NODES nodes, or refers to itself."""

    def __init__(self, problem: str, mark: Any):
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


def load_yaml(text: str) -> tuple[Any, dict[Path, int]]:
    """Parse ``text``; raises ``yaml.YAMLError`` (with a ``problem_mark`` where known) when malformed,
    oversized or recursive."""
    loader = _Loader(text)
    try:
        positions: dict[Path, int] = {}
        try:
            node = loader.get_single_node()
            if node is None:
                return None, {}
            _check_size(node)
            data = _build(loader, node, (), positions)
        except RecursionError:
            raise TooLarge("nested too deeply", None) from None
    finally:
        loader.dispose()
    return data, positions


def _check_size(root: yaml.Node) -> None:
    """Count the nodes of ``root`` as if every alias were expanded; stop at MAX_NODES or a cycle."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    # Iterative post-order walk: a deep document must not exhaust Python's stack here.
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes and not children_done:
            continue
        children = _children(node)
        if not children_done:
            if key in open_nodes:
                raise TooLarge("an alias refers to the mapping or list that contains it", node.start_mark)
            open_nodes.add(key)
            stack.append((node, True))
            for child in children:
                if id(child) in open_nodes:
                    raise TooLarge("an alias refers to the mapping or list that contains it", child.start_mark)
                if id(child) not in sizes:
                    stack.append((child, False))
            continue
        open_nodes.discard(key)
        sizes[key] = 1 + sum(sizes[id(c)] for c in children)
        if sizes[key] > MAX_NODES:
            raise TooLarge(f"expands to more than {MAX_NODES:,} values (aliases counted at every use); "
                           "a recipe never needs that many", node.start_mark)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _build(loader: _Loader, node: yaml.Node, path: Path, positions: dict[Path, int]) -> Any:
    positions.setdefault(path, node.start_mark.line + 1)
    if node.tag not in _PLAIN.get(type(node), (node.tag,)):  # a tag would otherwise be dropped in silence
        raise yaml.constructor.ConstructorError(
            None, None, f"a recipe holds numbers, text, true/false, lists and mappings, not {node.tag}",
            node.start_mark)
    if isinstance(node, yaml.MappingNode):
        return _build_mapping(loader, node, path, positions)
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*path, i), positions) for i, item in enumerate(node.value)]
    value = loader.construct_object(node, deep=True)
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise yaml.constructor.ConstructorError(
            None, None, f"a recipe holds numbers, text, true/false, lists and mappings, not {node.tag}",
            node.start_mark)
    return value


def _build_mapping(loader: _Loader, node: yaml.MappingNode, path: Path, positions: dict[Path, int]) -> dict:
    result: dict[Any, Any] = {}
    merged: list[yaml.Node] = []
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE:
            merged.extend(value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node])
            continue
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(None, None, "a key must be a plain name, not a list or mapping",
                                                    key_node.start_mark)
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        positions[(*path, key)] = key_node.start_mark.line + 1
        result[key] = _build(loader, value_node, (*path, key), positions)
        positions[(*path, key)] = key_node.start_mark.line + 1
    for source in merged:  # earlier merged mappings win over later ones; keys written here win over all
        if not isinstance(source, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(None, None, "`<<` merges a mapping (or a list of them)",
                                                    source.start_mark)
        inner: dict[Path, int] = {}
        for key, value in _build_mapping(loader, source, path, inner).items():
            if key not in result:
                result[key] = value
                positions.update({p: line for p, line in inner.items() if len(p) > len(path) and p[len(path)] == key})
    return result


def dotted(path: Path) -> str:
    """``("losses", 2, "margin")`` as ``losses[2].margin``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
