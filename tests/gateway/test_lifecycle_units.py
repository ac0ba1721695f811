"""The request lifecycle's pure decisions, branch by branch (the end-to-end behaviour is in
test_callers.py, test_feedback.py and test_log_truth.py)."""

from __future__ import annotations

import asyncio
import io
import time
from contextlib import redirect_stderr
from typing import Any

import pytest

from gateway.durable import LogWaits
from gateway.http import (
    CALLER_GONE,
    Fail,
    hung_up,
    internal_error,
    logged_status,
    new_request_id,
    read_body,
    request_id,
    unauthorized,
    waiting_message,
)
from gateway.ids import RecentIds


# -- the status a caller's record gets ---------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "gone", "logged"),
    [
        (200, False, 200),
        (200, True, 499),  # answered, but the caller had left: not delivered
        (400, True, 499),  # refused, and nobody to tell: the caller's either way
        (404, False, 404),
        (500, True, 500),  # the variant failed: that stays the variant's
        (504, True, 504),
        (503, False, 503),
    ],
)
def test_logged_status(status: int, gone: bool, logged: int) -> None:
    assert logged_status(status, gone) == logged


# -- the gateway's own failures -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("endpoint", "exc", "said", "kept"),
    [
        (
            "fraud",
            FileNotFoundError("[Errno 2] No such file: '/srv/mlx/.mlx/gateway/a/m.joblib'"),
            "endpoint 'fraud': internal error (request r-1; the gateway's log has the detail)",
            "internal error: FileNotFoundError: [Errno 2] No such file: "
            "'/srv/mlx/.mlx/gateway/a/m.joblib'",
        ),
        (
            None,
            ConnectionError("http://10.0.0.7:8011/v1 refused\nmore"),
            "internal error (request r-1; the gateway's log has the detail)",
            "internal error: ConnectionError: http://10.0.0.7:8011/v1 refused",
        ),
        (
            "x",
            RuntimeError(),
            "endpoint 'x': internal error (request r-1; the gateway's log has the detail)",
            "internal error: RuntimeError",
        ),
    ],
)
def test_an_internal_error_tells_the_caller_where_never_the_exceptions_words(
    endpoint: str | None, exc: Exception, said: str, kept: str
) -> None:
    fail = internal_error(endpoint, "r-1", exc)
    assert (fail.status, fail.message, fail.logged_error) == (500, said, kept)
    assert fail.logged  # a variant was asked: the record keeps the detail


# -- request ids -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("abc-123", True),
        ("x" * 200, True),
        ("x" * 201, False),
        ("", False),
        ("has space", False),
        ("ünïcode", False),
        (None, False),
    ],
)
def test_request_id_keeps_a_sane_callers_id(given: str | None, kept: bool) -> None:
    got = request_id(given)
    assert (got == given) is kept
    if not kept:
        assert len(got) == 32 and int(got, 16) >= 0


def test_new_request_ids_sort_by_time() -> None:
    ids = [new_request_id() for _ in range(50)]
    assert len(set(ids)) == 50
    stamps = [int(i[:12], 16) for i in ids]
    assert stamps == sorted(stamps)


def test_recent_ids_claim_once_per_endpoint_and_forget_the_oldest() -> None:
    recent = RecentIds(capacity=3)
    assert recent.claim("fraud", "a") is True
    assert recent.claim("fraud", "a") is False  # reused
    assert recent.claim("other", "a") is True  # another endpoint's id space
    assert recent.holds("fraud", "a") and not recent.holds("fraud", "b")
    assert recent.claim("fraud", "b") and recent.claim("fraud", "c")  # 4 claimed, room for 3
    assert len(recent) == 3
    assert not recent.holds("fraud", "a")  # the oldest went
    assert recent.claim("fraud", "a") is True
    with pytest.raises(ValueError):
        RecentIds(capacity=0)


# -- 401 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "challenge"),
    [
        (None, 'Bearer realm="mlx"'),
        ("", 'Bearer realm="mlx"'),
        ("Bearer wrong", 'Bearer realm="mlx", error="invalid_token"'),
        ("Basic abc", 'Bearer realm="mlx", error="invalid_token"'),
    ],
)
def test_unauthorized_says_how_to_authenticate(header: str | None, challenge: str) -> None:
    fail = unauthorized("no", header)
    assert (fail.status, fail.logged) == (401, False)
    assert fail.headers == [(b"www-authenticate", challenge.encode())]


