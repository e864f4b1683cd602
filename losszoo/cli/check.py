"""``losszoo check NAME``: the conformance suite our own losses pass, on any loss."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from losszoo.cli.console import console
from losszoo.errors import LosszooError, RunError


def check(
    target: str = typer.Argument(..., help="a registered loss, or FILE.py:NAME for a loss in a plugin file"),
) -> None:
    """Run the conformance suite (finite, gradients, reductions, gradcheck, extremes, bf16, bounds) on a loss."""
    name = target
    if ":" in target:
        file, _, name = target.rpartition(":")
        if not file.endswith(".py"):
            raise LosszooError(f"{target}: expected FILE.py:NAME, e.g. my_losses.py:weighted_ce")
        from losszoo.plugins import load_plugin

        load_plugin(str(Path(file).resolve()))
    from losszoo.registry import LOSSES

    entry = LOSSES.get(name)
    from losszoo.testing import run_checks

    results = run_checks(entry.name)
    table = Table(title=f"conformance of loss {entry.name!r} ({entry.origin})", title_justify="left",
                  header_style="bold")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for r in results:
        table.add_row(r.name, Text("pass", style="green") if r.passed else Text("FAIL", style="bold red"), r.detail)
    console.print(table)
    failed = [r for r in results if not r.passed]
    if failed:
        raise RunError(f"{len(failed)} of {len(results)} checks failed for {entry.name!r}: "
                       + ", ".join(r.name for r in failed))
    console.print(f"all {len(results)} checks passed", style="green")
