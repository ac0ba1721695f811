"""Which local files a piece of code read: the kit's check that ``plan_inputs()`` is complete.

Uses Python's audit hooks (``open``, ``os.listdir``, ``os.scandir``): one hook
is installed for the process on first use and records only inside
``reading()``. Stat calls raise no audit event; a provider that decides from a
file's existence alone must still list it (the local registry does).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

_lock = threading.Lock()
_installed = False
_active: list[set[str]] = []


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _active:
        return
    if event == "open":
        path, mode, flags = (*args, None, None, None)[:3]
        if isinstance(mode, str):
            reading = "r" in mode or "+" in mode
        else:
            reading = isinstance(flags, int) and (flags & os.O_ACCMODE) != os.O_WRONLY
        if not reading:
            return
    elif event in ("os.listdir", "os.scandir"):
        path = args[0] if args else None
    else:
        return
    if isinstance(path, (str, bytes, os.PathLike)):
        try:
            full = os.path.abspath(os.fsdecode(path))
        except (TypeError, ValueError):
            return
        for seen in list(_active):
            seen.add(full)


def _install() -> None:
    global _installed
    with _lock:
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True


@contextlib.contextmanager
def reading() -> Iterator[set[str]]:
    """The absolute paths of files opened for reading and directories listed in the block."""
    _install()
    seen: set[str] = set()
    _active.append(seen)
    try:
        yield seen
    finally:
        _active.remove(seen)
