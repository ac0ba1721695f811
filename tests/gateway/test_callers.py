"""Callers who hang up, dawdle or knock at odd doors, through a real ``mlx serve``.

A caller's own failure — hanging up before its body was sent or before its answer could be,
sending its body too slowly — is logged with status 499 under the variant it was routed to and
is never an error of that variant (issue 18, items 2 and 18). Slow headers and idle
connections are closed; too many connections are refused. A trailing slash routes as the path
without it, and a 401 says how to authenticate (item 22).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contract import Role
from gateway.routing import choose
from tests.gateway.conftest import dump, log_url, routes, spec_dir, train
from tests.gateway.slow_models import Sleepy
from tests.gateway.support import Served, model_variant, records, route, wait_records

pytestmark = pytest.mark.slow

BODY = json.dumps({"instances": [[10.0, 30, 12]]}).encode()
#: generous bounds for conditions a test waits for; never a claim about speed
PATIENCE_S = 60.0


def _candidate_key() -> str:
    """A sticky key the 50 % canary of endpoint ``fraud`` sends to the candidate."""
    return next(
        k for k in (f"k{i}" for i in range(1000)) if choose("fraud", 50, k, "") is Role.CANDIDATE
    )


@dataclass
class World:
    server: Served
    log: str
    host: str
    port: int


def _addr(server: Served) -> tuple[str, int]:
    u = urllib.parse.urlsplit(server.url)
    return u.hostname or "127.0.0.1", int(u.port or 80)


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A canary at 50 %: v1 stable, v2 candidate; short header and body deadlines."""
    root = tmp_path_factory.mktemp("callers")
    spec = spec_dir(root / "spec")
    train(root / "a" / "model.joblib", seed=0)
    train(root / "b" / "model.joblib", seed=1, alpha=30.0)
    dump(Sleepy(1.0, 3), root / "slow" / "model.joblib")
    va = model_variant("v1", 1, root / "a" / "model.joblib")
    vb = model_variant("v2", 2, root / "b" / "model.joblib")
    store = routes(spec)
    doc = route("fraud", "model", [va, vb], stable="v1", candidate="v2", weight=50)
    store.put("default", "fraud", doc)
    slow = model_variant("v1", 1, root / "slow" / "model.joblib")
    store.put("default", "slow", route("slow", "model", [slow], stable="v1"))
    server = Served(spec, args=["--header-timeout", "1", "--body-timeout", "1"]).wait_ready()
    host, port = _addr(server)
    yield World(server, log_url(spec), host, port)
    server.stop()


