"""A heartbeat for anything slow: "evals.x: Still running... [10s elapsed]", as Terraform
prints "Still creating...". One monitor thread watches every operation registered with
``watch``; registering is a dict insert, so wrapping 10,000 quick calls costs nothing.

The interval is 10 s (``MLX_HEARTBEAT_S`` changes it: tests use a fraction of a second).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from itertools import count

Echo = Callable[[str], None]


class Heartbeat:
    def __init__(self, echo: Echo, interval: float | None = None, verb: str = "Still running"):
        self.echo = echo
        self.verb = verb
        self.interval = interval or float(os.environ.get("MLX_HEARTBEAT_S") or 10)
        self._watched: dict[int, tuple[str, float, float]] = {}  # id -> label, start, next
        self._ids = count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def watch(self, label: str, verb: str | None = None) -> Iterator[None]:
        """Print a heartbeat for ``label`` every interval while the block runs."""
        key = next(self._ids)
        start = time.monotonic()
        with self._lock:
            self._watched[key] = (f"{label}: {verb or self.verb}...", start, start + self.interval)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mlx-heartbeat", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._watched.pop(key, None)

    def _run(self) -> None:
        tick = min(1.0, self.interval / 2)
        while not self._stop.wait(tick):
            now = time.monotonic()
            due = []
            with self._lock:
                for key, (label, start, at) in list(self._watched.items()):
                    if now >= at:
                        due.append(f"{label} [{int(now - start)}s elapsed]")
                        self._watched[key] = (label, start, at + self.interval)
            for line in due:
                self.echo(line)

    def close(self) -> None:
        self._stop.set()


@contextlib.contextmanager
def heartbeat(echo: Echo, label: str, verb: str = "Still running") -> Iterator[None]:
    """One watched operation with its own monitor (for a single slow call: ``mlx eval``)."""
    beat = Heartbeat(echo, verb=verb)
    try:
        with beat.watch(label):
            yield
    finally:
        beat.close()
