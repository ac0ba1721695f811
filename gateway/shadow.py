"""Shadow calls: detached tasks that can never change or delay the caller's answer.

A shadow copy starts only after the caller's answer has been handed to the server (the
response's last ``send``), and nothing the caller waits for ever waits for it — not a
Starlette ``BackgroundTask``, which runs inside the request cycle and would hold up the next
request on a keep-alive connection.

* Prompt shadows (``Shadows``) are I/O: detached asyncio tasks nobody awaits, with their own
  timeout and their own HTTP connection pool, so a hanging upstream cannot take the caller's.
* Model shadows (``ShadowProcess``) are CPU work: they run in a child process at the lowest
  priority (``gateway.worker``), so they never take the interpreter's lock or a core from the
  requests being answered; the request path only writes the job to a pipe.

At most ``limit`` shadow calls of each kind are in flight; beyond that a copy is dropped and
counted (``mlx_gateway_shadow_total{outcome="dropped"}``), not logged: it says nothing about
the candidate. So are copies that expire waiting for a busy machine, or whose model the
worker is still loading. A candidate that crashes or runs past its timeout is logged under
variant ``shadow`` with its error.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from gateway.control import Loaded

log = logging.getLogger("mlx.gateway")


class Shadows:
    def __init__(self, limit: int, count: Callable[[str, str], None]):
        self.limit = limit
        self.count = count
        self.inflight = 0
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, endpoint: str, make: Callable[[], Coroutine[Any, Any, Any]]) -> bool:
        """Start a shadow call now (from the event loop); False if it was dropped."""
        if self.inflight >= self.limit:
            self.count(endpoint, "dropped")
            return False
        self.inflight += 1
        self.count(endpoint, "sent")
        task = asyncio.get_running_loop().create_task(make())
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return True

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.inflight -= 1
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("mlx serve: a shadow call failed: %r", task.exception())

    async def drain(self, timeout: float) -> None:
        """Let running shadow calls finish (and log) for up to ``timeout`` s, then cancel them."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=2.0)


# -- model shadows: the low-priority worker process ------------------------------------------
class _Pipe(asyncio.SubprocessProtocol):
    """Reads the worker's answers: frames parsed straight from the pipe's bytes."""

    def __init__(self, owner: ShadowProcess):
        from gateway.worker import HEADER

        self.owner = owner
        self.header = HEADER
        self.buffer = bytearray()
        self.exited: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._process_exited = self._stdout_closed = False

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        buf = self.buffer
        buf += data
        size = self.header.size
        while len(buf) >= size:
            meta_len, body_len = self.header.unpack_from(buf)
            end = size + meta_len + body_len
            if len(buf) < end:
                break
            meta = orjson.loads(bytes(buf[size : size + meta_len]))
            del buf[:end]
            self.owner._answered(meta)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self._stdout_closed = True
            self._check()

    def process_exited(self) -> None:
        self._process_exited = True
        self._check()

    def _check(self) -> None:
        # done once the process exited *and* every answer it wrote has been read
        if self._process_exited and self._stdout_closed and not self.exited.done():
            self.exited.set_result(None)


#: jobs go to the worker in bursts: every BURST_S, or as soon as BURST are waiting. The
#: worker answers a burst with one predict per model, so a copy costs it a fraction of a
#: lone predict (and the gateway one pipe write per burst, not one per copy)
BURST_S = 0.02
BURST = 32


