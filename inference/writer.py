"""``LogWriter``: request handlers submit records; a background thread writes them in batches.

``submit`` appends to a bounded in-memory queue under a lock held for O(1) work: it never
blocks on the database, never raises, and is safe from any thread and from an asyncio event
loop. When the queue holds ``max_pending`` records (queued plus being written), a new record
is dropped and counted. The thread writes whatever is queued every ``flush_interval`` seconds,
or as soon as ``batch_size`` records are waiting, in batches of at most ``batch_size``, one
transaction each.

``flush_interval`` defaults to 0.2 s: at 1,000 requests/s that is a 200-record batch, large
enough that a commit costs a few milliseconds of a 200 ms budget (bench/inference_log.py), and
short enough that ``mlx logs --follow`` feels live and a SIGKILL loses at most 0.2 s of records
(those queued since the last flush began, plus the batch being committed).

A batch that fails to commit (database down, locked) is kept and retried with exponential
backoff (50 ms doubling to 5 s) while new records queue up behind it, within ``max_pending``.
Each batch carries an id, so a retry after a commit whose answer was lost does not insert it
twice. A batch the database refuses for its content (a value it cannot store) is written record
by record and the bad ones are counted as ``rejected``.

``close()`` (the gateway calls it on shutdown, i.e. on SIGTERM) stops accepting, writes
everything queued and returns whether nothing was lost. It is also registered with ``atexit``.
Call it from normal code, not from inside a signal handler (set a flag there, as uvicorn does).

``health()`` says whether the log is being written (``LogState``): ``failing`` from the first
batch that could not be written until one is (the records are kept and retried), ``gone`` once
the database file vanished under the writer (``inference.store.LogGone``: every record since is
counted ``lost`` at once, never written into a deleted file). The store is also checked on every
tick with nothing to write, so an idle gateway notices a deleted file within ``flush_interval``.

``eager=True`` writes whatever is queued as soon as the thread is free (a group commit: records
that arrive during a commit share the next one) instead of every ``flush_interval``; with
``on_done`` it is how ``mlx serve --log-durability sync`` holds each answer until its record is
in the database. ``submit`` returns the record's sequence number (1, 2, …; 0 if it was dropped),
and ``on_done(n)`` is called from the writer thread once the first ``n`` are written (or
rejected, or lost).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from inference.records import Feedback, InferenceRecord

if TYPE_CHECKING:
    from inference.store import LogStore

log = logging.getLogger("mlx.inference")

Item = InferenceRecord | Feedback

DEFAULT_FLUSH_INTERVAL = 0.2
DEFAULT_BATCH_SIZE = 500
DEFAULT_MAX_PENDING = 50_000
_BACKOFF_START_S = 0.05
_BACKOFF_MAX_S = 5.0


@dataclass(frozen=True)
class WriterStats:
    """Counters for the gateway's ``/metrics``. ``accepted = written + rejected + lost +
    pending`` once the writer is idle; ``dropped`` were never accepted (queue full, closed)."""

    accepted: int
    written: int
    dropped: int
    rejected: int
    lost: int
    pending: int
    flushes: int
    flush_errors: int


class LogState(StrEnum):
    """Whether the writer can write (``LogWriter.health``)."""

    OK = "ok"
    FAILING = "failing"  # the last write failed: records are kept and retried
    GONE = "gone"  # the database file vanished: records are counted lost, never retried


@dataclass(frozen=True)
class LogHealth:
    state: LogState
    error: str | None = None  # the last failure, one line
    since: float | None = None  # when the state began (epoch s)

    @property
    def ok(self) -> bool:
        return self.state is LogState.OK


class _BadData(Exception):
    """The database refused a batch for what is in it (not for being unavailable)."""


class _Gone(Exception):
    """The database file vanished: nothing can be written any more."""


class LogWriter:
    def __init__(
        self,
        store: LogStore,
        *,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_pending: int = DEFAULT_MAX_PENDING,
        on_flush: Callable[[Sequence[Item]], None] | None = None,
        eager: bool = False,
        on_done: Callable[[int], None] | None = None,
    ):
        if flush_interval <= 0 or batch_size < 1 or max_pending < 1:
            raise ValueError("flush_interval must be > 0, batch_size and max_pending >= 1")
        self.store = store
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.on_flush = on_flush
        self.eager = eager
        self.on_done = on_done
        self._health = LogHealth(LogState.OK)
        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)
        self._queue: deque[Item] = deque()
        self._inflight = 0
        self._accepted = self._written = self._dropped = self._rejected = self._lost = 0
        self._flushes = self._flush_errors = 0
        self._closing = False
        self._deadline = float("inf")
        self._flush_now = False
        self._gave_up = False  # close's deadline passed with the database still failing
        self._wake = threading.Event()  # a batch is full, a flush or close was asked
        self._thread = threading.Thread(target=self._run, name="mlx-log-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # -- the request path --------------------------------------------------------------
    def submit(self, item: Item) -> int:
        """Queue a record (or feedback) to be written: its sequence number (1, 2, …), or 0 if it
        was dropped (queue full, closing). Never raises."""
        try:
            with self._lock:
                if self._closing or len(self._queue) + self._inflight >= self.max_pending:
                    self._dropped += 1
                    return 0
                self._queue.append(item)
                self._accepted += 1
                seq = self._accepted
                wake = self.eager or len(self._queue) >= self.batch_size
            if wake and not self._wake.is_set():
                self._wake.set()
            return seq
        except Exception:  # pragma: no cover - nothing above raises; the promise is kept anyway
            return 0

    # -- control -------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        return len(self._queue) + self._inflight

    def health(self) -> LogHealth:
        return self._health

    def _set_health(self, state: LogState, error: str | None = None) -> None:
        if state is LogState.OK:
            if self._health.state is LogState.FAILING:
                log.warning("inference log: writing again after a database error")
                self._health = LogHealth(LogState.OK)
            return
        if self._health.state is LogState.GONE:
            return  # terminal
        if self._health.state is not state:
            self._health = LogHealth(state, error, time.time())
        elif error != self._health.error:
            self._health = LogHealth(state, error, self._health.since)

    def stats(self) -> WriterStats:
        with self._lock:
            return WriterStats(
                accepted=self._accepted,
                written=self._written,
                dropped=self._dropped,
                rejected=self._rejected,
                lost=self._lost,
                pending=len(self._queue) + self._inflight,
                flushes=self._flushes,
                flush_errors=self._flush_errors,
            )

    def flush(self, timeout: float | None = None) -> bool:
        """Write everything accepted so far now; True once it is written (or rejected)."""
        with self._lock:
            target = self._accepted
            self._flush_now = True
        self._wake.set()
        with self._progress:
            return self._progress.wait_for(lambda: self._done() >= target, timeout)

    def close(self, timeout: float = 30.0) -> bool:
        """Stop accepting, write everything queued (retrying for up to ``timeout`` seconds if
        the database is down) and stop the thread. True if every accepted record was written
        or rejected; records still unwritten at the deadline are counted as ``lost``."""
        with self._lock:
            if not self._closing:
                self._closing = True
                self._deadline = time.monotonic() + timeout
        atexit.unregister(self.close)
        self._wake.set()
        self._thread.join(timeout + 5.0)
        with self._lock:
            return self._lost == 0 and not self._queue and self._inflight == 0

    # -- the writer thread ----------------------------------------------------------------
    def _done(self) -> int:
        return self._written + self._rejected + self._lost

    def _run(self) -> None:
        next_tick = time.monotonic() + self.flush_interval
        while True:
            try:
                self._wake.wait(max(0.0, next_tick - time.monotonic()))
                self._wake.clear()
                with self._lock:
                    closing = self._closing
                    due = (
                        closing
                        or self._flush_now
                        or len(self._queue) >= self.batch_size
                        or (self.eager and bool(self._queue))
                        or time.monotonic() >= next_tick
                    )
                    if due:
                        self._flush_now = False
                        items, self._queue = self._queue, deque()
                        self._inflight += len(items)
                if not due:
                    continue
                started = time.monotonic()
                if not items:
                    self._check_store()
                while items:
                    batch = [items.popleft() for _ in range(min(self.batch_size, len(items)))]
                    self._write(batch)
                next_tick = started + self.flush_interval
                if closing:  # nothing is accepted once closing: the queue stays empty
                    return
            except Exception:  # pragma: no cover - a bug here must not stop the log
                log.exception("inference log: writer thread error")
                time.sleep(self.flush_interval)

    def _check_store(self) -> None:
        """Between batches: notice a database file that vanished (``gone``)."""
        if self._health.state is LogState.GONE:
            return
        check = getattr(self.store, "check", None)
        if check is None:
            return
        from inference.store import LogGone

        try:
            check()
        except LogGone as exc:
            self._gone(str(exc))

    def _gone(self, message: str) -> None:
        if self._health.state is not LogState.GONE:
            log.error("inference log: %s; records from now on are lost", message)
        self._set_health(LogState.GONE, message)

    def _write(self, batch: list[Item]) -> None:
        batch_id = uuid.uuid4().hex
        written = rejected = lost = 0
        try:
            self._commit(batch, batch_id)
            written = len(batch)
        except _BadData:
            for i, item in enumerate(batch):
                try:
                    self._commit([item], f"{batch_id}.{i}")
                    written += 1
                except _BadData as exc:
                    rejected += 1
                    log.warning("inference log: a record was refused and skipped: %s", exc)
                except (TimeoutError, _Gone):
                    lost += 1
        except TimeoutError:
            lost = len(batch)
            log.error("inference log: %d record(s) not written before close's deadline", lost)
        except _Gone:
            lost = len(batch)
        with self._progress:
            self._inflight -= len(batch)
            self._written += written
            self._rejected += rejected
            self._lost += lost
            if written:
                self._flushes += 1
            done = self._done()
            self._progress.notify_all()
        if written and self.on_flush is not None:
            try:
                self.on_flush(batch)
            except Exception:
                log.exception("inference log: on_flush callback failed")
        if self.on_done is not None:
            try:
                self.on_done(done)
            except Exception:
                log.exception("inference log: on_done callback failed")

    def _commit(self, batch: list[Item], batch_id: str) -> None:
        """Write one batch, retrying while the database is unavailable; ``TimeoutError`` once
        ``close``'s deadline passed; ``_BadData`` if the database refuses the content;
        ``_Gone`` if its file vanished (nothing will ever be written there)."""
        from sqlalchemy.exc import DataError, IntegrityError

        from inference.store import LogGone

        records = [i for i in batch if isinstance(i, InferenceRecord)]
        feedback = [i for i in batch if isinstance(i, Feedback)]
        delay = _BACKOFF_START_S
        failing = False
        while True:
            if self._health.state is LogState.GONE:
                raise _Gone
            if self._gave_up:
                raise TimeoutError
            try:
                self.store.write(records, feedback, batch_id=batch_id)
                self._set_health(LogState.OK)
                return
            except LogGone as exc:
                self._gone(str(exc))
                raise _Gone from exc
            except (DataError, IntegrityError, TypeError, ValueError, OverflowError) as exc:
                with self._lock:
                    self._flush_errors += 1
                raise _BadData(_one_line(exc)) from exc
            except Exception as exc:
                with self._lock:
                    self._flush_errors += 1
                reason = _one_line(exc)
                self._set_health(LogState.FAILING, reason)
                if not failing:
                    log.warning(
                        "inference log: cannot write (%s); keeping %d record(s) and retrying",
                        reason,
                        self.pending,
                    )
                failing = True
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                self._gave_up = True
                raise TimeoutError
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, _BACKOFF_MAX_S)


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {lines[0] if lines else ''}"
