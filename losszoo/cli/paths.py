"""Output paths a command will write, checked before any work: a bad one is exit 2 at once,
not a failure after the whole comparison."""

from __future__ import annotations

import os
from pathlib import Path

from losszoo.errors import LosszooError


def check_output_file(path: Path, option: str, suffixes: tuple[str, ...]) -> None:
    """``path`` must name a file with one of ``suffixes`` in a folder that exists (or can be made) and is
    writable; an existing folder is refused rather than written beside."""
    if path.is_dir():
        raise LosszooError(f"{option} {path}: is a folder; give a file name such as {path / ('plot' + suffixes[0])}")
    if path.suffix.lower() not in suffixes:
        raise LosszooError(f"{option} {path}: the file must end in {' or '.join(suffixes)}")
    parent = path.parent if str(path.parent) else Path(".")
    existing = parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise LosszooError(f"{option} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise LosszooError(f"{option} {path}: not writable here")
