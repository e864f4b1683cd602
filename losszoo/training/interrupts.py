"""Telling a real Ctrl-C from a KeyboardInterrupt that code raised.

Only a real SIGINT is recorded "interrupted by the user" and stops the grid;
a KeyboardInterrupt a plugin raises is that run's failure, and the others go on.
The handler below notes the signal, then interrupts as Python's default does.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

_received = False


def received() -> bool:
    """Whether a SIGINT arrived since ``listening`` began (or ``note`` was called by another handler)."""
    return _received


def note() -> None:
    """For a handler of its own (a worker process's): a real SIGINT arrived."""
    global _received
    _received = True


def _handler(signum: int, frame: object) -> None:
    note()
    raise KeyboardInterrupt


@contextlib.contextmanager
def listening() -> Iterator[None]:
    """While training in the main thread under Python's default SIGINT handling, note real SIGINTs."""
    global _received
    _received = False
    ours = threading.current_thread() is threading.main_thread() and (
        signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    if ours:
        signal.signal(signal.SIGINT, _handler)
    try:
        yield
    finally:
        if ours:
            signal.signal(signal.SIGINT, signal.default_int_handler)