class ShadowProcess:
    """The gateway's side of ``gateway.worker``: sends model shadow jobs, reads their answers.

    Started on first use (a gateway without model shadows never starts it) and again whenever
    it exits (a model stuck past its timeout makes it exit). Jobs it was holding when it exited
    never ran to an answer and are dropped. Everything here runs on the event loop; a job costs
    the request path one pipe write.
    """

    def __init__(
        self,
        limit: int,
        on_answer: Callable[[Any, dict[str, Any]], None],
        on_drop: Callable[[Any, str], None],
        log_url: str | None = None,
    ):
        self.limit = limit
        #: the inference log the worker writes its records to (None: it sends them back)
        self.log_url = log_url
        #: records the worker wrote and lost, summed over the workers that closed cleanly
        self.log_written = 0
        self.log_lost = 0
        self.on_answer = on_answer
        self.on_drop = on_drop
        self.pending: dict[int, Any] = {}
        self.loads: dict[str, dict[str, Any]] = {}
        self._transport: Any = None
        self._stdin: Any = None
        self._pipe: _Pipe | None = None
        self._starting: asyncio.Task[Any] | None = None
        self._watch: asyncio.Task[Any] | None = None
        self._next = 0
        self._outbox: list[tuple[dict[str, Any], bytes]] = []  # jobs for the next burst
        self._flush_timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._backoff = 0.5
        self.restarts = 0

    @staticmethod
    def key(loaded: Loaded) -> str:
        """The worker's name for a candidate's model: what it loads, and what it must hash to."""
        schema = orjson.dumps(loaded.input_schema, option=orjson.OPT_SORT_KEYS)
        return "\x00".join(
            (
                str(loaded.flavor),
                str(loaded.artifact),
                str(loaded.fingerprint),
                str(loaded.digest),
                hashlib.sha256(schema).hexdigest()[:16],
            )
        )

    def preload(self, loaded: Loaded) -> None:
        key = self.key(loaded)
        if key in self.loads:
            return
        meta = {
            "op": "load",
            "key": key,
            "flavor": loaded.flavor,
            "artifact": loaded.artifact,
            "digest": loaded.digest,
            "input_schema": loaded.input_schema,
        }
        self.loads[key] = meta
        if self._running():
            self._send(meta)
        else:
            self._ensure_started()

    def keep(self, live: set[str]) -> None:
        """Only these models are mirrored now: the worker may forget the others."""
        stale = [k for k in self.loads if k not in live]
        if not stale:
            return
        for key in stale:
            del self.loads[key]
        if self._running():
            self._send({"op": "keep", "keys": sorted(live)})

    def submit(
        self,
        ctx: Any,
        loaded: Loaded,
        timeout: float,
        body: bytes,
        record: dict[str, Any] | None = None,
        keep: bool = False,
    ) -> bool:
        """Queue a job; False (dropped) when too many are in flight or the worker is down.

        ``record``: the fields of the call's log record the gateway knows (the worker adds
        variant, status, latency and error); ``keep``: whether its payloads are sampled."""
        if len(self.pending) >= self.limit or self._closing:
            return False
        key = self.key(loaded)
        if key not in self.loads or not self._running():
            self.preload(loaded)
            if not self._running():
                return False
        self._next += 1
        meta = {
            "op": "job",
            "id": self._next,
            "key": key,
            "timeout": timeout,
            "sent": time.monotonic(),
            "record": record,
            "keep": keep,
        }
        self.pending[self._next] = ctx
        self._outbox.append((meta, body))
        if len(self._outbox) >= BURST:
            self._flush()
        elif self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(BURST_S, self._flush)
        return True

    def _flush(self) -> None:
        """Send the jobs gathered since the last burst, in one write."""
        from gateway.worker import encode

        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if not self._outbox:
            return
        out, self._outbox = self._outbox, []
        if self._running():
            self._stdin.write(b"".join(encode(meta, body) for meta, body in out))

    def _running(self) -> bool:
        return self._stdin is not None and self._pipe is not None and not self._pipe.exited.done()

    def _send(self, meta: dict[str, Any], body: bytes = b"") -> None:
        from gateway.worker import encode

        self._flush()  # the jobs before it go first
        self._stdin.write(encode(meta, body))

    def _answered(self, meta: dict[str, Any]) -> None:
        if meta.get("op") == "closed":  # the worker's last word: what its log writer did
            self.log_written += int(meta.get("written") or 0)
            self.log_lost += int(meta.get("lost") or 0)
            return
        self._backoff = 0.5
        ctx = self.pending.pop(int(meta.get("id", -1)), None)
        if ctx is None:
            return
        if "skipped" in meta:
            self.on_drop(ctx, str(meta["skipped"]))
        else:
            self.on_answer(ctx, meta)

    def _ensure_started(self) -> None:
        if self._starting is None and not self._closing:
            self._starting = asyncio.get_running_loop().create_task(self._start())

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            log_args = ["--log", self.log_url] if self.log_url else []
            transport, pipe = await loop.subprocess_exec(
                lambda: _Pipe(self),
                sys.executable,
                "-m",
                "gateway.worker",
                *log_args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=None,
            )
        except OSError as exc:
            log.error("mlx serve: cannot start the shadow worker: %s", exc)
            self._starting = None
            return
        self._transport, self._pipe = transport, pipe
        self._stdin = transport.get_pipe_transport(0)
        for meta in self.loads.values():
            self._send(meta)
        self._watch = loop.create_task(self._watch_exit(transport, pipe))
        self._starting = None

    async def _watch_exit(self, transport: Any, pipe: _Pipe) -> None:
        await pipe.exited
        code = transport.get_returncode()
        transport.close()
        self._stdin = None
        self._outbox = []
        dropped, self.pending = self.pending, {}
        for ctx in dropped.values():
            self.on_drop(ctx, "the shadow worker exited")
        if self._closing:
            return
        self.restarts += 1
        log.warning("mlx serve: the shadow worker exited (%s); starting another", code)
        await asyncio.sleep(self._backoff)
        self._backoff = min(self._backoff * 2, 10.0)
        self._ensure_started()

    async def close(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for the jobs in flight, then stop the worker."""
        self._flush()
        deadline = time.monotonic() + timeout
        while self.pending and self._running() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self._closing = True
        if self._starting is not None:
            await self._starting
        if self._pipe is None or self._transport is None:
            return
        if not self._pipe.exited.done():
            if self._stdin is not None:
                self._stdin.close()  # the worker exits at the end of its input
            from gateway.worker import LOG_CLOSE_S

            try:  # it writes its queued log records before it exits
                await asyncio.wait_for(asyncio.shield(self._pipe.exited), LOG_CLOSE_S + 5.0)
            except TimeoutError:
                self._transport.kill()
        if self._watch is not None:
            await self._watch
