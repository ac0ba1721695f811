"""Streamed chat answers (``stream: true``): the upstream's server-sent events, passed on.

``StreamAnswer`` is the ASGI response. It forwards each event the upstream sends as it
arrives — the bytes as they came, never re-encoded — and parses each chunk only for what the
log needs (``Tally``: the content per choice, the usage, when the first token came). The
upstream is always asked for its final usage chunk; the caller gets that chunk only if it
asked (``include_usage``). The stream ends with ``data: [DONE]``.

While it streams, a second task waits for the caller to hang up (uvicorn's ``send`` to a gone
caller returns silently, so only ``receive`` tells): then the pump is cancelled and the
upstream response closed, which drops the upstream connection — the upstream sees its
request cancelled. ``Outcome`` goes to the ``on_end`` hook once, however the stream ended:
200 complete, 499 the caller left, 502 the upstream broke off (or sent an error event), 504
it fell silent longer than its client's ``timeout_s``. A failure before the first event
was forwarded is an ordinary JSON error answer (the status tells the ``openai`` client which
exception to raise); after it, an OpenAI-style ``data: {"error": {...}}`` event.

``replay`` turns a whole ``chat.completion`` (a cache hit, or an upstream that ignored
``stream``) into the chunks OpenAI's API would have streamed; ``Tally.whole`` turns a
completed stream back into a ``chat.completion`` for the response cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import httpx
import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from common.pricing import usage_of

log = logging.getLogger("mlx.gateway")

SSE_TYPE = (b"content-type", b"text/event-stream; charset=utf-8")
DONE = b"data: [DONE]\n\n"
_DELIMITERS = (b"\r\n\r\n", b"\n\n", b"\r\r")
#: Keys of a streamed delta a ``chat.completion`` can be rebuilt from (anything else, such as
#: ``tool_calls``, makes the answer one the cache does not keep).
_REBUILDABLE = frozenset(("role", "content", "refusal"))
#: The fields of a stream's first chunk a rebuilt ``chat.completion`` keeps.
_HEAD = ("id", "created", "system_fingerprint")


# -- events ------------------------------------------------------------------------------------
class Events:
    """Splits a byte stream into server-sent events (each with its blank line, as it came)."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        buf = self._buf + chunk if self._buf else chunk
        out: list[bytes] = []
        start = 0
        while True:
            end, width = _next_end(buf, start)
            if end < 0:
                break
            out.append(buf[start : end + width])
            start = end + width
        self._buf = buf[start:]
        return out

    @property
    def pending(self) -> bytes:
        """What arrived after the last complete event."""
        return self._buf


def _next_end(buf: bytes, start: int) -> tuple[int, int]:
    best, width = -1, 0
    for delim in _DELIMITERS:
        i = buf.find(delim, start)
        if i >= 0 and (best < 0 or i < best):
            best, width = i, len(delim)
    return best, width


def data_of(event: bytes) -> bytes | None:
    """The event's ``data`` (its data lines joined), or None for an event with none (a
    comment such as ``: keep-alive``)."""
    lines = event.splitlines()
    parts = [line[5:].removeprefix(b" ") for line in lines if line.startswith(b"data:")]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else b"\n".join(parts)


# -- what a stream said --------------------------------------------------------------------------
class Kind(Enum):
    FORWARD = "forward"  # pass the event on as it came
    USAGE = "usage"  # the final usage chunk: passed on only if the caller asked
    DONE = "done"  # data: [DONE]
    ERROR = "error"  # the upstream's own error event


