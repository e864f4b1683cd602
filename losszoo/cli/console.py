"""The two consoles every command writes to, and the few ways it writes.

stdout carries what a command produces (a table, csv, json, md); progress,
warnings and errors go to stderr, so ``losszoo compare > table.txt`` and
pipes get clean results.

Every piece of text is printed as it is: the consoles parse no markup and
substitute no emoji codes, so a path such as ``runs/[/x]``, a pattern such
as ``'[/x]'`` or a message about ``logits[batch, classes]`` reaches the user
intact. Styling is never written inside strings: it is a ``style=`` or a
``(text, style)`` part of :func:`line`.

Piped output (CI logs, ``| less``, tests) gets a wide page instead of Rich's
80-column default, so tables are not folded into unreadable cells; ``COLUMNS``
sets the width where the output is not a terminal.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.text import Text


def _width(stream) -> int | None:
    if os.environ.get("COLUMNS") or stream.isatty():
        return None
    return 160


def _console(stream, stderr: bool) -> Console:
    return Console(stderr=stderr, soft_wrap=stderr, width=_width(stream), markup=False, emoji=False,
                   highlight=False)


console = _console(sys.stdout, stderr=False)
err_console = _console(sys.stderr, stderr=True)


def line(*parts: str | tuple[str, str]) -> Text:
    """One line from literal parts: ``line(("warning:", "yellow"), " ", message)``."""
    return Text.assemble(*parts)


def warn(message: str) -> None:
    err_console.print(line(("warning:", "yellow"), " ", message))


def note(message: str) -> None:
    """Progress and summaries: stderr, dim, unless ``--quiet``."""
    if not QUIET:
        err_console.print(message, style="dim")


#: Set by ``losszoo --quiet``: only results, warnings and errors are printed.
QUIET = False
