"""``losszoo list``: the registry as a table."""

from __future__ import annotations

import typer
from rich.table import Table

from losszoo.cli.console import console
from losszoo.cli.plugins import PLUGINS_OPTION, load_cli_plugins
from losszoo.errors import LosszooError
from losszoo.inputs import INPUTS
from losszoo.registry import REGISTRIES, Entry, close_matches, yaml_repr


def _kind_or_pattern(word: str, pattern: str | None) -> tuple[str, str]:
    """``losszoo list '*face*'`` and ``losszoo list arcface`` list losses; a near miss of a kind
    (``lossess``) or anything else is an error that says what ``list`` takes."""
    if pattern is None and (any(c in word for c in "*?[") or word in REGISTRIES["losses"]):
        return "losses", word
    raise LosszooError(f"unknown kind {word!r}{close_matches(word, REGISTRIES)}: list takes "
                       f"{', '.join(REGISTRIES)}, or a pattern of loss names such as '*face*'")


def _hyperparameters(entry: Entry) -> str:
    return ", ".join(f"{p.name}={yaml_repr(p.default)}" for p in entry.params) or "-"


def list_command(
    kind: str = typer.Argument("losses", help="losses, datasets, models or metrics (or a pattern of loss names)"),
    pattern: str = typer.Argument(None, help="wildcard on names, e.g. '*face*'"),
    family: str = typer.Option(None, "--family", "-f", help="only this family, e.g. margin"),
    plugins: list[str] = PLUGINS_OPTION,
) -> None:
    """The registry as a table: name, family, input, hyperparameters with defaults, paper."""
    load_cli_plugins(plugins)
    if kind not in REGISTRIES:
        kind, pattern = _kind_or_pattern(kind, pattern)
    registry = REGISTRIES[kind]
    entries = registry.entries(pattern, family)
    if family and not entries and family not in registry.families():
        raise LosszooError(
            f"unknown family {family!r}{close_matches(family, registry.families())} "
            f"(families: {', '.join(registry.families())})"
        )
    title = f"{len(entries)} {kind}" + (f" matching {pattern!r}" if pattern else "") + (
        f" in family {family!r}" if family else "")
    table = Table(title=title, title_justify="left", show_lines=False, header_style="bold")
    table.add_column("name", style="bold cyan", no_wrap=True)
    table.add_column("family", no_wrap=True)
    if kind in ("losses", "metrics"):
        table.add_column("input", no_wrap=True)
    if kind == "datasets":
        table.add_column("task")
    if kind == "metrics":
        table.add_column("better", no_wrap=True)
    table.add_column("hyperparameters" if kind != "metrics" else "summary")
    if kind != "metrics":
        table.add_column("paper / summary", max_width=48)
    table.add_column("origin", style="dim")
    for e in entries:
        cells = [e.name, e.family]
        if kind in ("losses", "metrics"):
            cells.append(e.input)
        if kind == "datasets":
            cells.append(e.task or "from file")
        if kind == "metrics":
            cells += ["higher" if e.higher_is_better else "lower", e.summary]
        else:
            cells += [_hyperparameters(e), e.paper or e.summary]
        cells.append(e.origin)
        table.add_row(*cells)
    console.print(table)
    if kind == "losses":
        console.print("inputs: " + "; ".join(f"{k} = {v}" for k, v in INPUTS.items()), style="dim")
