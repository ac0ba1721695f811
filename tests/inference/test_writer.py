"""LogWriter: batches, the queue bound, retries, close, and real processes getting SIGTERM and
SIGKILL. Waits are bounded by generous deadlines; nothing asserts on speed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text

from inference import schema
from inference.records import Feedback
from inference.store import LogStore, open_log, record_row
from inference.writer import LogState, LogWriter
from tests.conftest import REPO
from tests.inference.conftest import rec

DEADLINE_S = 60.0


def _ids(store: LogStore) -> list[str]:
    with store.engine.connect() as conn:
        return list(
            conn.execute(text("SELECT request_id FROM mlx_inference ORDER BY id")).scalars()
        )


def _count(store: LogStore, table: str = "mlx_inference") -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar() or 0)


def _eventually(check: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + DEADLINE_S
    while not check():
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.01)


@contextmanager
def _table_missing(store: LogStore) -> Iterator[None]:
    """Make every write fail like a database that is away: the table is renamed meanwhile."""
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE mlx_inference RENAME TO mlx_inference_away"))
    try:
        yield
    finally:
        with store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE mlx_inference_away RENAME TO mlx_inference"))


def test_batches_are_bounded_and_one_transaction_each(store: LogStore) -> None:
    batches: list[int] = []
    writer = LogWriter(
        store, flush_interval=0.05, batch_size=10, on_flush=lambda b: batches.append(len(b))
    )
    for i in range(35):
        assert writer.submit(rec(f"r{i}"))
    assert writer.submit(Feedback(request_id="r1", endpoint="fraud", value=1))
    assert writer.flush(timeout=DEADLINE_S)
    assert sum(batches) == 36 and max(batches) <= 10
    assert _count(store, "mlx_inference_batches") == len(batches)  # one committed batch each
    assert _ids(store) == [f"r{i}" for i in range(35)]  # in submission order
    assert _count(store, "mlx_feedback") == 1
    stats = writer.stats()
    assert (stats.accepted, stats.written, stats.pending, stats.dropped) == (36, 36, 0, 0)
    assert writer.close()


def test_a_full_batch_is_written_without_waiting_for_the_interval(store: LogStore) -> None:
    writer = LogWriter(store, flush_interval=3600.0, batch_size=25)
    for i in range(25):
        writer.submit(rec(f"r{i}"))
    _eventually(lambda: _count(store) == 25, "the full batch")
    writer.submit(rec("lone"))
    assert writer.pending == 1  # an hour-long interval: it waits
    assert writer.close()
    assert _count(store) == 26


def test_the_interval_writes_a_partial_batch(store: LogStore) -> None:
    writer = LogWriter(store, flush_interval=0.05, batch_size=10**6)
    for i in range(3):
        writer.submit(rec(f"r{i}"))
    # the rows are visible once committed; the writer counts the flush just after: wait for both
    _eventually(lambda: _count(store) == 3 and writer.stats().flushes >= 1, "the interval's flush")
    assert writer.stats().flushes == 1  # one flush took the partial batch of 3
    writer.close()


def test_queue_bound_drops_and_counts_and_submit_never_waits_for_the_database(
    sqlite_url: str,
) -> None:
    store = open_log(sqlite_url)
    writer = LogWriter(store, flush_interval=0.01, batch_size=5, max_pending=20)
    blocker = sqlite3.connect(sqlite_url[len("sqlite:///") :], isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # the writer's inserts now wait on this lock
    results: list[int] = []
    submitter = threading.Thread(
        target=lambda: results.extend(writer.submit(rec(f"r{i}")) for i in range(30))
    )
    submitter.start()
    submitter.join(DEADLINE_S)
    blocked = submitter.is_alive()
    blocker.execute("ROLLBACK")
    assert not blocked, "submit waited for the database"
    assert results == [*range(1, 21)] + [0] * 10  # sequence numbers; 0: dropped
    stats = writer.stats()
    assert (stats.accepted, stats.dropped) == (20, 10) and stats.pending <= 20
    assert writer.flush(timeout=DEADLINE_S)
    assert _ids(store) == [f"r{i}" for i in range(20)]
    assert writer.close()


def test_a_failed_flush_is_kept_and_retried(store: LogStore) -> None:
    writer = LogWriter(store, flush_interval=0.01, batch_size=4)
    with _table_missing(store):
        for i in range(10):
            assert writer.submit(rec(f"r{i}"))
        _eventually(lambda: writer.stats().flush_errors >= 2, "two failed attempts")
        assert writer.stats().written == 0 and writer.pending == 10
    assert writer.flush(timeout=DEADLINE_S)
    assert _ids(store) == [f"r{i}" for i in range(10)]  # each once, in order
    stats = writer.stats()
    assert (stats.written, stats.pending, stats.lost) == (10, 0, 0)
    writer.close()


def test_a_record_the_database_refuses_is_skipped_alone(store: LogStore) -> None:
    writer = LogWriter(store, flush_interval=3600.0)
    for i in range(4):
        writer.submit(rec(f"r{i}"))
    writer.submit(rec("bad", status="not a status"))  # type: ignore[arg-type]
    assert writer.flush(timeout=DEADLINE_S)
    assert sorted(_ids(store)) == ["r0", "r1", "r2", "r3"]
    stats = writer.stats()
    assert (stats.written, stats.rejected) == (4, 1)
    writer.close()


def test_close_with_the_database_away_gives_up_at_its_deadline(store: LogStore) -> None:
    writer = LogWriter(store, flush_interval=0.01)
    with _table_missing(store):
        for i in range(5):
            writer.submit(rec(f"r{i}"))
        assert writer.close(timeout=0.3) is False
    stats = writer.stats()
    assert (stats.lost, stats.written, stats.pending) == (5, 0, 0)
    assert writer.submit(rec("after")) == 0 and writer.stats().dropped == 1


def test_many_threads_submitting(store: LogStore) -> None:
    writer = LogWriter(store, flush_interval=0.02)

    def work(t: int) -> None:
        for i in range(1000):
            writer.submit(rec(f"t{t}-{i}"))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert writer.close()
    ids = _ids(store)
    assert len(ids) == len(set(ids)) == 4000
    assert writer.stats().accepted == 4000


# -- real processes --------------------------------------------------------------------------
def _child(url: str, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.inference.writer_child", url, mode],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigterm_loses_nothing(log_url: str) -> None:
    open_log(log_url).close()  # tables exist before the child starts
    child = _child(log_url, "sigterm")
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready", child.stderr.read() if child.stderr else ""
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=DEADLINE_S * 2)
    assert child.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    accepted = report["closed"]["accepted"]
    # nothing had been flushed when SIGTERM came (an hour-long interval): close wrote it all
    assert report["queued"]["written"] == 0 and report["queued"]["pending"] == accepted
    assert report["ok"] and report["closed"]["written"] == accepted >= 1000
    store = open_log(log_url)
    assert _ids(store) == [f"{seq:08d}" for seq in range(accepted)]


def test_sigkill_loses_at_most_what_was_not_yet_flushed(log_url: str) -> None:
    open_log(log_url).close()
    child = _child(log_url, "sigkill")
    assert child.stdout is not None
    reported: list[int] = []
    while len(reported) < 8:
        line = child.stdout.readline()
        assert line, child.stderr.read() if child.stderr else ""
        reported.append(int(line.split()[1]))
    child.kill()
    out, _err = child.communicate(timeout=DEADLINE_S)
    reported += [int(line.split()[1]) for line in out.splitlines() if line.startswith("flushed")]
    assert child.returncode == -signal.SIGKILL

    stored = [int(i) for i in _ids(open_log(log_url))]
    # every batch is committed before the next: what is stored is a prefix of what was submitted
    assert stored == list(range(len(stored)))
    last_flushed = max(reported)
    # everything reported flushed is there, and nothing else is missing but records queued
    # after the last completed flush (their numbers are higher than anything flushed)
    assert len(stored) >= last_flushed + 1
    # beyond that, at most the one batch committed but not yet reported when the kill came
    assert len(stored) - (last_flushed + 1) <= 200  # the child's batch_size
    assert reported == sorted(reported)


def test_a_process_that_exits_without_closing_still_writes_everything(sqlite_url: str) -> None:
    open_log(sqlite_url).close()
    child = _child(sqlite_url, "atexit")
    _out, err = child.communicate(timeout=DEADLINE_S)
    assert child.returncode == 0, err
    assert _ids(open_log(sqlite_url)) == [f"{seq:08d}" for seq in range(500)]


class _LostReply:
    """A store whose first commit goes through but whose answer is lost (the connection drops
    during COMMIT): the writer sees an error and must retry without writing the batch twice."""

    def __init__(self, store: LogStore):
        self.store = store
        self.failures = 0

    def write(self, *args: object, **kw: object) -> bool:
        done = self.store.write(*args, **kw)  # type: ignore[arg-type]
        if self.failures == 0:
            from sqlalchemy.exc import OperationalError

            self.failures += 1
            raise OperationalError("COMMIT", {}, Exception("server closed the connection"))
        return done


def test_a_batch_retried_after_a_lost_commit_reply_is_written_once(store: LogStore) -> None:
    lossy = _LostReply(store)
    writer = LogWriter(lossy, flush_interval=0.01, batch_size=50)  # type: ignore[arg-type]
    for i in range(30):
        writer.submit(rec(f"r{i}"))
    writer.submit(Feedback(request_id="r1", endpoint="fraud", value=1))
    assert writer.flush(timeout=DEADLINE_S)
    assert lossy.failures == 1 and writer.stats().flush_errors >= 1
    assert _ids(store) == [f"r{i}" for i in range(30)]  # each once
    assert _count(store, "mlx_feedback") == 1
    stats = writer.stats()
    assert (stats.written, stats.pending, stats.lost) == (31, 0, 0)
    assert writer.close()


def test_a_retry_while_the_first_commit_is_still_finishing_writes_nothing_twice(
    store: LogStore,
) -> None:
    """The first attempt's transaction has not finished committing when the retry arrives (its
    COMMIT's answer was lost, the server still at it). The retry must wait for it and then
    skip the batch — not see nothing, collide on the batch id and write the rows again."""
    batch = [rec(f"r{i}") for i in range(5)]
    first = store.engine.connect()
    tx = first.begin()
    first.execute(schema.batches.insert().values(batch_id="b-1", ts=time.time(), records=5))
    first.execute(schema.inference.insert(), [record_row(r) for r in batch])
    outcome: list[object] = []

    def retry() -> None:
        try:
            outcome.append(store.write(batch, batch_id="b-1"))
        except Exception as exc:
            outcome.append(exc)

    retrying = threading.Thread(target=retry)
    retrying.start()
    retrying.join(0.5)  # it waits on the first transaction (a lock), whatever the machine
    tx.commit()
    first.close()
    retrying.join(DEADLINE_S)
    assert outcome == [False]
    assert _ids(store) == [f"r{i}" for i in range(5)]


def test_health_says_failing_while_writes_fail_and_ok_once_they_succeed(store: LogStore) -> None:
    writer = LogWriter(store, flush_interval=0.01)
    assert writer.health().state is LogState.OK
    with _table_missing(store):
        writer.submit(rec("r0"))
        _eventually(lambda: writer.health().state is LogState.FAILING, "failing")
        health = writer.health()
        assert health.error and "mlx_inference" in health.error and health.since is not None
    _eventually(lambda: writer.health().state is LogState.OK, "ok again")
    assert writer.flush(timeout=DEADLINE_S) and _ids(store) == ["r0"]
    assert writer.close()


def test_a_deleted_database_file_is_gone_and_its_records_lost_not_written_into_the_void(
    sqlite_url: str,
) -> None:
    store = open_log(sqlite_url)
    writer = LogWriter(store, flush_interval=0.01)
    writer.submit(rec("before"))
    assert writer.flush(timeout=DEADLINE_S)
    path = sqlite_url[len("sqlite:///") :]
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    # noticed on an idle tick, before any record asks
    _eventually(lambda: writer.health().state is LogState.GONE, "gone")
    assert "was deleted" in (writer.health().error or "")
    for i in range(3):
        writer.submit(rec(f"after-{i}"))
    assert writer.flush(timeout=DEADLINE_S)  # nothing waits: they are lost at once
    stats = writer.stats()
    assert (stats.written, stats.lost, stats.pending) == (1, 3, 0)
    assert writer.close() is False


def test_eager_writes_report_each_record_done(store: LogStore) -> None:
    done: list[int] = []
    writer = LogWriter(store, flush_interval=3600.0, eager=True, on_done=done.append)
    seqs = [writer.submit(rec(f"r{i}")) for i in range(3)]
    assert seqs == [1, 2, 3]
    _eventually(lambda: bool(done) and done[-1] == 3, "every record written, with no interval")
    assert _ids(store) == ["r0", "r1", "r2"]
    assert writer.close()
