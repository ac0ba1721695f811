"""The LLM upstream: an async OpenAI-compatible chat-completions client on httpx.

Policy (the same as the eval gates' client, ``providers/gates/llm/client.py``, made async):

* each attempt is bounded by the endpoint client's ``timeout_s``; the whole call, retries and
  waits included, by the deadline the request handler passes (the endpoint's ``timeout_s``);
* connect errors, timeouts, 429 and 5xx are retried ``retries`` times with exponential backoff
  (``backoff_s`` doubling, +25 % jitter, at most 30 s) — a ``Retry-After`` header is honoured
  up to the same cap; a wait that would pass the deadline is not started;
* other answers are final. ``UpstreamError.status`` is what the caller gets: 504 when the last
  attempt timed out, 429 when the upstream kept rate-limiting, 400 when it refused the request
  itself (400/422: the caller's parameters), 502 otherwise (5xx, unreachable, bad JSON, 401/403:
  the gateway's key).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

MAX_BACKOFF_S = 30.0


class UpstreamError(Exception):
    """A call that failed for good; ``status`` is the HTTP status the caller gets."""

    def __init__(self, status: int, message: str, attempts: int, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.attempts = attempts
        self.retry_after = retry_after


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
    def model(self) -> str | None:
        m = self.data.get("model")
        return m if isinstance(m, str) else None


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


class _Retry(Exception):
    def __init__(self, status: int, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


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
) -> Answer:
    """POST ``{base_url}/chat/completions``; ``deadline`` is a ``time.monotonic()`` instant."""
    url = base_url.rstrip("/") + "/chat/completions"
    headers = {"content-type": "application/json", "accept": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    payload = orjson.dumps(body)
    delay = backoff_s
    attempt = 0
    while True:
        attempt += 1
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise UpstreamError(
                504, f"no time left for attempt {attempt} (endpoint timeout)", attempt - 1
            )
        try:
            data, raw = await _once(http, url, headers, payload, min(attempt_timeout, remaining))
            return Answer(data, raw, attempt)
        except _Retry as exc:
            last = exc
        except UpstreamError as exc:
            exc.attempts = attempt
            raise
        if attempt > retries:
            raise UpstreamError(
                last.status, f"{last} ({_attempts(attempt)})", attempt, last.retry_after
            )
        wait = min(
            MAX_BACKOFF_S, max(delay, last.retry_after or 0.0) * (1 + 0.25 * random.random())
        )
        if time.monotonic() + wait >= deadline:
            raise UpstreamError(
                last.status,
                f"{last} ({_attempts(attempt)}; the next retry would pass the endpoint's deadline)",
                attempt,
                last.retry_after,
            )
        await asyncio.sleep(wait)
        delay *= 2


def _attempts(n: int) -> str:
    return f"gave up after {n} attempt{'s' if n > 1 else ''}"


async def _once(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], payload: bytes, timeout: float
) -> tuple[dict[str, Any], bytes]:
    try:
        resp = await http.post(url, content=payload, headers=headers, timeout=timeout)
    except httpx.TimeoutException:
        raise _Retry(504, f"the LLM upstream {url} timed out after {timeout:.3g}s") from None
    except httpx.TransportError as exc:
        raise _Retry(502, f"cannot reach the LLM upstream {url}: {_one_line(exc)}") from None
    status = resp.status_code
    if status == 200:
        try:
            data = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            raise UpstreamError(502, f"the LLM upstream {url} answered invalid JSON", 1) from None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise UpstreamError(
                502, f"the LLM upstream {url} answered no choices: {resp.text[:200]}", 1
            )
        return data, resp.content
    detail = _detail(resp)
    if status == 429:
        raise _Retry(429, f"the LLM upstream rate-limits (HTTP 429){detail}", _retry_after(resp))
    if status >= 500:
        raise _Retry(502, f"the LLM upstream failed (HTTP {status}){detail}", _retry_after(resp))
    if status in (400, 422):
        raise UpstreamError(400, f"the LLM upstream refused the request (HTTP {status}){detail}", 1)
    hint = " (check the endpoint's client.api_key)" if status in (401, 403) else ""
    raise UpstreamError(502, f"the LLM upstream answered HTTP {status}{detail}{hint}", 1)


def _detail(resp: httpx.Response) -> str:
    try:
        text = resp.text.strip()
    except Exception:
        return ""
    try:
        doc = orjson.loads(text)
        message = doc.get("error", {}).get("message") if isinstance(doc, dict) else None
        if isinstance(message, str):
            text = message
    except (orjson.JSONDecodeError, AttributeError):
        pass
    text = " ".join(text.split())[:200]
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
