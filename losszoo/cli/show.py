"""``losszoo show NAME``: one registry entry in full."""

from __future__ import annotations

import typer
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from losszoo.cli.console import console
from losszoo.errors import UnknownNameError
from losszoo.registry import INPUTS, REGISTRIES, Entry, close_matches, yaml_repr


def find(name: str) -> Entry:
    """The entry called ``name`` in any registry, losses first."""
    for registry in REGISTRIES.values():
        if name in registry:
            return registry.get(name)
    every = [n for r in REGISTRIES.values() for n in r.names()]
    raise UnknownNameError(f"no loss, dataset, model or metric called {name!r}{close_matches(name, every)}")


def snippet(entry: Entry) -> str:
    key = {"loss": "losses", "dataset": "dataset", "model": "model", "metric": "metrics"}[entry.kind]
    if entry.kind == "metric":
        return f"metrics: [{entry.name}]\nselect_by: val.{entry.name}"
    if not entry.params:
        return f"{key}: [{entry.name}]" if key == "losses" else f"{key}: {entry.name}"
    inner = ", ".join(f"{p.name}: {yaml_repr(p.default)}" for p in entry.params if p.default not in (None, ""))
    body = f"{{name: {entry.name}{', ' + inner if inner else ''}}}"
    return f"losses:\n  - {body}" if key == "losses" else f"{key}: {body}"


def show(name: str = typer.Argument(..., help="a loss, dataset, model or metric")) -> None:
    """One registry entry in full: formula, hyperparameters, reference, a recipe snippet."""
    entry = find(name)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    add = facts.add_row
    facts.add_row = lambda key, value: add(key, Text(value))  # formulas hold brackets, not markup
    facts.add_row("kind", f"{entry.kind}, family {entry.family}" if entry.family else entry.kind)
    if entry.summary:
        facts.add_row("what", entry.summary)
    if entry.input:
        facts.add_row("input", f"{entry.input}: {INPUTS.get(entry.input, entry.input)}")
    if entry.target_kind:
        facts.add_row("target", entry.target_kind)
    if entry.task:
        facts.add_row("task", entry.task)
    if entry.higher_is_better is not None:
        facts.add_row("better", "higher" if entry.higher_is_better else "lower")
    if entry.context:
        facts.add_row("context", ", ".join(entry.context) + " (supplied by the trainer)")
    if entry.formula:
        facts.add_row("formula", entry.formula)
    if entry.elementwise:
        facts.add_row("reduction", "mean | sum | none")
    if entry.paper:
        facts.add_row("paper", entry.paper)
    if entry.reference:
        facts.add_row("equals", entry.reference)
    facts.add_row("origin", entry.origin)
    console.print(Panel(facts, title=f"[bold cyan]{entry.name}[/]", title_align="left"))
    if entry.params:
        params = Table(title="hyperparameters", title_justify="left", header_style="bold")
        for column in ("name", "default", "type", "bounds", "meaning"):
            params.add_column(column)
        for p in entry.params:
            params.add_row(p.name, yaml_repr(p.default), p.type, p.bounds() or "any", p.doc)
        console.print(params)
    console.print("[bold]recipe snippet[/]")
    console.print(snippet(entry), markup=False, highlight=False)
