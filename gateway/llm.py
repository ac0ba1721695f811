"""The LLM upstream: an async OpenAI-compatible chat-completions client on httpx.

Policy (the same as the eval gates' client, ``providers/gates/llm/client.py``, made async):

* each attempt is bounded by the endpoint client's ``timeout_s`` — the whole attempt, the
  answer's body included, so an upstream that trickles its answer cannot hold a request past
  it; the whole call, retries and waits included, by the deadline the request handler passes
  (the endpoint's ``timeout_s``);
* the answer is read incrementally and at most ``max_response_bytes`` of it (the endpoint
  client's, default 8 MiB): a larger one — announced by ``Content-Length`` or found while
  reading — is never held whole; reading stops, the connection is dropped and the call fails
  (502, not retried: the next answer would be as large);
* connect errors, timeouts, 429 and 5xx are retried ``retries`` times with exponential backoff
  (``backoff_s`` doubling, +25 % jitter, at most 30 s) — a ``Retry-After`` header is honoured
  up to the same cap; a wait that would pass the deadline is not started;
* other answers are final. ``UpstreamError.status`` is what the caller gets: 504 when the last
  attempt timed out, 429 when the upstream kept rate-limiting, 400 when it refused the request
  itself (400/422: the caller's parameters), 502 otherwise (5xx, unreachable, bad JSON, too
  large, 401/403: the gateway's key).

``stream`` is the streamed call (``stream: true``): the same policy until the upstream
answered 200, then the open response is the caller's to read (``gateway.streaming``).

Every failure has two texts. ``UpstreamError.public`` is the kind of failure, for the caller:
it never holds the upstream's address, host name or anything the upstream wrote (an error
page can hold its own URL, an internal host, a stack trace). ``str(error)`` is the detail —
the URL, the transport error, the upstream's own message — for the inference log and stderr.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import httpx
import orjson

from common import pricing
from dataplane.route import DEFAULT_MAX_RESPONSE_BYTES

T = TypeVar("T")

MAX_BACKOFF_S = 30.0
#: How much of an error answer is read (only its first 200 characters are kept).
_ERROR_READ_BYTES = 64 * 1024


class UpstreamError(Exception):
    """A call that failed for good; ``status`` is the HTTP status the caller gets, ``public``
    what the caller is told, ``str(self)`` the detail the log keeps, ``upstream_status`` the
    HTTP status of the upstream's last answer (``None``: it gave none — unreachable, timed out,
    broke off)."""

    def __init__(
        self,
        status: int,
        public: str,
        detail: str,
        attempts: int,
        retry_after: float | None = None,
        upstream_status: int | None = None,
    ):
        super().__init__(detail)
        self.status = status
        self.public = public
        self.attempts = attempts
        self.retry_after = retry_after
        self.upstream_status = upstream_status


@dataclass(frozen=True, slots=True)
class Answer:
    data: dict[str, Any]
    raw: bytes  # the upstream's answer as it came: what the caller gets
    attempts: int

    @property
    def usage(self) -> tuple[int | None, int | None]:
        usage = self.data.get("usage")
        if not isinstance(usage, dict):
            return None, None
        return _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))

    @property
    def tokens(self) -> pricing.Usage:
        """The raw usage, cached input tokens included (``common.pricing.usage_of``)."""
        return pricing.usage_of(self.data.get("usage"))

    @property
    def model(self) -> str | None:
        m = self.data.get("model")
        return m if isinstance(m, str) else None


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


class _Retry(Exception):
    """An attempt that failed in a way the next attempt may not (texts as ``UpstreamError``)."""

    def __init__(
        self,
        status: int,
        public: str,
        detail: str,
        retry_after: float | None = None,
        upstream_status: int | None = None,
    ):
        super().__init__(detail)
        self.status, self.public, self.retry_after = status, public, retry_after
        self.upstream_status = upstream_status


class _TooLarge(Exception):
    def __init__(self, declared: int | None):
        super().__init__(declared)
        self.declared = declared


def new_client(max_connections: int = 256) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=64),
        timeout=httpx.Timeout(60.0),
        follow_redirects=False,
    )


async def chat(
    http: httpx.AsyncClient,
    base_url: str,
    api_key: str | None,
    body: dict[str, Any],
    *,
    attempt_timeout: float,
    deadline: float,
    retries: int,
    backoff_s: float,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> Answer:
    """POST ``{base_url}/chat/completions``; ``deadline`` is a ``time.monotonic()`` instant."""
    url, headers, payload = _request(base_url, api_key, body, "application/json")

    async def once(timeout: float) -> tuple[dict[str, Any], bytes]:
        return await _once(http, url, headers, payload, timeout, max_response_bytes)

    (data, raw), attempts = await _retrying(once, attempt_timeout, deadline, retries, backoff_s)
    return Answer(data, raw, attempts)


@dataclass(slots=True)
class Stream:
    """An upstream answer being streamed (status 200, ``text/event-stream``): ``response`` is
    open and its body not read yet; the reader closes it (``aclose``), which drops the
    connection if the body was not read to its end — how a caller's hang-up reaches the
    upstream. ``whole`` instead when the upstream ignored ``stream`` and answered JSON."""

    url: str
    attempts: int
    response: httpx.Response | None = None
    whole: Answer | None = None

    async def aclose(self) -> None:
        if self.response is not None:
            await self.response.aclose()


async def stream(
    http: httpx.AsyncClient,
    base_url: str,
    api_key: str | None,
    body: dict[str, Any],
    *,
    attempt_timeout: float,
    deadline: float,
    retries: int,
    backoff_s: float,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> Stream:
    """POST a streamed chat request (``body`` has ``stream: true``) and return once the
    upstream answered 200: the same policy as ``chat`` up to there (each attempt bounded by
    ``attempt_timeout`` until the answer's headers, retries, deadline, ``UpstreamError``).
    From then on each read of the stream waits at most ``attempt_timeout``: a stream may run
    longer than the endpoint's timeout, as long as the upstream never falls silent for that
    long."""
    url, headers, payload = _request(base_url, api_key, body, "text/event-stream")

    async def once(timeout: float) -> Stream:
        return await _open(http, url, headers, payload, timeout, max_response_bytes)

    opened, attempts = await _retrying(once, attempt_timeout, deadline, retries, backoff_s)
    opened.attempts = attempts
    return opened


def _request(
    base_url: str, api_key: str | None, body: dict[str, Any], accept: str
) -> tuple[str, dict[str, str], bytes]:
    url = base_url.rstrip("/") + "/chat/completions"
    headers = {"content-type": "application/json", "accept": accept}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    return url, headers, orjson.dumps(body)


async def _retrying(
    once: Callable[[float], Awaitable[T]],
    attempt_timeout: float,
    deadline: float,
    retries: int,
    backoff_s: float,
) -> tuple[T, int]:
    """``once(timeout)``'s result and the attempts it took, under the module's retry policy."""
    delay = backoff_s
    attempt = 0
    while True:
        attempt += 1
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            text = f"no time left for attempt {attempt} within the endpoint's timeout"
            raise UpstreamError(504, f"upstream timed out ({text})", text, attempt - 1)
        timeout = min(attempt_timeout, remaining)
        try:
            return await once(timeout), attempt
        except _Retry as exc:
            last = exc
        except UpstreamError as exc:
            exc.attempts = attempt
            raise
        if attempt > retries:
            raise _final(last, attempt, "")
        wait = min(
            MAX_BACKOFF_S, max(delay, last.retry_after or 0.0) * (1 + 0.25 * random.random())
        )
        if time.monotonic() + wait >= deadline:
            raise _final(last, attempt, "; the next retry would pass the endpoint's deadline")
        await asyncio.sleep(wait)
        delay *= 2


async def _open(
    http: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    payload: bytes,
    timeout: float,
    limit: int,
) -> Stream:
    """One attempt of ``stream``: the open response if the upstream answered 200."""
    request = http.build_request("POST", url, content=payload, headers=headers, timeout=timeout)
    try:
        async with asyncio.timeout(timeout):
            resp = await http.send(request, stream=True)
    except (TimeoutError, httpx.TimeoutException):
        after = f"timed out after {timeout:.3g}s"
        raise _Retry(504, f"upstream {after}", f"the LLM upstream {url} {after}") from None
    except httpx.InvalidURL as exc:
        raise UpstreamError(
            502,
            "upstream address is not a valid URL (the endpoint's client.base_url)",
            f"the LLM upstream {url} is not a valid URL: {_one_line(exc)}",
            1,
        ) from None
    except httpx.HTTPError as exc:
        detail = f"cannot reach the LLM upstream {url}: {_one_line(exc)}"
        raise _Retry(502, "upstream unreachable", detail) from None
    status = resp.status_code
    media = resp.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if status == 200 and media != "application/json":
        return Stream(url, 1, response=resp)
    # an error answer, or a whole JSON answer from an upstream that does not stream: read it
    try:
        async with asyncio.timeout(timeout):
            if status == 200:
                raw = await _read(resp, limit)
            else:
                raw = await _read(resp, _ERROR_READ_BYTES, truncate=True)
    except (TimeoutError, httpx.TimeoutException):
        after = f"timed out after {timeout:.3g}s"
        raise _Retry(504, f"upstream {after}", f"the LLM upstream {url} {after}") from None
    except _TooLarge:
        raise UpstreamError(
            502,
            f"upstream answer too large (> {limit} bytes)",
            f"the LLM upstream {url} answered more than {limit} bytes, the endpoint's "
            "client.max_response_bytes: stopped reading and dropped the connection",
            1,
        ) from None
    except httpx.HTTPError as exc:
        public = "upstream connection broke while it answered"
        detail = f"the LLM upstream {url} broke off its answer: {_one_line(exc)}"
        raise _Retry(502, public, detail) from None
    finally:
        await resp.aclose()
    if status == 200:
        data, raw = _parsed(url, raw)
        return Stream(url, 1, whole=Answer(data, raw, 1))
    _refused(url, status, raw, resp)


def _final(last: _Retry, attempts: int, why: str) -> UpstreamError:
    note = f" ({_attempts(attempts)}{why})"
    return UpstreamError(
        last.status,
        last.public + note,
        str(last) + note,
        attempts,
        last.retry_after,
        last.upstream_status,
    )


def _attempts(n: int) -> str:
    return f"gave up after {n} attempt{'s' if n > 1 else ''}"


async def _once(
    http: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    payload: bytes,
    timeout: float,
    limit: int,
) -> tuple[dict[str, Any], bytes]:
    answered = False
    try:
        async with asyncio.timeout(timeout):
            async with http.stream(
                "POST", url, content=payload, headers=headers, timeout=timeout
            ) as resp:
                answered = True
                status = resp.status_code
                if status == 200:
                    raw = await _read(resp, limit)
                else:
                    raw = await _read(resp, _ERROR_READ_BYTES, truncate=True)
    except (TimeoutError, httpx.TimeoutException):
        after = f"timed out after {timeout:.3g}s"
        raise _Retry(504, f"upstream {after}", f"the LLM upstream {url} {after}") from None
    except _TooLarge as exc:
        said = f" (Content-Length: {exc.declared})" if exc.declared is not None else ""
        raise UpstreamError(
            502,
            f"upstream answer too large (> {limit} bytes)",
            f"the LLM upstream {url} answered more than {limit} bytes{said}, the endpoint's "
            "client.max_response_bytes: stopped reading and dropped the connection",
            1,
            upstream_status=200,  # only a 200's body is read whole
        ) from None
    except httpx.InvalidURL as exc:
        raise UpstreamError(
            502,
            "upstream address is not a valid URL (the endpoint's client.base_url)",
            f"the LLM upstream {url} is not a valid URL: {_one_line(exc)}",
            1,
        ) from None
    except httpx.HTTPError as exc:
        if answered:
            public = "upstream connection broke while it answered"
            detail = f"the LLM upstream {url} broke off its answer: {_one_line(exc)}"
        else:
            public = "upstream unreachable"
            detail = f"cannot reach the LLM upstream {url}: {_one_line(exc)}"
        raise _Retry(502, public, detail) from None
    if status == 200:
        return _parsed(url, raw)
    _refused(url, status, raw, resp)


async def _read(resp: httpx.Response, limit: int, *, truncate: bool = False) -> bytes:
    """At most ``limit`` bytes of the body (decoded); more: ``_TooLarge``, or cut off when
    ``truncate``. Read chunk by chunk, so a body over the limit is never held whole."""
    declared = resp.headers.get("content-length")
    if not truncate and declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge(int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.aiter_bytes():
        size += len(chunk)
        if size > limit:
            if not truncate:
                raise _TooLarge(None)
            chunks.append(chunk[: len(chunk) - (size - limit)])
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _parsed(url: str, raw: bytes) -> tuple[dict[str, Any], bytes]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamError(
            502,
            "upstream answered invalid JSON",
            f"the LLM upstream {url} answered invalid JSON{_snippet(raw)}",
            1,
            upstream_status=200,  # only a 200 is parsed
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise UpstreamError(
            502,
            "upstream answered no choices",
            f"the LLM upstream {url} answered no choices{_snippet(raw)}",
            1,
            upstream_status=200,
        )
    return data, raw


def _refused(url: str, status: int, raw: bytes, resp: httpx.Response) -> NoReturn:
    """Raise what a non-200 answer means (``_Retry`` if another attempt may do better)."""
    detail = _detail(raw)
    if status == 429:
        raise _Retry(
            429,
            "upstream rate-limits (HTTP 429)",
            f"the LLM upstream {url} rate-limits (HTTP 429){detail}",
            _retry_after(resp),
            status,
        )
    if status >= 500:
        raise _Retry(
            502,
            f"upstream answered HTTP {status}",
            f"the LLM upstream {url} failed (HTTP {status}){detail}",
            _retry_after(resp),
            status,
        )
    if status in (400, 422):
        raise UpstreamError(
            400,
            f"upstream refused the request (HTTP {status})",
            f"the LLM upstream {url} refused the request (HTTP {status}){detail}",
            1,
            upstream_status=status,
        )
    if status in (401, 403):
        raise UpstreamError(
            502,
            f"upstream refused the gateway's credentials (HTTP {status})",
            f"the LLM upstream {url} answered HTTP {status}{detail} "
            "(check the endpoint's client.api_key)",
            1,
            upstream_status=status,
        )
    raise UpstreamError(
        502,
        f"upstream answered HTTP {status}",
        f"the LLM upstream {url} answered HTTP {status}{detail}",
        1,
        upstream_status=status,
    )


def _detail(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").strip()
    try:
        doc = orjson.loads(text)
        message = doc.get("error", {}).get("message") if isinstance(doc, dict) else None
        if isinstance(message, str):
            text = message
    except (orjson.JSONDecodeError, AttributeError):
        pass
    text = " ".join(text.split())[:200]
    return f": {text}" if text else ""


def _snippet(raw: bytes) -> str:
    text = " ".join(raw[:400].decode("utf-8", "replace").split())[:200]
    return f": {text}" if text else ""


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
