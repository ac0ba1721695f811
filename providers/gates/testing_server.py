"""An OpenAI-compatible test double: ``/v1/chat/completions`` and ``/v1/embeddings`` on 127.0.0.1.

For tests, benchmarks and trying the LLM example without an API key::

    with OpenAIStub(latency_s=0.05) as server:
        server.fail(429, times=2)            # the next two requests get 429
        ... client(base_url=server.base_url) ...
        assert server.calls == 3

    python -m providers.gates.testing_server --port 8011   # the support bot below

Its default "model" is deterministic and simple: it refuses requests that
ask for something harmful, answers a question with the sentence of the
``Context:`` section that shares the most words with it, answers in JSON when
asked to, and otherwise echoes. Token counts are word counts. With ``stream: true`` it
answers as OpenAI streams (server-sent events: a role chunk, one chunk per word
``stream_delay_s`` apart, the finish chunk, a usage chunk when
``stream_options.include_usage``, then ``[DONE]``).
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[Mapping[str, Any]], str]

_UNSAFE = re.compile(
    r"\b(hack|steal|stolen|weapon|bomb|poison|credit card numbers|password of|someone else's|"
    r"bypass|exploit|malware|launder|fake id|self-harm)\b",
    re.IGNORECASE,
)
_WORDS = re.compile(r"[a-z0-9]+")
_COMMON_TEXT = "a an the is are was to of and or in on for with my i you it do does can how what"
_COMMON = frozenset(_COMMON_TEXT.split())


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


def _section(text: str, name: str) -> str:
    match = re.search(rf"{name}:\s*(.*?)(?:\n[A-Z][a-z]+:|\Z)", text, re.DOTALL)
    return match.group(1).strip() if match else ""


def support_bot(request: Mapping[str, Any]) -> str:
    """The stub's default model (see the module docstring)."""
    user = next((m["content"] for m in reversed(request["messages"]) if m["role"] == "user"), "")
    question = _section(user, "Question") or user
    if _UNSAFE.search(question):
        return "I'm sorry, but I can't help with that request."
    context = _section(user, "Context")
    if not context:
        return f"You said: {question}"
    wanted = set(_WORDS.findall(question.lower())) - _COMMON
    best = max(
        _sentences(context),
        key=lambda s: len(wanted & set(_WORDS.findall(s.lower()))),
        default="I don't know.",
    )
    if "json" in user.lower():
        return json.dumps({"answer": best, "confidence": 0.9})
    return best


def hashed_embedding(text: str, dims: int = 64) -> list[float]:
    """A deterministic bag-of-words embedding (for the ``/embeddings`` route)."""
    import hashlib

    vec = [0.0] * dims
    for word in _WORDS.findall(text.lower()):
        h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
        vec[h % dims] += 1.0 if (h >> 32) & 1 else -1.0
    return vec


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default 5 drops connections under concurrency (1 s SYN retry)
    daemon_threads = True


class OpenAIStub:
    def __init__(
        self,
        responder: Responder = support_bot,
        *,
        latency_s: float = 0.0,
        stream_delay_s: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.responder = responder
        self.latency_s = latency_s
        self.stream_delay_s = stream_delay_s
        self.calls = 0  # chat completions answered (failures included)
        self.embedding_calls = 0
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.inflight = 0
        self.max_inflight = 0  # most chat requests served at the same time
        self._failures: deque[tuple[int, float | None]] = deque()
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                stub._handle(self)

        self.server = _Server((host, port), Handler)
        self._thread: threading.Thread | None = None

    # -- control ----------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        shown = host.decode() if isinstance(host, bytes) else host
        return f"http://{shown}:{port}/v1"

    def fail(self, status: int, times: int = 1, retry_after: float | None = None) -> None:
        """The next ``times`` chat requests get HTTP ``status`` (429, 500, …)."""
        with self._lock:
            self._failures.extend([(status, retry_after)] * times)

    def start(self) -> OpenAIStub:
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving ----------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        try:
            body = json.loads(h.rfile.read(length) or b"{}")
        except ValueError:
            self._send(h, 400, {"error": {"message": "invalid JSON"}})
            return
        path = h.path.rstrip("/")
        if path.endswith("/embeddings"):
            self._embeddings(h, body)
        elif path.endswith("/chat/completions"):
            self._chat(h, body)
        else:
            self._send(h, 404, {"error": {"message": f"no route {h.path}"}})

    def _chat(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        with self._lock:
            self.calls += 1
            self.requests.append(body)
            self.headers.append(dict(h.headers.items()))
            failure = self._failures.popleft() if self._failures else None
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            status, payload, headers = self._answer(body, failure)
        finally:
            # counted out before the client can see the answer and send its next request
            with self._lock:
                self.inflight -= 1
        if status == 200 and body.get("stream"):
            self._stream(h, payload, body.get("stream_options") or {})
            return
        self._send(h, status, payload, headers)

    def _stream(
        self, h: BaseHTTPRequestHandler, answer: dict[str, Any], options: Mapping[str, Any]
    ) -> None:
        """The answer as OpenAI's server-sent events, one word per chunk."""
        base = {k: answer[k] for k in ("id", "model")} | {"object": "chat.completion.chunk"}
        text = answer["choices"][0]["message"]["content"]
        words = re.findall(r"\S+\s*", text)
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        deltas += [{"content": w} for w in words]
        chunks = [
            base | {"choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas
        ]
        chunks.append(base | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if options.get("include_usage"):
            chunks.append(base | {"choices": [], "usage": answer["usage"]})
        try:
            h.send_response(200)
            h.send_header("Content-Type", "text/event-stream")
            h.send_header("Cache-Control", "no-cache")
            h.end_headers()
            for i, chunk in enumerate(chunks):
                if i and self.stream_delay_s:
                    time.sleep(self.stream_delay_s)
                h.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                h.wfile.flush()
            h.wfile.write(b"data: [DONE]\n\n")
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up mid-stream

    def _answer(
        self, body: dict[str, Any], failure: tuple[int, float | None] | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if self.latency_s:
            time.sleep(self.latency_s)
        if failure is not None:
            status, retry_after = failure
            headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
            return status, {"error": {"message": f"injected {status}"}}, headers
        if not isinstance(body.get("messages"), list) or not body.get("model"):
            return 400, {"error": {"message": "model and messages are required"}}, {}
        text = self.responder(body)
        prompt_words = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        answer = {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_words,
                "completion_tokens": len(text.split()),
                "total_tokens": prompt_words + len(text.split()),
            },
        }
        return 200, answer, {}

    def _embeddings(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        with self._lock:
            self.embedding_calls += 1
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        data = [
            {"object": "embedding", "index": i, "embedding": hashed_embedding(t)}
            for i, t in enumerate(texts)
        ]
        self._send(h, 200, {"object": "list", "data": data, "model": body.get("model")})

    @staticmethod
    def _send(
        h: BaseHTTPRequestHandler,
        status: int,
        payload: Any,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        blob = json.dumps(payload).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(blob)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(blob)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--stream-delay-ms", type=float, default=50.0)
    args = parser.parse_args(argv)
    stub = OpenAIStub(
        latency_s=args.latency_ms / 1000.0,
        stream_delay_s=args.stream_delay_ms / 1000.0,
        host=args.host,
        port=args.port,
    )
    print(f"OpenAI-compatible stub listening on {stub.base_url} (Ctrl-C stops it)", flush=True)
    try:
        stub.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stub.server.server_close()


if __name__ == "__main__":
    main()
