"""The state's group commit: writes handed over without waiting share transactions, are
committed in the order they arrived, and each one's future says when it is durable."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, text

from state.commits import GroupCommit


class Store:
    """A real SQLite table behind a GroupCommit; the first transaction can be held open."""

    def __init__(self, tmp_path: Path):
        self.engine: Engine = create_engine(f"sqlite:///{tmp_path / 'g.db'}")
        with self.engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (address TEXT, n INTEGER)"))
        self.batches: list[list[str]] = []
        self.hold = threading.Event()
        self.held = threading.Event()
        self.commits = GroupCommit(self.engine, self.run)

    def run(self, conn: Connection, key: str, rows: Sequence[dict[str, Any]]) -> None:
        if not self.held.is_set():
            self.held.set()
            self.hold.wait(10)  # the first transaction stays open until the test says
        if any(r.get("fail") for r in rows):
            raise ValueError("bad row")
        self.batches.append([f"{r['address']}{r['n']}" for r in rows])
        conn.execute(
            text("INSERT INTO t VALUES (:address, :n)"),
            [{"address": r["address"], "n": r["n"]} for r in rows],
        )

    def rows(self) -> list[str]:
        with self.engine.connect() as conn:
            found = conn.execute(text("SELECT address, n FROM t ORDER BY rowid"))
            return [f"{a}{n}" for a, n in found]

    def start_held(self) -> None:
        """Hand over one write and wait until its transaction is open and held."""
        self.first = self.commits.submit([("t", {"address": "x", "n": 0})])
        assert self.held.wait(10)


def test_writes_handed_over_meanwhile_share_one_transaction_in_arrival_order(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path)
    store.start_held()
    futures = [store.commits.submit([("t", {"address": f"r{i:02d}", "n": 1})]) for i in range(40)]
    assert not any(f.done() for f in futures), "nothing is durable while its commit is held"
    store.hold.set()
    store.commits.flush()
    assert all(f.done() and f.exception() is None for f in [store.first, *futures])
    assert store.commits.commits == 2  # the held one, then the 40 queued meanwhile
    assert store.rows() == ["x0", *[f"r{i:02d}1" for i in range(40)]]
    store.commits.close()


def test_two_writes_of_one_resource_never_share_a_transaction(tmp_path: Path) -> None:
    """Statements are grouped by key inside a transaction; two writes of one resource in
    one transaction could be reordered, so the second waits for the next one."""
    store = Store(tmp_path)
    store.start_held()
    for address, n in (("a", 1), ("b", 1), ("a", 2)):
        store.commits.submit([("t", {"address": address, "n": n})])
    store.hold.set()
    store.commits.flush()
    assert store.batches == [["x0"], ["a1", "b1"], ["a2"]]
    assert store.rows() == ["x0", "a1", "b1", "a2"]
    store.commits.close()


def test_a_bad_write_fails_its_own_future_only(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.start_held()
    good = store.commits.submit([("t", {"address": "g", "n": 1})])
    bad = store.commits.submit([("t", {"address": "b", "n": 1, "fail": True})])
    store.hold.set()
    store.commits.flush()
    assert good.exception() is None
    assert isinstance(bad.exception(), ValueError)
    assert store.rows() == ["x0", "g1"]
    with pytest.raises(ValueError, match="bad row"):
        store.commits.write([("t", {"address": "c", "n": 1, "fail": True})])
    store.commits.close()


def test_close_commits_what_is_queued_and_refuses_more(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.hold.set()
    queued = [store.commits.submit([("t", {"address": f"q{i}", "n": 1})]) for i in range(5)]
    store.commits.close()
    assert all(f.done() and f.exception() is None for f in queued)
    assert store.rows() == [f"q{i}1" for i in range(5)]
    with pytest.raises(RuntimeError, match="closed"):
        store.commits.submit([("t", {"address": "late", "n": 1})])


def test_a_commit_callback_cannot_wait_for_another_commit(tmp_path: Path) -> None:
    """Callbacks run on the committing thread: waiting there for a commit would hang."""
    store = Store(tmp_path)
    store.hold.set()
    seen: list[BaseException] = []

    def callback(_: Any) -> None:
        try:
            store.commits.write([("t", {"address": "inner", "n": 1})])
        except RuntimeError as exc:
            seen.append(exc)

    store.commits.submit([("t", {"address": "outer", "n": 1})]).add_done_callback(callback)
    store.commits.flush()
    store.commits.close()
    assert len(seen) == 1 and "cannot wait" in str(seen[0])
    assert store.rows() == ["outer1"]


def test_a_write_someone_waits_for_never_lingers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only writes handed over without waiting may wait for company: ``write``,
    ``StateWriter.put`` (waiting, the default) and ``finish`` commit at once. With the
    linger made an hour, each would hang here if it lingered."""
    import state.commits
    from state.store import StateStore
    from state.writes import RecordWrite

    monkeypatch.setattr(state.commits, "LINGER", 3600.0)
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    writer = store.writer("default", who="tester", operation="apply")
    writer.begin("apply", actor="tester")
    done = threading.Event()

    def record() -> None:
        write = RecordWrite(
            address="datasets.d", section="datasets", name="d", provider="local",
            action="create", spec_hash=None, meta_hash=None, content_hash=None, attributes={},
            outputs={}, dependencies=[],
        )  # fmt: skip
        writer.put(write)  # waits for its commit
        handed = writer.put(replace(write, address="datasets.e"), wait=False)
        writer.finish("complete", {})  # flushes what was handed over
        assert handed.done() and handed.exception() is None
        done.set()

    worker = threading.Thread(target=record, daemon=True)
    worker.start()
    worker.join(60)  # a hang guard, not a measurement
    assert done.is_set(), "a waited-for write lingered"
    assert set(writer.records()) == {"datasets.d", "datasets.e"}
    writer.close()
    store.close()