@dataclass
class Tally:
    """What the log and the cache need from a stream's chunks."""

    t0: float  # the request's start (``time.perf_counter()``)
    ttft_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    model: str | None = None
    done: bool = False
    error: str | None = None  # the upstream's error event's message
    rebuildable: bool = True  # the chunks held nothing ``whole`` would lose
    _head: dict[str, Any] = field(default_factory=dict)
    _texts: dict[int, list[str]] = field(default_factory=dict)
    _refusals: dict[int, list[str]] = field(default_factory=dict)
    _finish: dict[int, Any] = field(default_factory=dict)
    _usage: Any = None

    def take(self, data: bytes) -> Kind:
        if data == b"[DONE]":
            self.done = True
            return Kind.DONE
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.rebuildable = False
            return Kind.FORWARD
        if not isinstance(chunk, dict):
            self.rebuildable = False
            return Kind.FORWARD
        if chunk.get("error"):
            self.error = _message(chunk["error"])
            return Kind.ERROR
        if not self._head:
            self._head = {
                k: chunk[k] for k in ("id", "created", "system_fingerprint") if k in chunk
            }
            model = chunk.get("model")
            self.model = model if isinstance(model, str) else None
        usage = chunk.get("usage")
        if isinstance(usage, dict):  # the latest the upstream reported
            self._usage = usage
            self.input_tokens = _int(usage.get("prompt_tokens"))
            self.output_tokens = _int(usage.get("completion_tokens"))
            self.cached_input_tokens = usage_of(usage).cached_input_tokens
        choices = chunk.get("choices")
        if not choices:
            return Kind.USAGE if isinstance(usage, dict) else Kind.FORWARD
        for choice in choices if isinstance(choices, list) else ():
            self._choice(choice)
        return Kind.FORWARD

    def _choice(self, choice: Any) -> None:
        if not isinstance(choice, dict):
            self.rebuildable = False
            return
        index = choice.get("index", 0)
        index = index if isinstance(index, int) else 0
        delta = choice.get("delta")
        if isinstance(delta, dict):
            content = delta.get("content")
            if isinstance(content, str) and content:
                self._texts.setdefault(index, []).append(content)
                self._first()
            refusal = delta.get("refusal")
            if isinstance(refusal, str) and refusal:
                self._refusals.setdefault(index, []).append(refusal)
                self._first()
            if any(v is not None for k, v in delta.items() if k not in _REBUILDABLE):
                self.rebuildable = False
                self._first()  # a tool call's first part is the answer's first token
        if choice.get("logprobs") is not None:
            self.rebuildable = False
        finish = choice.get("finish_reason")
        if finish is not None:
            self._finish[index] = finish
        else:
            self._finish.setdefault(index, None)

    def _first(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = (time.perf_counter() - self.t0) * 1000.0

    @property
    def finished(self) -> bool:
        """Every choice seen has its ``finish_reason`` (a stream may end without ``[DONE]``)."""
        return bool(self._finish) and all(v is not None for v in self._finish.values())

    @property
    def outputs(self) -> list[Any]:
        """The content per choice, as a whole answer's record keeps it (None: no content)."""
        indexes = sorted(set(self._finish) | set(self._texts))
        return ["".join(self._texts[i]) if i in self._texts else None for i in indexes]

    def whole(self) -> bytes | None:
        """The ``chat.completion`` the chunks add up to (what the cache keeps), or None when it
        would lose something (tool calls, logprobs, a chunk that was not JSON)."""
        if not self.rebuildable or not self.finished:
            return None
        choices = []
        for i in sorted(self._finish):
            message: dict[str, Any] = {
                "role": "assistant",
                "content": "".join(self._texts[i]) if i in self._texts else None,
            }
            if i in self._refusals:
                message["refusal"] = "".join(self._refusals[i])
            choices.append(
                {"index": i, "message": message, "logprobs": None, "finish_reason": self._finish[i]}
            )
        body: dict[str, Any] = {
            "id": self._head.get("id"),
            "object": "chat.completion",
            "created": self._head.get("created"),
            "model": self.model,
            "choices": choices,
        }
        if "system_fingerprint" in self._head:
            body["system_fingerprint"] = self._head["system_fingerprint"]
        if self._usage is not None:
            body["usage"] = self._usage
        return orjson.dumps(body)


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _message(error: Any) -> str:
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return " ".join(error["message"].split())[:200]
    return " ".join(str(error).split())[:200]


# -- a whole answer as a stream -----------------------------------------------------------------
def replay(body: bytes, include_usage: bool) -> list[bytes]:
    """The events OpenAI's API streams for the ``chat.completion`` ``body``: per choice a role
    chunk, its content (tool calls, refusal), a finish chunk; then the usage chunk (which
    ``StreamAnswer`` passes on only if the caller asked). ``include_usage``: every chunk
    carries ``"usage": null``, as OpenAI's do when the usage chunk was asked for."""
    doc = orjson.loads(body)
    head: dict[str, Any] = {
        "id": doc.get("id"),
        "object": "chat.completion.chunk",
        "created": doc.get("created"),
        "model": doc.get("model"),
    }
    if "system_fingerprint" in doc:
        head["system_fingerprint"] = doc["system_fingerprint"]
    if include_usage:
        head["usage"] = None

    def chunk(index: int, delta: dict[str, Any], finish: Any = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + orjson.dumps({**head, "choices": [choice]}) + b"\n\n"

    out: list[bytes] = []
    for n, choice in enumerate(doc.get("choices") or []):
        index = choice.get("index", n)
        message = choice.get("message") or {}
        out.append(chunk(index, {"role": message.get("role") or "assistant", "content": ""}))
        if message.get("content"):
            out.append(chunk(index, {"content": message["content"]}))
        if message.get("refusal"):
            out.append(chunk(index, {"refusal": message["refusal"]}))
        calls = message.get("tool_calls")
        if calls:
            out.append(
                chunk(index, {"tool_calls": [{"index": i, **c} for i, c in enumerate(calls)]})
            )
        out.append(chunk(index, {}, choice.get("finish_reason") or "stop"))
    if doc.get("usage") is not None:  # passed on only if the caller asked (``StreamAnswer``)
        out.append(
            b"data: " + orjson.dumps({**head, "choices": [], "usage": doc["usage"]}) + b"\n\n"
        )
    return out


# -- the response ------------------------------------------------------------------------------
@dataclass
class Outcome:
    """How a stream ended, for its log record."""

    status: int
    tally: Tally
    latency_ms: float
    error: str | None = None
    gone: bool = False  # the caller hung up


class Broken(Exception):
    """The upstream's stream failed: ``status`` for the record, ``public`` for the caller,
    ``str(self)`` for the record's ``error``."""

    def __init__(self, status: int, public: str, detail: str):
        super().__init__(detail)
        self.status, self.public = status, public


Source = AsyncIterator[bytes]


async def upstream_chunks(response: httpx.Response, url: str, limit: int) -> Source:
    """The upstream's body as it arrives, at most ``limit`` bytes; ``Broken`` says why not."""
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise Broken(
                    502,
                    f"upstream answer too large (> {limit} bytes)",
                    f"the LLM upstream {url} streamed more than {limit} bytes, the endpoint's "
                    "client.max_response_bytes: stopped reading and dropped the connection",
                )
            yield chunk
    except httpx.TimeoutException:
        raise Broken(
            504,
            "upstream fell silent mid-stream",
            f"the LLM upstream {url} sent nothing for longer than its client's timeout_s "
            f"(after {size} bytes)",
        ) from None
    except httpx.HTTPError as exc:
        text = str(exc).strip().splitlines()
        why = text[0] if text else type(exc).__name__
        raise Broken(
            502,
            "upstream connection broke while it streamed",
            f"the LLM upstream {url} broke off its stream after {size} bytes: {why}",
        ) from None


async def listed(events: Iterable[bytes]) -> Source:
    for event in events:
        yield event


class StreamAnswer(Response):
    """Server-sent events from ``source``; ``on_end(outcome)`` once, when the stream ended.

    ``error_body(status, message)`` is the JSON error answer for a failure before the first
    event; ``headers`` go on every answer (the request id, the variant and version)."""

    def __init__(
        self,
        source: Source,
        headers: list[tuple[bytes, bytes]],
        *,
        t0: float,
        include_usage: bool,
        error_body: Callable[[int, str], bytes],
        on_end: Callable[[Outcome], None],
        aclose: Callable[[], Any] | None = None,
        gone: Callable[[], bool] = lambda: False,
    ):
        self.status_code = 200
        self.background = None
        self.raw_headers = [SSE_TYPE, (b"cache-control", b"no-cache"), *headers]
        self._extra = headers
        self._source = source
        self._include_usage = include_usage
        self._error_body = error_body
        self._on_end = on_end
        self._aclose = aclose
        self._gone = gone
        self.tally = Tally(t0)
        self._started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        outcome: Outcome | None = None
        pump = asyncio.ensure_future(self._pump(send))
        watch = asyncio.ensure_future(_hang_up(receive))
        try:
            if self._gone():
                pump.cancel()
            else:
                await asyncio.wait((pump, watch), return_when=asyncio.FIRST_COMPLETED)
            if not pump.done():  # the caller hung up first
                pump.cancel()
            await asyncio.wait((pump,))  # its result or exception is read by ``_outcome``
            outcome = self._outcome(pump)
        finally:
            for task in (pump, watch):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
            await self._close_source()
            if outcome is None:  # cancelled from outside (the server shut down)
                outcome = self._ended(499, "the stream was cancelled (the gateway shut down)")
                outcome.gone = True
            try:
                self._on_end(outcome)
            except Exception:  # the log and the metrics must never break serving
                log.exception("mlx serve: after-stream hook failed")

    def _outcome(self, pump: asyncio.Future[None]) -> Outcome:
        if pump.cancelled():
            out = self._ended(499, "the caller hung up mid-stream")
            out.gone = True
            return out
        exc = pump.exception()
        if exc is None:
            return self._ended(200, None)
        if isinstance(exc, Broken):
            return self._ended(exc.status, str(exc))
        if isinstance(exc, OSError):  # a send to a caller who has gone
            out = self._ended(499, "the caller hung up mid-stream")
            out.gone = True
            return out
        log.error("mlx serve: streamed answer failed", exc_info=exc)
        return self._ended(500, f"internal error: {type(exc).__name__}: {exc}")

    def _ended(self, status: int, error: str | None) -> Outcome:
        latency = (time.perf_counter() - self.tally.t0) * 1000.0
        return Outcome(status, self.tally, latency, error)

    async def _close_source(self) -> None:
        with contextlib.suppress(Exception):
            aclose = getattr(self._source, "aclose", None)
            if aclose is not None:
                await aclose()
        if self._aclose is not None:
            with contextlib.suppress(Exception):
                await self._aclose()

    async def _pump(self, send: Send) -> None:
        events = Events()
        tally = self.tally
        try:
            async for chunk in self._source:
                out: list[bytes] = []
                for event in events.feed(chunk):
                    data = data_of(event)
                    kind = Kind.FORWARD if data is None else tally.take(data)
                    if kind is Kind.FORWARD or (kind is Kind.USAGE and self._include_usage):
                        out.append(event)
                    elif kind is Kind.DONE:
                        break
                    elif kind is Kind.ERROR:
                        raise Broken(
                            502,
                            "upstream reported an error mid-stream",
                            f"the LLM upstream sent an error event: {tally.error}",
                        )
                if out:
                    await self._send(send, b"".join(out))
                if tally.done:
                    break
            if not tally.done and not tally.finished:
                raise Broken(
                    502,
                    "upstream ended its stream early",
                    "the LLM upstream closed its stream before [DONE] or a finish_reason",
                )
        except Broken as exc:
            if not self._started:  # nothing sent yet: an ordinary JSON error answer
                await send(
                    {
                        "type": "http.response.start",
                        "status": exc.status,
                        "headers": [(b"content-type", b"application/json"), *self._extra],
                    }
                )
                body = self._error_body(exc.status, exc.public)
                await send({"type": "http.response.body", "body": body})
            else:
                event = b"data: " + self._error_body(exc.status, exc.public) + b"\n\n"
                await send({"type": "http.response.body", "body": event})
            raise
        await self._send(send, DONE, more=False)

    async def _send(self, send: Send, body: bytes, *, more: bool = True) -> None:
        if not self._started:
            self._started = True
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": body, "more_body": more})


async def _hang_up(receive: Receive) -> None:
    """Returns once the caller has gone (the request's body was read already)."""
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            return