# -- reading a body ----------------------------------------------------------------------------
class Server:
    """An ASGI ``receive`` fed by the test: a message queued now is there at once; a later one
    arrives when ``feed`` is called (or never)."""

    def __init__(self, *ready: dict[str, Any]):
        self.ready = list(ready)
        self.event = asyncio.Event()

    def feed(self, message: dict[str, Any]) -> None:
        self.ready.append(message)
        self.event.set()

    async def receive(self) -> dict[str, Any]:
        while not self.ready:
            self.event.clear()
            await self.event.wait()
        return self.ready.pop(0)


def _chunk(body: bytes, more: bool) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more}


GONE = {"type": "http.disconnect"}


def _read(server: Server, limit: int = 100, timeout: float = 5.0) -> bytes:
    return asyncio.run(read_body(server.receive, limit, timeout, time.perf_counter()))


@pytest.mark.parametrize(
    ("messages", "body"),
    [
        ([_chunk(b"abc", False)], b"abc"),
        ([_chunk(b"ab", True), _chunk(b"", True), _chunk(b"c", False)], b"abc"),
        ([_chunk(b"", False)], b""),
    ],
)
def test_a_body_that_is_there_is_read_whole(messages: list[dict[str, Any]], body: bytes) -> None:
    assert _read(Server(*messages)) == body


@pytest.mark.parametrize(
    ("messages", "status", "logged", "says"),
    [
        ([_chunk(b"ab", True), GONE], 499, 499, "hung up after sending 2 bytes"),
        ([GONE], 499, 499, "hung up after sending 0 bytes"),
        ([_chunk(b"x" * 60, True), _chunk(b"x" * 60, False)], 413, 413, "over 100 bytes"),
    ],
)
def test_a_body_that_cannot_be_read(
    messages: list[dict[str, Any]], status: int, logged: int, says: str
) -> None:
    with pytest.raises(Fail) as err:
        _read(Server(*messages))
    assert (err.value.status, err.value.record_status) == (status, logged)
    assert says in err.value.message


def test_a_body_that_comes_too_slowly_is_answered_408_and_logged_as_the_callers() -> None:
    with pytest.raises(Fail) as err:
        _read(Server(_chunk(b"ab", True)), timeout=0.05)  # the rest never comes
    fail = err.value
    assert (fail.status, fail.record_status) == (408, CALLER_GONE)
    assert (b"connection", b"close") in fail.headers
    assert "did not arrive within 0.05s (sent 2 bytes so far)" in fail.message


def test_a_body_that_arrives_later_within_the_deadline_is_read() -> None:
    async def go() -> bytes:
        server = Server(_chunk(b"a", True))
        asyncio.get_running_loop().call_later(0.01, server.feed, _chunk(b"b", False))
        return await read_body(server.receive, 100, 30.0, time.perf_counter())

    assert asyncio.run(go()) == b"ab"


# -- is the caller still there? ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ready", "message", "gone"),
    [
        ([], None, False),  # nothing yet: it would wait
        ([GONE], GONE, True),
        ([_chunk(b"more", True)], _chunk(b"more", True), False),
    ],
)
def test_waiting_message_never_waits(
    ready: list[dict[str, Any]], message: dict[str, Any] | None, gone: bool
) -> None:
    async def go() -> tuple[Any, bool, int]:
        server = Server(*ready)
        got = waiting_message(server.receive)
        server.ready[:0] = [got] if got is not None else []  # put it back for hung_up
        return got, hung_up(server.receive), len(server.event._waiters or [])

    got, left, waiters = asyncio.run(go())
    assert got == message and left is gone
    assert waiters == 0  # a receive that would wait was withdrawn, not left waiting


