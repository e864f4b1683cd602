"""A content hash of a user's data file or folder, so a changed input is a new run.

A file hashes to the sha256 of its bytes (what ``sha256sum`` prints). A folder
hashes its tree: each file's relative path (``/``-separated, sorted) and the
sha256 of its bytes, so renaming, adding, removing or editing any file changes
the hash, and moving the folder does not. Hidden files and folders (a leading
``.``) are left out: ``.DS_Store``, ``.git`` and losszoo's own image caches
(``.losszoo-cache-*.npz``) are not data.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "a.txt").write_text("hello")
>>> fingerprint(folder / "a.txt")[:12]
'2cf24dba5fb0'
>>> before = fingerprint(folder)
>>> _ = (folder / ".losszoo-cache-x.npz").write_text("ignored")
>>> fingerprint(folder) == before
True
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from stat import S_ISREG

_CHUNK = 1 << 20
#: Hashes already computed in this process, reused while no file's size or mtime has changed.
_memo: dict[str, tuple[tuple[tuple[str, int, int], ...], str]] = {}


def _file_digest(path: str) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as handle:  # unbuffered: a small file is one read, a large one chunks
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.digest()


def walk_files(folder: Path):
    """``(relative path, full path, stat)`` of every visible regular file under ``folder``, in sorted order.

    Links are followed, but each real folder is read once: a link back to a parent cannot loop, and device
    files, sockets and dangling links are not data.
    """
    seen: set[tuple[int, int]] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        here = os.stat(root)
        if (here.st_dev, here.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((here.st_dev, here.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel_root = os.path.relpath(root, folder)
        for name in sorted(files):
            if name.startswith("."):
                continue
            full = os.path.join(root, name)
            try:
                stat = os.stat(full)
            except OSError:  # a dangling link
                continue
            if not S_ISREG(stat.st_mode):
                continue
            yield (name if rel_root == "." else f"{rel_root}/{name}".replace(os.sep, "/")), full, stat


def tree(folder: Path) -> list[tuple[str, int, int]]:
    """``(relative path, size, mtime_ns)`` of every visible file under ``folder``, sorted."""
    return sorted((rel, stat.st_size, stat.st_mtime_ns) for rel, _, stat in walk_files(folder))


def fingerprint(path: str | Path) -> str:
    """The sha256 hex of a file's bytes, or of a folder's visible files and their relative paths."""
    path = Path(path)
    key = str(path.resolve())
    if path.is_dir():
        signature = tuple(tree(path))
    else:
        stat = path.stat()
        signature = (("", stat.st_size, stat.st_mtime_ns),)
    if key in _memo and _memo[key][0] == signature:
        return _memo[key][1]
    if path.is_dir():
        # One thread: for small files a pool of threads measured 2-3x slower (10,000 files: 0.25 s alone).
        total = hashlib.sha256()
        for rel, _, _ in signature:
            total.update(rel.encode("utf-8", "surrogateescape") + b"\0" + _file_digest(os.path.join(path, rel)))
        digest = total.hexdigest()
    else:
        digest = _file_digest(str(path)).hex()
    _memo[key] = (signature, digest)
    return digest
