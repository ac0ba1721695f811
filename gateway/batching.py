"""Adaptive batching: concurrent requests to one model answered by one ``predict`` call.

A scikit-learn ``predict`` costs a fixed ~0.1-0.3 ms of input checks before it looks at a
row, and it holds the interpreter's lock for all of it; one process answering many callers
spends most of its CPU there. So requests to a model whose rows are predicted one by one
(``SklearnModel.batchable``: numeric rows of one width) queue in that model's *lane*, and
one pool thread at a time drains the lane: it takes every request waiting (up to
``max_requests``), checks each alone, predicts all their rows in one call and answers each
its own rows' predictions.

Nothing waits to fill a batch. A request that finds the lane idle starts a drain at once,
so a lone caller pays what it paid without batching; batches form only from requests that
arrived while the previous ``predict`` ran, which is exactly when a caller would otherwise
queue behind it. This is Triton's and MLServer's dynamic batching with a zero delay.

What a caller can see: a malformed request is refused alone (it is checked against the
model's input schema before the batch); when the model raises on a batch, each of its
requests is predicted alone, so only a request the model fails on fails — and that is the
model's failure (``ModelFailure``: 500 ``MODEL_ERROR``), since its input passed the check.
A prediction may differ from the same row predicted alone in the last bits of a float (BLAS
sums a matrix product in a different order than a vector's), as it does when a caller sends
two rows in one request. ``mlx serve --max-batch 1`` turns this off.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from gateway.models import Media, decode
from gateway.pool import DaemonPool, expire, resolve

DEFAULT_MAX_REQUESTS = 32


class Batchable(Protocol):
    def checked_rows(self, doc: Any) -> tuple[list[str] | None, list[list[Any]]]: ...

    def predict_rows(self, columns: list[str] | None, rows: list[list[Any]]) -> list[Any]: ...

    def predict_many(self, parts: Sequence[list[list[Any]]]) -> list[list[Any]] | None: ...


_Item = tuple["asyncio.Future[Any]", bytes, Media]
_Answer = tuple["asyncio.Future[Any]", Any, BaseException | None]


class _Lane:
    """One model's waiting requests; ``draining`` while a pool thread works through them."""

    __slots__ = ("__weakref__", "draining", "items", "lock")

    def __init__(self) -> None:
        self.items: deque[_Item] = deque()
        self.lock = threading.Lock()
        self.draining = False


class Batcher:
    def __init__(self, pool: DaemonPool, max_requests: int = DEFAULT_MAX_REQUESTS):
        if max_requests < 1:
            raise ValueError("max_requests must be >= 1")
        self.pool = pool
        self.max_requests = max_requests
        #: a lane lives as long as its model (a version no longer served takes its lane along)
        self._lanes: weakref.WeakKeyDictionary[Any, _Lane] = weakref.WeakKeyDictionary()
        self._counts_lock = threading.Lock()  # lanes drain in parallel threads
        self._batches = 0  # predict calls that answered more than one request
        self._batched = 0  # requests they answered

    def counts(self) -> tuple[int, int]:
        """(predict calls that answered more than one request, requests they answered)"""
        with self._counts_lock:
            return self._batches, self._batched

    async def run(
        self, timeout: float, model: Batchable, body: bytes, media: Media = Media.JSON
    ) -> tuple[Any, list[Any]]:
        """``(request document, predictions)`` for ``body``; ``pool.Expired`` after ``timeout``."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        lane = self._lanes.get(model)
        if lane is None:
            lane = self._lanes.setdefault(model, _Lane())
        with lane.lock:
            lane.items.append((fut, body, media))
            start = not lane.draining
            lane.draining = True
        if start:
            self.pool.submit(self._drain, model, lane)
        timer = loop.call_later(timeout, expire, fut)
        try:
            result: tuple[Any, list[Any]] = await fut
            return result
        finally:
            timer.cancel()

    def _drain(self, model: Batchable, lane: _Lane) -> None:
        """In a pool thread: answer the lane's requests, a batch at a time, until it is empty."""
        while True:
            with lane.lock:
                if not lane.items:
                    lane.draining = False
                    return
                n = min(len(lane.items), self.max_requests)
                items = [lane.items.popleft() for _ in range(n)]
            try:
                answers = self._answer(model, items)
            except BaseException as exc:  # pragma: no cover - _answer catches per request
                answers = [(fut, None, exc) for fut, _, _ in items]
            self._send(answers)

    def _answer(self, model: Batchable, items: list[_Item]) -> list[_Answer]:
        live = [item for item in items if not item[0].done()]  # not expired meanwhile
        outcomes, shared = predict_all(
            model,
            [body for _, body, _ in live],
            skip=lambda i: live[i][0].done(),
            media=[media for _, _, media in live],
        )
        if shared:
            with self._counts_lock:
                self._batches += 1
                self._batched += len(live)
        answers: list[_Answer] = []
        for (fut, _, _), outcome in zip(live, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                answers.append((fut, None, outcome))
            elif outcome is not None:
                answers.append((fut, outcome, None))
        return answers

    @staticmethod
    def _send(answers: list[_Answer]) -> None:
        """One wake-up of the event loop for the whole batch, not one per request."""
        by_loop: dict[asyncio.AbstractEventLoop, list[_Answer]] = {}
        for answer in answers:
            by_loop.setdefault(answer[0].get_loop(), []).append(answer)
        for loop, mine in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop is closed: the server stopped
                loop.call_soon_threadsafe(_resolve_all, mine)


#: a request's (document, predictions), the exception it raised, or None: skipped (expired)
Outcome = tuple[Any, list[Any]] | BaseException | None


def predict_all(
    model: Batchable,
    bodies: Sequence[bytes],
    skip: Callable[[int], bool] = lambda _: False,
    media: Sequence[Media] | None = None,
) -> tuple[list[Outcome], bool]:
    """Each body's outcome, in order, and whether one ``predict`` answered several of them.

    Each body is decoded (as ``media[i]``, JSON by default) and checked alone (a bad one
    fails alone: ``InputError``), the good ones' rows go to one ``predict_many``; if the model
    raises on that batch, each is predicted alone (``skip(i)`` is asked first: a request that
    expired meanwhile is not predicted), and one the model raises on alone is its
    ``ModelFailure``. Runs in a worker.
    """
    outcomes: list[Outcome] = [None] * len(bodies)
    ready: list[tuple[int, Any, list[str] | None, list[list[Any]]]] = []
    for i, body in enumerate(bodies):
        try:
            doc = decode(body, media[i] if media is not None else Media.JSON)
            columns, rows = model.checked_rows(doc)
        except Exception as exc:
            outcomes[i] = exc
            continue
        ready.append((i, doc, columns, rows))
    many = model.predict_many([r[3] for r in ready]) if len(ready) > 1 else None
    if many is not None:
        for (i, doc, _, _), out in zip(ready, many, strict=True):
            outcomes[i] = (doc, out)
        return outcomes, True
    for i, doc, columns, rows in ready:  # alone, or the batch was refused: one by one
        if skip(i):
            continue
        try:
            outcomes[i] = (doc, model.predict_rows(columns, rows))
        except Exception as exc:
            outcomes[i] = exc
    return outcomes, False


def _resolve_all(answers: list[_Answer]) -> None:
    for fut, result, exc in answers:
        resolve(fut, result, exc)