# -- sync durability: answers wait for their records -----------------------------------------------
def test_log_waits_release_in_order_and_time_out() -> None:
    async def go() -> list[Any]:
        waits = LogWaits()
        waits.start(asyncio.get_running_loop())
        first = asyncio.ensure_future(waits.wait(1, 5.0))
        second = asyncio.ensure_future(waits.wait(2, 5.0))
        late = asyncio.ensure_future(waits.wait(9, 0.05))
        await asyncio.sleep(0)
        waits.done(1)  # as the writer's thread does, through the loop
        await asyncio.sleep(0.01)
        state = [first.done(), second.done()]
        waits.done(2)
        return [state, await first, await second, await late, await waits.wait(2, 0.01)]

    state, first, second, late, already = asyncio.run(go())
    assert state == [True, False]
    assert (first, second, late, already) == (True, True, False, True)


# -- the stop report ---------------------------------------------------------------------------
def _stats(**kw: int) -> Any:
    from inference.writer import WriterStats

    values = dict(accepted=10, written=10, dropped=0, rejected=0, lost=0, pending=0)
    values.update(kw)
    return WriterStats(**values, flushes=1, flush_errors=0)


class _Shadows:
    def __init__(self, written: int = 0, lost: int = 0):
        self.log_written, self.log_lost = written, lost


@pytest.mark.parametrize(
    ("closed", "stats", "shadows", "code", "first", "detail"),
    [
        (True, _stats(), _Shadows(), 0, "10 record(s) written", None),
        (True, _stats(), _Shadows(3), 0, "10 record(s) written (and 3 by the shadow worker)", None),
        (True, _stats(dropped=2), _Shadows(), 1, "written, 2 lost", "2 dropped"),
        (True, _stats(rejected=1), _Shadows(), 1, "written, 1 lost", "1 refused by the database"),
        (False, _stats(written=6, lost=3, pending=1), _Shadows(), 1, "6 record(s) written, 4 lost",
         "4 never written"),
        (True, _stats(), _Shadows(2, 5), 1, "(and 2 by the shadow worker), 5 lost",
         "5 of the shadow worker's"),
    ],
)  # fmt: skip
def test_report_stop_counts_every_missing_record(
    closed: bool, stats: Any, shadows: Any, code: int, first: str, detail: str | None
) -> None:
    from gateway.server import report_stop

    err = io.StringIO()
    with redirect_stderr(err):
        assert report_stop(closed, stats, shadows) == code
    lines = err.getvalue().splitlines()
    assert first in lines[0]
    if detail is None:
        assert len(lines) == 1
    else:
        assert lines[1].startswith("mlx serve: lost: ") and detail in lines[1]


# -- the header limit counts header bytes, not the body sent with them ------------------------
@pytest.mark.parametrize(
    ("chunks", "refused"),
    [
        # headers and a large body in one read: the body is not headers
        ([b"POST / HTTP/1.1\r\nHost: x\r\n\r\n" + b"b" * 200_000], False),
        # headers that never end, a chunk at a time: refused once over the limit
        ([b"POST / HTTP/1.1\r\nX-Big: " + b"a" * 40_000, b"a" * 40_000], True),
        # headers under the limit, then their end and a body
        ([b"POST / HTTP/1.1\r\nX: " + b"a" * 60_000, b"\r\n\r\n" + b"b" * 100_000], False),
    ],
)
def test_the_header_limit_counts_only_what_came_before_the_headers_ended(
    monkeypatch: pytest.MonkeyPatch, chunks: list[bytes], refused: bool
) -> None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from gateway.protocol import _Deadlines

    seen = bytearray()

    def parse(self: Any, data: bytes) -> None:  # the parser: headers end at the blank line
        seen.extend(data)
        if self._reading_headers and b"\r\n\r\n" in seen:
            self.on_headers_complete()

    monkeypatch.setattr(HttpToolsProtocol, "data_received", parse)
    monkeypatch.setattr(HttpToolsProtocol, "on_headers_complete", lambda self: None)
    proto = object.__new__(_Deadlines)
    proto._reading_headers = True
    proto._header_bytes = 0
    proto.max_header_bytes = 65_536
    refusals: list[int] = []
    proto._refuse = lambda status, reason, message: refusals.append(status)  # type: ignore[method-assign]
    for chunk in chunks:
        proto.data_received(chunk)
    assert refusals == ([431] if refused else [])
