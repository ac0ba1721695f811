"""The prediction thread pool: daemon threads that answer straight into asyncio futures.

Two differences from ``loop.run_in_executor(ThreadPoolExecutor)``, both measured on the
request path (bench/gateway.py):

* a job's result goes to its asyncio future with one ``call_soon_threadsafe``, instead of a
  ``concurrent.futures.Future`` chained to an asyncio one and wrapped in ``wait_for`` — about
  a fifth of the gateway's own per-request CPU;
* the threads are daemons: ``ThreadPoolExecutor`` joins its threads when the interpreter
  exits, so a model call that hangs would keep ``mlx serve`` from exiting after SIGTERM.

A job whose future is already done when a thread takes it (its request timed out while it
waited) is skipped. A running job cannot be stopped: its thread stays busy until the model
returns.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("mlx.gateway")

#: (loop, future, fn, args); loop and future are None for ``submit``'s jobs, which answer nobody
_Job = tuple[
    asyncio.AbstractEventLoop | None,
    "asyncio.Future[Any] | None",
    Callable[..., Any],
    tuple[Any, ...],
]


class Expired(Exception):
    """A job that did not finish before its deadline."""


def resolve(fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if fut.done():  # it expired meanwhile
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


def expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(Expired())


class DaemonPool:
    def __init__(self, workers: int, name: str):
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    async def run(self, timeout: float, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in a pool thread; ``Expired`` after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._jobs.put((loop, fut, fn, args))
        timer = loop.call_later(timeout, expire, fut)
        try:
            return await fut
        finally:
            timer.cancel()

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        """``fn(*args)`` in a pool thread, answering nobody (it resolves its own futures)."""
        self._jobs.put((None, None, fn, args))

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            loop, fut, fn, args = job
            if loop is None or fut is None:
                try:
                    fn(*args)
                except BaseException:  # pragma: no cover - submit's callers catch their own
                    log.exception("mlx serve: a prediction thread's job failed")
                continue
            if fut.done():  # expired while waiting for a thread
                continue
            try:
                result, exc = fn(*args), None
            except BaseException as e:
                result, exc = None, e
            try:
                loop.call_soon_threadsafe(resolve, fut, result, exc)
            except RuntimeError:  # the loop is closed: the server stopped
                return

    def shutdown(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
