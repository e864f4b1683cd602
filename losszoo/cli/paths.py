"""Output paths a command will write, checked before any work: a bad one is exit 2 at once,
not a failure after the whole comparison."""

from __future__ import annotations

import tempfile
from pathlib import Path

from losszoo.errors import LosszooError


def check_output_file(path: Path, option: str, suffixes: tuple[str, ...]) -> None:
    """``path`` must name a file with one of ``suffixes`` in a folder that exists (or can be made) and is
    writable; an existing folder is refused rather than written beside.

    Writability is proved by writing, not by ``os.access``: root passes every permission check but still
    cannot write on a read-only file system or under ``/proc``. Nothing is left behind: the probe is a
    nameless temporary file in the nearest folder that exists, or the file itself opened to append."""
    if path.is_dir():
        raise LosszooError(f"{option} {path}: is a folder; give a file name such as {path / ('plot' + suffixes[0])}")
    if path.suffix.lower() not in suffixes:
        raise LosszooError(f"{option} {path}: the file must end in {' or '.join(suffixes)}")
    existing = path.parent if str(path.parent) else Path(".")
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise LosszooError(f"{option} {path}: {existing} is a file, not a folder")
    try:
        if path.exists():
            with open(path, "ab"):
                pass
        else:
            with tempfile.TemporaryFile(dir=existing):
                pass
    except OSError as error:
        raise LosszooError(f"{option} {path}: cannot write there ({error.strerror or error})") from None
