"""Calling the LLM: an OpenAI-compatible HTTP client (stdlib only) and a Python hook.

Retries: 429, 5xx, timeouts and refused connections are retried ``retries``
times with exponential backoff (``backoff_s``, doubling, +25% jitter, at most
30 s; a ``Retry-After`` header is honoured up to the same cap). Other 4xx
answers are not retried: the request itself is wrong. ``latency_ms`` is the
time of the attempt that succeeded, not of the retries before it.
"""

from __future__ import annotations

import http.client
import importlib
import json
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from contract import ProviderError
from specs.evals import OpenAIClient, PythonClient

MAX_BACKOFF_S = 30.0
_import_lock = threading.Lock()


@dataclass(frozen=True)
class Reply:
    output: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float = 0.0
    attempts: int = 1
    cost_usd: float | None = None  # only when the caller reports it (a Python hook)


class CallError(Exception):
    """A call that failed for good (after retries, or not retryable)."""

    def __init__(self, message: str, attempts: int = 1):
        super().__init__(message)
        self.attempts = attempts


class Chat(Protocol):
    endpoint: str

    def complete(self, request: Mapping[str, Any]) -> Reply: ...


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class OpenAIChat:
    """POST ``{base_url}/chat/completions``; ``/embeddings`` for ``similar``."""

    def __init__(
        self,
        config: OpenAIClient,
        retries: int,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.config, self.retries, self.sleep = config, retries, sleep
        self.base = config.base_url.rstrip("/")
        self.endpoint = self.base

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        return headers

    def _post_once(self, path: str, body: Mapping[str, Any]) -> Any:
        req = urllib.request.Request(
            self.base + path, json.dumps(body).encode(), self._headers(), method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=self.config.timeout_s) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc)
            if exc.code == 429 or exc.code >= 500:
                raise _Retryable(f"HTTP {exc.code}{detail}", _retry_after(exc)) from None
            hint = " (check api_key)" if exc.code in (401, 403) else ""
            raise CallError(f"HTTP {exc.code} from {self.base}{path}{detail}{hint}") from None
        except TimeoutError as exc:
            raise _Retryable(f"timed out after {self.config.timeout_s:g}s ({exc})") from None
        except urllib.error.URLError as exc:
            raise _Retryable(f"cannot reach {self.base}: {exc.reason}") from None
        except (ConnectionError, http.client.HTTPException) as exc:
            raise _Retryable(f"connection to {self.base} failed: {exc}") from None
        except json.JSONDecodeError as exc:
            raise CallError(f"{self.base}{path} answered with invalid JSON: {exc}") from None

    def _post(self, path: str, body: Mapping[str, Any]) -> tuple[Any, float, int]:
        """The parsed answer, the last attempt's latency in ms, and the attempts made."""
        delay = self.config.backoff_s
        for attempt in range(1, self.retries + 2):
            started = time.perf_counter()
            try:
                data = self._post_once(path, body)
                return data, (time.perf_counter() - started) * 1000.0, attempt
            except _Retryable as exc:
                if attempt > self.retries:
                    raise CallError(
                        f"{exc} (gave up after {attempt} attempt{'s' if attempt > 1 else ''})",
                        attempt,
                    ) from None
                wait = max(delay, exc.retry_after or 0.0)
                self.sleep(min(MAX_BACKOFF_S, wait * (1 + 0.25 * random.random())))
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def complete(self, request: Mapping[str, Any]) -> Reply:
        body = {
            **request.get("params", {}),
            "model": request["model"],
            "messages": request["messages"],
        }
        data, latency, attempts = self._post("/chat/completions", body)
        try:
            message = data["choices"][0]["message"]
            output = message.get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise CallError(f"unexpected chat completion answer: {str(data)[:200]}") from None
        usage = data.get("usage") or {}
        return Reply(
            str(output),
            usage.get("prompt_tokens"),
            usage.get("completion_tokens"),
            latency,
            attempts,
        )

    def embed(self, texts: list[str]) -> list[list[float]]:
        body = {"model": self.config.embedding_model, "input": texts}
        data, _latency, _attempts = self._post("/embeddings", body)
        try:
            items = sorted(data["data"], key=lambda d: d.get("index", 0))
            return [list(map(float, d["embedding"])) for d in items]
        except (KeyError, TypeError, ValueError):
            raise CallError(f"unexpected embeddings answer: {str(data)[:200]}") from None


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        body = exc.read().decode("utf-8", "replace")[:200]
    except Exception:
        return ""
    return f": {body}" if body else ""


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    value = exc.headers.get("Retry-After") if exc.headers else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class PythonHook:
    """``module:function`` called with the request dict; returns text or a dict.

    The dict form: ``{"output": str, "prompt_tokens": int, "completion_tokens": int,
    "cost_usd": float}`` (all but ``output`` optional). The spec directory is on
    ``sys.path`` while importing, so a hook can live next to the spec.
    """

    def __init__(self, config: PythonClient, root: Path):
        self.endpoint = f"python:{config.python}"
        module_name, _, attr = config.python.partition(":")
        with _import_lock:
            added = str(root) not in sys.path
            if added:
                sys.path.insert(0, str(root))
            try:
                obj: Any = importlib.import_module(module_name)
                for part in attr.split("."):
                    obj = getattr(obj, part)
            except (ImportError, AttributeError) as exc:
                raise ProviderError(f"cannot import the LLM hook {config.python!r}: {exc}") from exc
            finally:
                if added:
                    sys.path.remove(str(root))
        if not callable(obj):
            raise ProviderError(f"the LLM hook {config.python!r} is not callable")
        self.fn: Callable[[Mapping[str, Any]], Any] = obj

    def complete(self, request: Mapping[str, Any]) -> Reply:
        started = time.perf_counter()
        try:
            answer = self.fn(dict(request))
        except Exception as exc:
            raise CallError(f"the hook {self.endpoint} raised {type(exc).__name__}: {exc}") from exc
        latency = (time.perf_counter() - started) * 1000.0
        if isinstance(answer, str):
            return Reply(answer, latency_ms=latency)
        if isinstance(answer, Mapping) and "output" in answer:
            return Reply(
                str(answer["output"]),
                answer.get("prompt_tokens"),
                answer.get("completion_tokens"),
                latency,
                cost_usd=answer.get("cost_usd"),
            )
        raise CallError(f"the hook {self.endpoint} returned {type(answer).__name__}, not text")
