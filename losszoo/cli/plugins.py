"""``--plugins FILE|MODULE``: the one way a read-only command (compare, landscape,
list, show) imports a user's code. Run folders never cause imports: what a
result.json names is recorded for the user, not executed."""

from __future__ import annotations

from pathlib import Path

import typer

PLUGINS_OPTION = typer.Option(
    [], "--plugins", metavar="FILE|MODULE",
    help="import a plugin file (relative to the current folder) or module first; repeatable",
)


def load_cli_plugins(specs: list[str]) -> None:
    if specs:
        from losszoo.plugins import load_plugins

        load_plugins(list(specs), Path.cwd())
