"""Claims: which process is training a run folder right now.

Two ``losszoo train`` processes pointed at one runs folder share the work
instead of doubling it: before a run trains, its process claims the folder by
holding an exclusive ``flock`` on ``<run>/.claim`` (the file names the holder's
pid and host, for the note the other process shows). The operating system
drops the lock when the holder exits, however it exits, so the claim of a
killed process is free again at once: no stale claims, no pid guessing.

A claim is taken with ``try_claim`` (never waits) and given back with
``Claim.release`` once the run's ``result.json`` is written. ``flock`` works on
local disks and on NFS (Linux emulates it with POSIX locks there). Where
``fcntl`` does not exist (Windows), claims always succeed and protect nothing.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

CLAIM_FILE = ".claim"


class ClaimError(OSError):
    """The claim file can be opened but not locked: neither held by another nor ours to take."""


class Claim:
    """A held claim on one run folder; ``release`` it when the run is recorded."""

    def __init__(self, path: Path, fd: int | None):
        self.path = path
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            # While we hold the lock nobody else can have replaced the file at `path`.
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        # A claim dropped without release (an exception between claiming and recording) must
        # not hold the run for the rest of a long-lived process, e.g. a notebook's kernel.
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def try_claim(folder: Path) -> Claim | None:
    """Claim ``folder`` for this process, or None when another holder has it; a :class:`ClaimError` when its
    claim file cannot be locked at all.

    A second claim from the same process fails too (locks belong to open
    files, not processes), so two grids in one process cannot collide either.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CLAIM_FILE
    if fcntl is None:  # pragma: no cover - Windows
        return Claim(path, None)
    for _ in range(20):
        try:  # 0666 less the umask, as the run's files: in a shared runs folder others may claim it later
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError:  # another user's claim file (theirs, live or left by a killed process)
            fd = os.open(path, os.O_RDONLY)  # a lock needs no write access
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # held by another open file: a live claim
            os.close(fd)
            return None
        except OSError as error:  # NFS locks only files open for writing: another user's claim file there
            os.close(fd)
            raise ClaimError(f"cannot lock its claim file {path} ({error.strerror or error}); if nobody is "
                             "training this run now, remove that file") from None
        # The holder before us may have unlinked the file between our open and our lock:
        # the lock only counts if it is on the file that is at `path` now.
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        mine = os.fstat(fd)
        if current is None or (current.st_ino, current.st_dev) != (mine.st_ino, mine.st_dev):
            os.close(fd)
            continue
        with contextlib.suppress(OSError):  # who holds it, for others' notes; not on another user's file
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        return Claim(path, fd)
    return None  # pragma: no cover - only under a storm of claims and releases


def claim_holder(folder: Path) -> str:
    """Who holds the claim on ``folder``, in words, for the note a skipped run shows."""
    try:
        pid, _, host = (folder / CLAIM_FILE).read_text().strip().partition(" ")
    except OSError:
        return "another process"
    if not pid:
        return "another process"
    return f"process {pid}" + (f" on {host}" if host and host != socket.gethostname() else "")