def _head(path: str, length: int, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: gateway", "Content-Type: application/json"]
    lines += [f"Content-Length: {length}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _record(world: World, endpoint: str, rid: str) -> Any:
    got = world.server.wait_for(
        lambda: [r for r in records(world.log, endpoint) if r.request_id == rid],
        timeout=PATIENCE_S,
        what=f"the record of {rid}",
    )
    assert len(got) == 1
    return got[0]


def _metric(world: World, line_start: str) -> float:
    text = world.server.get("/metrics").body.decode()
    found = [ln for ln in text.splitlines() if ln.startswith(line_start)]
    return float(found[0].split()[-1]) if found else 0.0


def _no_traceback(world: World) -> None:
    err = "".join(world.server.stderr)
    assert "Traceback" not in err and "ClientDisconnect" not in err, err


def test_a_caller_who_hangs_up_mid_body_is_the_callers_499_not_the_candidates_error(
    canary: World,
) -> None:
    key = _candidate_key()
    for i in range(3):
        sock = socket.create_connection((canary.host, canary.port), timeout=PATIENCE_S)
        rid = f"hangup-{i}"
        head = _head(
            "/endpoints/fraud/invocations", len(BODY), {"x-request-id": rid, "x-mlx-key": key}
        )
        sock.sendall(head + BODY[: len(BODY) // 2])
        sock.close()
        got = _record(canary, "fraud", rid)
        assert (got.status, got.variant, got.version) == (499, "candidate", "2")
        assert "hung up" in (got.error or "")
    _no_traceback(canary)
    series = 'mlx_gateway_requests_total{endpoint="fraud",status="499",variant="candidate"}'
    assert _metric(canary, series) >= 3
    assert _metric(canary, 'mlx_gateway_requests_total{endpoint="fraud",status="500"') == 0
    summary = _summary(canary, "fraud")["candidate"]
    assert summary.server_errors == 0 and summary.client_errors == 0
    assert summary.abandoned >= 3 and summary.error_rate in (None, 0.0)


def _summary(world: World, endpoint: str) -> dict[str, Any]:
    from inference import query
    from inference.store import open_log

    store = open_log(world.log)
    try:
        return query.variant_summary(store, endpoint)
    finally:
        store.close()


def test_a_caller_who_hangs_up_while_the_model_predicts_is_logged_499(canary: World) -> None:
    """The answer could not be delivered: the record says so, with the variant that made it."""
    sock = socket.create_connection((canary.host, canary.port), timeout=PATIENCE_S)
    sock.sendall(_head("/endpoints/slow/invocations", len(BODY), {"x-request-id": "left"}) + BODY)
    sock.close()  # the model sleeps a second: the caller is gone before it answers
    got = _record(canary, "slow", "left")
    assert (got.status, got.variant, got.version) == (499, "stable", "1")
    assert got.error == "the caller hung up before the answer was sent"
    _no_traceback(canary)


def _slow_body(world: World, rid: str, closed: list[bytes]) -> None:
    """Headers, then a body byte every 0.5 s (120 bytes: a minute); what the server said."""
    sock = socket.create_connection((world.host, world.port), timeout=PATIENCE_S)
    heard = b""
    try:
        sock.sendall(_head("/endpoints/fraud/invocations", 120, {"x-request-id": rid}))
        sock.settimeout(0.5)
        for _ in range(120):
            try:
                sock.sendall(b" ")
            except OSError:  # reset: the server closed it
                break
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            heard += chunk
    finally:
        sock.close()
    closed.append(heard)


def test_slow_bodies_are_answered_408_logged_as_the_callers_and_others_are_served(
    canary: World,
) -> None:
    heard: list[bytes] = []
    slow = [
        threading.Thread(target=_slow_body, args=(canary, f"loris-{i}", heard), daemon=True)
        for i in range(10)
    ]
    for t in slow:
        t.start()
    served = 0
    while any(t.is_alive() for t in slow):  # everyone else is answered meanwhile
        reply = canary.server.post(
            "/endpoints/fraud/invocations", json.loads(BODY), timeout=PATIENCE_S
        )
        assert reply.status == 200, reply.body
        served += 1
        time.sleep(0.05)
    for t in slow:
        t.join()
    assert served >= 1 and len(heard) == 10
    for answer in heard:  # each was closed long before its 120 bytes were sent
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b"did not arrive within 1s" in answer
    for i in range(10):
        got = _record(canary, "fraud", f"loris-{i}")
        assert got.status == 499 and got.variant in ("stable", "candidate")
    _no_traceback(canary)


def _slow_headers(world: World, first: bytes, out: list[bytes]) -> None:
    """Send ``first``, then (if it began a request) a header byte every 0.5 s for a minute;
    what the server said."""
    sock = socket.create_connection((world.host, world.port), timeout=PATIENCE_S)
    sock.settimeout(0.5)
    heard = b""
    try:
        if first:
            sock.sendall(first)
        for _ in range(120):
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                if not first:  # a connection that never says anything
                    continue
                try:
                    sock.sendall(b"x")  # one more byte of the header's value
                except OSError:
                    break
                continue
            except OSError:
                break
            if not chunk:
                break
            heard += chunk
    finally:
        sock.close()
    out.append(heard)


def test_slow_or_missing_headers_are_closed_and_nothing_is_logged(canary: World) -> None:
    before = _metric(canary, 'mlx_gateway_connections_closed_total{reason="header_timeout"}')
    heard: list[bytes] = []
    clients = [
        threading.Thread(target=_slow_headers, args=(canary, first, heard), daemon=True)
        for first in (b"", b"POST /endpoints/fraud/invocations HTTP/1.1\r\nX-Slow: ")
    ]
    for t in clients:
        t.start()
    for t in clients:
        t.join(PATIENCE_S * 2)
    assert len(heard) == 2
    for answer in heard:
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout"), answer
    after = _metric(canary, 'mlx_gateway_connections_closed_total{reason="header_timeout"}')
    assert after >= before + 2


def test_oversized_headers_are_refused_431(canary: World) -> None:
    sock = socket.create_connection((canary.host, canary.port), timeout=PATIENCE_S)
    try:
        sock.sendall(b"POST /endpoints/fraud/invocations HTTP/1.1\r\nX-Big: ")
        with pytest.raises(OSError):  # the server answers and closes part-way
            for _ in range(200):
                sock.sendall(b"a" * 1024)
                time.sleep(0.01)
        answer = sock.recv(4096)
    except OSError:
        answer = b""
    finally:
        sock.close()
    if answer:  # the answer may be lost to the reset the closed socket sent
        assert answer.startswith(b"HTTP/1.1 431 "), answer
    assert _metric(canary, 'mlx_gateway_connections_closed_total{reason="header_too_large"}') >= 1


def test_a_trailing_slash_routes_the_same(canary: World) -> None:
    s = canary.server
    plain = s.post("/endpoints/fraud/invocations", json.loads(BODY), headers={"x-mlx-key": "a"})
    slash = s.post("/endpoints/fraud/invocations/", json.loads(BODY), headers={"x-mlx-key": "a"})
    assert (plain.status, slash.status) == (200, 200), slash.body
    assert slash.json() == plain.json()
    assert slash.headers["x-mlx-version"] == plain.headers["x-mlx-version"]
    assert s.get("/healthz/").status == 200
    assert s.post("/endpoints/fraud/feedback/", {"request_id": "nope", "value": 1}).status == 404


def test_too_many_connections_are_refused_503(tmp_path: Path) -> None:
    spec = spec_dir(tmp_path / "spec")
    train(tmp_path / "m" / "model.joblib")
    v1 = model_variant("v1", 1, tmp_path / "m" / "model.joblib")
    routes(spec).put("default", "fraud", route("fraud", "model", [v1], stable="v1"))
    server = Served(spec, args=["--max-connections", "4"]).wait_ready()
    try:
        host, port = _addr(server)
        idle = [socket.create_connection((host, port), timeout=PATIENCE_S) for _ in range(4)]
        try:
            refused = server.post("/endpoints/fraud/invocations", json.loads(BODY))
            assert refused.status == 503, refused.body
        finally:
            for sock in idle:
                sock.close()
        server.wait_for(
            lambda: server.post("/endpoints/fraud/invocations", json.loads(BODY)).status == 200,
            timeout=PATIENCE_S,
            what="a connection slot",
        )
    finally:
        assert server.stop() == 0


TOKEN = "s3cret-gateway-token-42"


def test_a_401_says_how_to_authenticate(tmp_path: Path) -> None:
    spec = spec_dir(tmp_path / "spec")
    (spec / "mlx.yaml").write_text(
        "mlx:\n  state: sqlite:///.mlx/state.db\n  gateway:\n    token: ${env.GW_TOKEN}\n"
    )
    train(tmp_path / "m" / "model.joblib")
    v1 = model_variant("v1", 1, tmp_path / "m" / "model.joblib")
    routes(spec).put("default", "fraud", route("fraud", "model", [v1], stable="v1"))
    server = Served(spec, env={"GW_TOKEN": TOKEN}).wait_ready()
    try:
        missing = server.post("/endpoints/fraud/invocations", json.loads(BODY))
        wrong = server.post(
            "/endpoints/fraud/invocations",
            json.loads(BODY),
            headers={"Authorization": "Bearer nope"},
        )
        for reply in (missing, wrong, server.get("/metrics"), server.get("/nowhere")):
            assert reply.status == 401
            assert reply.headers["www-authenticate"].startswith('Bearer realm="mlx"'), reply
        assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
        assert "error=" not in missing.headers["www-authenticate"]
        ok = server.post(
            "/endpoints/fraud/invocations",
            json.loads(BODY),
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert ok.status == 200 and "www-authenticate" not in ok.headers
    finally:
        assert server.stop() == 0
    assert len(wait_records(log_url(spec), "fraud", 1)) == 1
