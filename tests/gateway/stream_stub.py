"""A streaming OpenAI-compatible upstream on 127.0.0.1: real server-sent events, chunk by chunk.

``StreamStub`` answers ``POST /v1/chat/completions``. With ``stream: true`` it writes each
chunk as its own HTTP/1.1 chunk (``Transfer-Encoding: chunked``) and flushes it, so a client
sees each event as it is written. What it does depends on the request's ``model``:

* any model: a role chunk, one chunk per word of ``You said: <first user message>`` (``delay_s``
  apart), a finish chunk, the usage chunk if ``stream_options.include_usage``, ``[DONE]``;
* ``gated-model``: after the first word it waits for ``gate`` (set by the test once its client
  has that word) — ``released`` says whether the test released it before the wait ran out;
* ``endless-model``: a word every 20 ms until writing fails (the reader went away): then
  ``cancelled`` is set — how a test sees its request cancelled upstream;
* ``broken-model``: two words, then the connection is dropped mid-stream;
* ``error-event-model``: two words, then an OpenAI-style ``data: {"error": …}`` event;
* ``nousage-model``: never sends the usage chunk;
* ``whole-model``: ignores ``stream`` and answers one JSON ``chat.completion``.

``fail(status, times)`` makes the next requests fail with that status before any byte.
Without ``stream`` every model gets the whole ``chat.completion`` (shadow copies, cache
tests). ``requests`` holds every body received.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def answer_text(body: dict[str, Any]) -> str:
    users = [m for m in body.get("messages") or [] if m.get("role") == "user"]
    return f"You said: {users[0]['content'] if users else ''}"  # the rendered template


def words(text: str) -> list[str]:
    parts = text.split(" ")
    return [parts[0], *(" " + p for p in parts[1:])]


def prompt_tokens(body: dict[str, Any]) -> int:
    return sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])


class StreamStub:
    def __init__(self, delay_s: float = 0.02):
        self.delay_s = delay_s
        self.requests: list[dict[str, Any]] = []
        self.gate = threading.Event()
        self.released: bool | None = None
        self.cancelled = threading.Event()
        self.sent_before_cancel = 0
        self._failures: deque[int] = deque()
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                stub._handle(self)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def calls(self) -> int:
        return len(self.requests)

    def fail(self, status: int, times: int = 1) -> None:
        with self._lock:
            self._failures.extend([status] * times)

    def start(self) -> StreamStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    # -- serving --------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length) or b"{}")
        with self._lock:
            self.requests.append(body)
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            self._json(h, failure, {"error": {"message": f"injected {failure}"}})
            return
        model = body["model"]
        text = answer_text(body)
        if not body.get("stream") or model == "whole-model":
            self._json(h, 200, self._whole(body, text))
            return
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        try:
            self._stream(h, body, model, text)
        except (BrokenPipeError, ConnectionResetError):
            self.cancelled.set()
        h.close_connection = True

    def _stream(
        self, h: BaseHTTPRequestHandler, body: dict[str, Any], model: str, text: str
    ) -> None:
        head = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": model}
        asked = bool((body.get("stream_options") or {}).get("include_usage"))
        if asked:
            head["usage"] = None

        def event(choices: list[Any], **extra: Any) -> None:
            data = json.dumps({**head, "choices": choices, **extra})
            _chunk(h, f"data: {data}\n\n".encode())

        def delta(d: dict[str, Any], finish: str | None = None) -> None:
            event([{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}])

        delta({"role": "assistant", "content": ""})
        parts = words(text)
        if model == "endless-model":
            for n in range(500):
                delta({"content": f" w{n}"})
                self.sent_before_cancel = n + 1
                time.sleep(0.02)
            return
        for n, word in enumerate(parts):
            delta({"content": word})
            if model == "gated-model" and n == 0:
                self.released = self.gate.wait(15)
            if model in ("broken-model", "error-event-model") and n == 1:
                if model == "error-event-model":
                    _chunk(h, b'data: {"error": {"message": "the model overloaded"}}\n\n')
                    _chunk(h, b"")
                else:  # drop the connection without the chunked body's end
                    h.wfile.flush()
                    h.connection.shutdown(2)
                return
            time.sleep(self.delay_s)
        delta({}, "stop")
        if asked and model != "nousage-model":
            usage = {"prompt_tokens": prompt_tokens(body), "completion_tokens": len(parts)}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            event([], usage=usage)
        _chunk(h, b"data: [DONE]\n\n")
        _chunk(h, b"")

    @staticmethod
    def _whole(body: dict[str, Any], text: str) -> dict[str, Any]:
        pt, ct = prompt_tokens(body), len(words(text))
        return {
            "id": "chatcmpl-w",
            "object": "chat.completion",
            "created": 1,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct},
        }

    @staticmethod
    def _json(h: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
        h.wfile.flush()


def _chunk(h: BaseHTTPRequestHandler, data: bytes) -> None:
    """One HTTP/1.1 chunk, flushed (``b""``: the last chunk)."""
    h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    h.wfile.flush()
