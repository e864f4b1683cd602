"""The two consoles every command writes to.

Piped output (CI logs, ``| less``, tests) gets a wide page instead of Rich's
80-column default, so tables are not folded into unreadable cells.
"""

import os
import sys

from rich.console import Console


def _width(stream) -> int | None:
    if os.environ.get("COLUMNS") or stream.isatty():
        return None
    return 160


console = Console(soft_wrap=False, width=_width(sys.stdout))
err_console = Console(stderr=True, soft_wrap=True, width=_width(sys.stderr))
