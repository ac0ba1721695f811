"""What a prompt endpoint refuses to pass on, through a real ``mlx serve``.

* an upstream answer larger than ``client.max_response_bytes`` (default 8 MiB) is a 502
  naming the endpoint and the bound; the gateway stops reading it (the stub counts what it
  managed to send), and the log record stays small;
* the log keeps at most 64 KiB of a payload field (prompts and models): beyond that, a marker
  with the original size;
* error answers name the endpoint and the kind of failure, never the upstream's address or
  what the upstream wrote; the record's ``error`` and stderr keep the detail;
* the chat route takes ``application/json`` only (a missing content type reads as JSON).

The LLM is a small stub (``Upstream``) whose behaviour is picked by the request's model.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.gateway.conftest import log_url, routes, spec_dir, train, training_frame
from tests.gateway.support import (
    Reply,
    Served,
    llm_client,
    model_variant,
    prompt_variant,
    records,
    route,
)

pytestmark = pytest.mark.slow

DEFAULT_BOUND = 8 * 1024 * 1024
HUGE = 200 * 1024 * 1024
CHUNK = 64 * 1024
INTERNAL_HOST = "llm-7.corp.internal"
LOG_LIMIT = 64 * 1024


class Upstream:
    """An OpenAI-compatible stub on 127.0.0.1; the request's ``model`` picks the answer:

    ``huge-chunked`` / ``huge-declared``: 200 MB, chunked or with its Content-Length;
    ``big-<n>``: a valid answer whose content is n characters; ``leak-500``: a 500 whose body
    holds the stub's own URL and an internal host name; ``leak-json``: 200 with such a body
    that is not JSON; ``leak-401``; ``hang``: answers after 3 s; anything else: "ok".
    ``sent[request id]`` counts the body bytes the stub managed to write."""

    def __init__(self) -> None:
        self.sent: dict[str, int] = {}
        self.calls = 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                stub._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        body = json.loads(h.rfile.read(int(h.headers.get("Content-Length") or 0)))
        self.calls += 1
        rid = str(body.get("user") or "")
        model = str(body["model"])
        leak = f"upstream {self.base_url} failed on {INTERNAL_HOST}: traceback …"
        if model == "huge-chunked":
            self._stream(h, rid, chunked=True)
        elif model == "huge-declared":
            self._stream(h, rid, chunked=False)
        elif model.startswith("big-"):
            self._send(h, 200, _answer(model, "x" * int(model[4:])))
        elif model == "leak-500":
            self._send(h, 500, {"error": {"message": leak}})
        elif model == "leak-json":
            self._send(h, 200, None, raw=leak.encode())
        elif model == "leak-401":
            self._send(h, 401, {"error": {"message": leak}})
        elif model == "hang":
            time.sleep(3)
            self._send(h, 200, _answer(model, "late"))
        else:
            self._send(h, 200, _answer(model, "ok"))

    def _stream(self, h: BaseHTTPRequestHandler, rid: str, *, chunked: bool) -> None:
        sent = 0
        try:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            if chunked:
                h.send_header("Transfer-Encoding", "chunked")
            else:
                h.send_header("Content-Length", str(HUGE))
            h.end_headers()
            block = b"a" * CHUNK
            while sent < HUGE:
                if chunked:
                    h.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
                else:
                    h.wfile.write(block)
                sent += len(block)
                self.sent[rid] = sent
        except OSError:
            pass  # the gateway hung up: what it was sent is counted
        finally:
            self.sent[rid] = sent
            h.close_connection = True

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, doc: Any, raw: bytes | None = None) -> None:
        blob = raw if raw is not None else json.dumps(doc).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(blob)))
        h.end_headers()
        h.wfile.write(blob)


def _answer(model: str, content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-guard",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1},
    }


def _client(base_url: str, **kw: Any) -> dict[str, Any]:
    return llm_client(base_url, **{"retries": 0, **kw})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class World:
    spec: Path
    server: Served
    upstream: Upstream
    dead_url: str

    def chat(self, endpoint: str, rid: str | None = None) -> tuple[str, Reply]:
        rid = rid or uuid.uuid4().hex
        body = {"messages": [], "variables": {"q": "hi"}, "user": rid}
        reply = self.server.post(
            f"/endpoints/{endpoint}/v1/chat/completions", body, headers={"x-request-id": rid}
        )
        return rid, reply

    def record(self, endpoint: str, rid: str) -> Any:
        def find() -> Any:
            return next(
                (r for r in records(log_url(self.spec), endpoint) if r.request_id == rid), None
            )

        return self.server.wait_for(find, what=f"the record of {rid}")

    def raw_post(self, path: str, body: bytes, headers: dict[str, str]) -> Reply:
        """A POST with exactly these headers (urllib adds its own content type)."""
        parts = urlsplit(self.server.url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        try:
            conn.putrequest("POST", path)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                conn.putheader(name, value)
            conn.endheaders(body)
            resp = conn.getresponse()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    upstream = Upstream()
    root = tmp_path_factory.mktemp("gw-guards")
    spec = spec_dir(root / "spec")
    store = routes(spec)
    dead_url = f"http://127.0.0.1:{_closed_port()}/v1"

    def put(name: str, model: str, base: str | None = None, **client: Any) -> None:
        variant = prompt_variant("v1", 1, template="{{q}}", model=model)
        doc = route(name, "prompt", [variant], stable="v1")
        doc["client"] = _client(base or upstream.base_url, **client)
        store.put("default", name, doc)

    put("huge", "huge-chunked")
    put("declared", "huge-declared")
    put("bounded", "big-150000", max_response_bytes=100_000)
    put("big", "big-1000000")
    put("leak500", "leak-500")
    put("leakjson", "leak-json")
    put("leak401", "leak-401")
    put("slow", "hang", timeout_s=0.3)
    put("dead", "ok", base=dead_url)
    put("plain", "ok")
    train(root / "art" / "model.joblib")
    model = model_variant("v1", 1, root / "art" / "model.joblib")
    store.put("default", "scores", route("scores", "model", [model], stable="v1"))
    server = Served(spec).wait_ready()
    yield World(spec, server, upstream, dead_url)
    server.stop()
    upstream.stop()


# -- item 19: bounded upstream answers ---------------------------------------------------------
def test_an_answer_over_the_bound_is_a_502_and_is_not_read_whole(world: World) -> None:
    rid, reply = world.chat("huge")
    assert reply.status == 502, reply.body
    message = reply.json()["error"]["message"]
    assert message == f"endpoint 'huge': upstream answer too large (> {DEFAULT_BOUND} bytes)"
    # the gateway stopped reading: the stub could send the bound plus what socket buffers hold
    sent = world.server.wait_for(lambda: world.upstream.sent.get(rid), what="the stub's count")
    assert DEFAULT_BOUND < sent < DEFAULT_BOUND + 32 * 1024 * 1024 < HUGE
    rec = world.record("huge", rid)
    assert rec.status == 502 and f"more than {DEFAULT_BOUND} bytes" in rec.error
    assert rec.outputs is None and len(rec.error) < 1000


def test_an_announced_size_over_the_bound_is_refused_before_reading(world: World) -> None:
    rid, reply = world.chat("declared")
    assert reply.status == 502
    assert "upstream answer too large" in reply.json()["error"]["message"]
    rec = world.record("declared", rid)
    assert f"Content-Length: {HUGE}" in rec.error


def test_the_bound_is_the_endpoints_client_max_response_bytes(world: World) -> None:
    _, reply = world.chat("bounded")
    assert reply.status == 502
    assert "(> 100000 bytes)" in reply.json()["error"]["message"]
    _, ok = world.chat("big")  # 1 MB: under the default bound
    assert ok.status == 200 and len(ok.json()["choices"][0]["message"]["content"]) == 1_000_000


def test_the_log_keeps_a_marker_instead_of_a_payload_over_its_limit(world: World) -> None:
    rid, reply = world.chat("big")
    assert reply.status == 200
    content = reply.json()["choices"][0]["message"]["content"]
    rec = world.record("big", rid)
    size = len(json.dumps([content], separators=(",", ":")).encode())
    assert rec.outputs == {"$truncated": True, "bytes": size, "limit": LOG_LIMIT}
    assert rec.inputs == {"variables": {"q": "hi"}, "messages": []}  # small: kept as it is


def test_a_models_payload_over_the_limit_is_logged_as_a_marker(world: World) -> None:
    x, _ = training_frame()
    rows = x.to_dict(orient="records") * 20  # 4000 rows: over 64 KiB of JSON
    body = {"dataframe_records": rows}
    rid = uuid.uuid4().hex
    reply = world.server.post("/endpoints/scores/invocations", body, headers={"x-request-id": rid})
    assert reply.status == 200 and len(reply.json()["predictions"]) == len(rows)
    rec = world.record("scores", rid)
    assert rec.inputs["$truncated"] is True and rec.inputs["bytes"] > LOG_LIMIT
    assert rec.outputs["$truncated"] is True


# -- item 21: no internal addresses in answers -------------------------------------------------
@pytest.mark.parametrize(
    ("endpoint", "status", "kind"),
    [
        ("dead", 502, "upstream unreachable"),
        ("leak500", 502, "upstream answered HTTP 500"),
        ("leakjson", 502, "upstream answered invalid JSON"),
        ("leak401", 502, "upstream refused the gateway's credentials (HTTP 401)"),
        ("slow", 504, "upstream timed out after 0.3s"),
    ],
)
def test_an_upstream_failure_names_the_endpoint_and_kind_never_the_address(
    world: World, endpoint: str, status: int, kind: str
) -> None:
    rid, reply = world.chat(endpoint)
    assert reply.status == status, reply.body
    message = reply.json()["error"]["message"]
    assert message.startswith(f"endpoint {endpoint!r}: {kind}"), message
    text = reply.body.decode()
    for secret in (world.upstream.base_url, world.dead_url, INTERNAL_HOST, "127.0.0.1"):
        assert secret not in text
    for url in (world.upstream.base_url, world.dead_url):
        assert urlsplit(url).netloc not in text
    rec = world.record(endpoint, rid)
    base = world.dead_url if endpoint == "dead" else world.upstream.base_url
    assert base in rec.error and rec.status == status  # the detail is the operator's
    if endpoint in ("leak500", "leak401"):
        assert INTERNAL_HOST in rec.error
    world.server.wait_for(
        lambda: any(rid in ln and base in ln for ln in world.server.stderr),
        what="the detail on stderr",
    )


# -- item 22: the chat route takes JSON --------------------------------------------------------
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_a_body_that_is_not_json_is_a_415_naming_its_type(world: World, content_type: str) -> None:
    calls = world.upstream.calls
    body = json.dumps({"messages": [], "variables": {"q": "hi"}}).encode()
    reply = world.raw_post(
        "/endpoints/plain/v1/chat/completions", body, {"Content-Type": content_type}
    )
    assert reply.status == 415, reply.body
    message = json.loads(reply.body)["error"]["message"]
    assert repr(content_type) in message and "application/json" in message
    assert world.upstream.calls == calls


@pytest.mark.parametrize("headers", [{"Content-Type": "application/json; charset=utf-8"}, {}])
def test_json_or_no_content_type_is_read_as_json(world: World, headers: dict[str, str]) -> None:
    body = json.dumps({"messages": [], "variables": {"q": "hi"}}).encode()
    reply = world.raw_post("/endpoints/plain/v1/chat/completions", body, headers)
    assert reply.status == 200, reply.body
    assert json.loads(reply.body)["choices"][0]["message"]["content"] == "ok"
