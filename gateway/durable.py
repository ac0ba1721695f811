"""How much of the inference log a crash may take: ``mlx serve --log-durability``.

``batched`` (the default): an answer is sent first and its record is written with the others
of its flush, every 0.2 s. A clean stop (SIGTERM, Ctrl-C) writes everything; a crash or
``kill -9`` loses the records of the requests answered since the last flush began — at most
0.2 s of answers plus the batch being committed at that moment.

``sync``: an answer waits until its record is committed (on SQLite, in the WAL: in the OS,
so a killed process loses nothing it answered; a power loss can still take the last commits,
as everywhere with ``synchronous=NORMAL``). The writer then commits as soon as anything is
queued: records that arrive during a commit share the next one (group commit), so the wait is
about one commit. While the log cannot be written (``failing``) an answer waits at most its
endpoint's ``timeout_s`` and is then sent anyway, counted in
``mlx_gateway_log_unconfirmed_total``; once the log's file is gone, answers go out at once and
their records are counted lost. Either way the log is reported degraded (``/healthz``,
``/readyz``) while that lasts.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from enum import StrEnum


class Durability(StrEnum):
    BATCHED = "batched"
    SYNC = "sync"


class LogWaits:
    """Answers waiting for their records (by the writer's sequence numbers) to be written.

    ``done(n)`` is called from the writer's thread once its first ``n`` records are written
    (or refused, or lost); the waits up to ``n`` are released on the event loop.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._heap: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._done = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def done(self, n: int) -> None:
        """From the writer's thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._release, n)

    def _release(self, n: int) -> None:
        self._done = max(self._done, n)
        heap = self._heap
        while heap and heap[0][0] <= self._done:
            fut = heapq.heappop(heap)[2]
            if not fut.done():
                fut.set_result(None)

    async def wait(self, seq: int, timeout_s: float) -> bool:
        """Wait until record ``seq`` is written; False if ``timeout_s`` passed first."""
        if seq <= self._done:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (seq, next(self._order), fut))
        try:
            async with asyncio.timeout(timeout_s):
                await fut
            return True
        except TimeoutError:
            return False
