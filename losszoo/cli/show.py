"""``losszoo show NAME``: one registry entry in full."""

from __future__ import annotations

import typer
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from losszoo.cli.console import console
from losszoo.cli.plugins import PLUGINS_OPTION, load_cli_plugins
from losszoo.errors import UnknownNameError
from losszoo.inputs import INPUTS
from losszoo.registry import REGISTRIES, Entry, close_matches, yaml_repr


def find(name: str) -> Entry:
    """The entry called ``name`` in any registry, losses first."""
    for registry in REGISTRIES.values():
        if name in registry:
            return registry.get(name)
    every = [n for r in REGISTRIES.values() for n in r.names()]
    raise UnknownNameError(f"no loss, dataset, model or metric called {name!r}{close_matches(name, every)}")


def snippet(entry: Entry) -> str:
    """A recipe fragment using ``entry`` that validates as it is (a file dataset needs its file)."""
    key = {"loss": "losses", "dataset": "dataset", "model": "model", "metric": "metrics"}[entry.kind]
    if entry.kind == "metric":
        return f"metrics: [{entry.name}]\nselect_by: val.{entry.name}"
    shown = [(p.name, p.example if p.example is not None else p.default) for p in entry.params
             if p.example is not None or p.default not in (None, "")]
    if not shown:
        return f"{key}: [{entry.name}]" if key == "losses" else f"{key}: {entry.name}"
    inner = ", ".join(f"{name}: {yaml_repr(value)}" for name, value in shown)
    body = f"{{name: {entry.name}, {inner}}}"
    return f"losses:\n  - {body}" if key == "losses" else f"{key}: {body}"


def _facts(entry: Entry) -> list[tuple[str, str]]:
    rows = [("kind", f"{entry.kind}, family {entry.family}" if entry.family else entry.kind)]
    if entry.summary:
        rows.append(("what", entry.summary))
    if getattr(entry, "input", ""):
        rows.append(("input", f"{entry.input}: {INPUTS.get(entry.input, entry.input)}"))
    if getattr(entry, "target_kind", ""):
        rows.append(("target", entry.target_kind))
    task = getattr(entry, "task", "")
    if task or task is None:
        rows.append(("task", task or "from its `task:` hyperparameter"))
    if getattr(entry, "higher_is_better", None) is not None:
        rows.append(("better", "higher" if entry.higher_is_better else "lower"))
    if getattr(entry, "context", ()):
        rows.append(("context", ", ".join(entry.context) + " (supplied by the trainer)"))
    if entry.formula:
        rows.append(("formula", entry.formula))
    if getattr(entry, "elementwise", False):
        rows.append(("reduction", "mean | sum | none"))
    if entry.kind == "loss":
        rows.append(("stacks", "yes: seeds train together (train.stack)" if entry.stackable
                     else "no: its runs train one by one"))
    if entry.paper:
        rows.append(("paper", entry.paper))
    if entry.reference:
        rows.append(("equals", entry.reference))
    rows.append(("origin", entry.origin))
    return rows


def show(
    name: str = typer.Argument(..., help="a loss, dataset, model or metric"),
    plugins: list[str] = PLUGINS_OPTION,
) -> None:
    """One registry entry in full: formula, hyperparameters, reference, a recipe snippet."""
    load_cli_plugins(plugins)
    entry = find(name)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    for key, value in _facts(entry):
        facts.add_row(key, value)
    console.print(Panel(facts, title=Text(entry.name, style="bold cyan"), title_align="left"))
    if entry.params:
        params = Table(title="hyperparameters", title_justify="left", header_style="bold")
        for column in ("name", "default", "type", "bounds", "tuned in", "meaning"):
            params.add_column(column)
        for p in entry.params:
            params.add_row(p.name, yaml_repr(p.default), p.type, p.bounds() or "any",
                           p.tune.describe() if p.tune else "-", p.doc)
        console.print(params)
    console.print("recipe snippet", style="bold")
    console.print(snippet(entry))
