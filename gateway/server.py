"""Running the gateway: uvicorn (uvloop + httptools when installed), one process.

Start-up: open the inference log and its writer, open the route table, load every endpoint's
route (models included) *before* binding, bind the socket, then serve; a ready line on stdout
says where (``--port 0`` binds a free port, and the line names it).

Before it binds, the log is probed with a real write (``LogStore.probe``): a log this process
cannot write is refused with one line, exit 1.

Slow and greedy callers are bounded (``Limits``): request headers must be complete within
``header_timeout_s`` and ``max_header_bytes`` (``gateway.protocol``), a body within
``body_timeout_s`` of its headers (408, logged 499 as the caller's), an idle kept-alive
connection is closed after ``keep_alive_s``, and past ``max_connections`` open connections new
requests are answered 503 by uvicorn (``limit_concurrency``).

Shutdown on SIGTERM or Ctrl-C (uvicorn's graceful shutdown): stop accepting connections,
finish the requests in flight (up to ``GRACE_S``), let running shadow calls finish and log
(up to ``SHADOW_DRAIN_S``), then ``LogWriter.close()`` writes every queued record. The exit
status is 0 when nothing was lost, 1 otherwise (the count is printed). uvicorn's habit of
re-raising the signal after its shutdown is turned off so that the exit status says that.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.keys import SpecKeys
    from gateway.shadow import ShadowProcess
    from inference.writer import WriterStats

from gateway.durable import Durability

log = logging.getLogger("mlx.gateway")

GRACE_S = 30.0
SHADOW_DRAIN_S = 10.0


class ServeError(Exception):
    """The gateway cannot start; one line for the user."""


@dataclass(frozen=True)
class Limits:
    """What a caller may take of the server (``mlx serve`` options; defaults as nginx's and
    Node's, shortened where a model request needs less)."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_s: float = 5.0
    max_connections: int = 1000
    max_header_bytes: int = 65_536


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    root: Path
    state_url: str
    log_url: str
    workspace: str
    environment: str | None
    token: str | None
    poll_s: float = 1.0
    predict_workers: int = 4
    max_batch: int = 32
    shadow_limit: int = 64
    limits: Limits = Limits()
    durability: Durability = Durability.BATCHED
    #: the model endpoint ``POST /invocations`` answers for (None: the only one served)
    default_endpoint: str | None = None


def _logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("mlx.gateway", "mlx.inference"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def serve(opts: ServeOptions, spec_keys: SpecKeys | None = None) -> int:
    """Run until SIGTERM/SIGINT; 0 if every log record was written.

    ``spec_keys``: the upstream keys only the spec can resolve (``gateway.keys``), from the
    composition root; without it such an endpoint gets no key, or is refused if it declares one.
    """
    import uvicorn

    from common import pricing
    from common.db import in_memory, redact_url
    from dataplane.table import RouteStore
    from gateway.app import Gateway
    from gateway.auth import Bearer
    from gateway.control import Control, RouteSource
    from gateway.durable import LogWaits
    from gateway.keys import KeyResolver
    from gateway.protocol import deadlines
    from inference.store import LogError, open_log
    from inference.writer import LogWriter

    _logging()
    if in_memory(opts.log_url):
        raise ServeError(
            f"--log {opts.log_url}: an in-memory log cannot be served (the log writer, the "
            "shadow worker and mlx logs each need to reach it): use a file or PostgreSQL"
        )
    try:
        store = open_log(opts.log_url)
        store.probe()  # a log this process cannot write is refused now, not found out later
    except LogError as exc:
        raise ServeError(str(exc)) from None
    try:
        routes = RouteStore.open(opts.state_url)
    except Exception as exc:
        raise ServeError(f"cannot open the state at {redact_url(opts.state_url)}: {exc}") from None
    sync = opts.durability is Durability.SYNC
    waits = LogWaits() if sync else None
    writer = LogWriter(store, eager=sync, on_done=waits.done if waits is not None else None)
    keys = KeyResolver(spec=spec_keys)
    control = Control(
        RouteSource(routes, opts.workspace),
        opts.root,
        keys=keys.resolve,
        begin_round=keys.begin_round,
        poll_s=opts.poll_s,
    )
    gateway = Gateway(
        control,
        writer,
        opts.workspace,
        Bearer(opts.token),
        predict_workers=opts.predict_workers,
        max_batch=opts.max_batch,
        log_url=opts.log_url,  # the shadow worker writes its records there too
        shadow_limit=opts.shadow_limit,
        body_timeout_s=opts.limits.body_timeout_s,
        durability=opts.durability,
        log_waits=waits,
        default_endpoint=opts.default_endpoint,
    )
    pricing.warm()
    control.poll_once()  # every model loaded before the first request can arrive
    check_default_endpoint(opts.default_endpoint, control.snapshot)
    sock = bind(opts.host, opts.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        await gateway.startup()
        control.start_polling()
        names = control.snapshot.names()
        listed = f"{len(names)} endpoint{'s' if len(names) != 1 else ''}" + (
            f" ({', '.join(names)})" if names else ""
        )
        auth = "bearer token required" if opts.token else "no auth (loopback only)"
        print(
            f"mlx serve: listening on http://{shown}:{port} — {listed}; "
            f"environment {opts.workspace}; log {redact_url(opts.log_url)}; {auth}",
            flush=True,
        )
        try:
            yield
        finally:
            control.stop()
            await gateway.shutdown(SHADOW_DRAIN_S)
            await asyncio.get_running_loop().run_in_executor(None, writer.close)

    limits = opts.limits
    config = uvicorn.Config(
        gateway.app(lifespan),
        lifespan="on",
        log_level="warning",
        access_log=False,
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=int(GRACE_S),
        ws="none",
        http=deadlines(
            limits.header_timeout_s, limits.max_header_bytes, gateway.metrics.connection_closed
        ),
        timeout_keep_alive=max(1, round(limits.keep_alive_s)),
        limit_concurrency=limits.max_connections,
    )
    server = _Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        ok = writer.close()
        stats = writer.stats()
    return report_stop(ok, stats, gateway.model_shadows)


def check_default_endpoint(name: str | None, snapshot: Any) -> None:
    """``--default-endpoint NAME`` must name a model endpoint applied in this environment (one
    whose route failed to load counts: ``/readyz`` says why it is not ready)."""
    if name is None:
        return
    from dataplane.route import Kind

    view = snapshot.endpoints.get(name)
    if view is not None and view.route.kind is not Kind.MODEL:
        raise ServeError(
            f"--default-endpoint {name}: endpoint {name!r} serves a {view.route.kind.value}; "
            "POST /invocations is for a model endpoint"
        )
    if view is None and name not in snapshot.broken:
        names = snapshot.names()
        listed = ", ".join(names) if names else "none (nothing applied)"
        raise ServeError(f"--default-endpoint {name}: no such endpoint; endpoints: {listed}")


def report_stop(closed: bool, stats: WriterStats, shadows: ShadowProcess) -> int:
    """Say on stderr what the log kept when ``mlx serve`` stopped; its exit status: 1 if the log
    lost a record, whether the gateway's writer lost it (``closed`` false: it did not write
    everything) or the shadow worker's (what the worker's last frame said).

    Lost is every record that is not in the log: dropped (the queue was full), refused by the
    database, never written (its database failed until the end, or its file vanished), and the
    shadow worker's. The first line ends with that count; the next says what it is made of.
    """
    unwritten = stats.lost + stats.pending
    lost = unwritten + stats.dropped + stats.rejected + shadows.log_lost
    ok = closed and lost == 0
    message = f"mlx serve: stopped; inference log: {stats.written} record(s) written"
    if shadows.log_written:
        message += f" (and {shadows.log_written} by the shadow worker)"
    if lost:
        message += f", {lost} lost"
    print(message, file=sys.stderr, flush=True)
    if lost:
        parts = [
            f"{n} {what}"
            for n, what in (
                (stats.dropped, "dropped (the queue was full)"),
                (stats.rejected, "refused by the database"),
                (unwritten, "never written (the database could not be written)"),
                (shadows.log_lost, "of the shadow worker's"),
            )
            if n
        ]
        print(f"mlx serve: lost: {', '.join(parts)}", file=sys.stderr, flush=True)
    if not ok:
        log.error("mlx serve: the inference log lost %d record(s)", lost)
    return 0 if ok else 1


class _Server:
    """``uvicorn.Server`` without re-raising the caught signal after a graceful shutdown."""

    def __init__(self, config: Any):
        import uvicorn

        class Server(uvicorn.Server):
            @contextmanager
            def capture_signals(self) -> Generator[None, None, None]:
                import signal
                import threading

                if threading.current_thread() is not threading.main_thread():
                    yield
                    return
                handled = (signal.SIGINT, signal.SIGTERM)
                original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
                try:
                    yield
                finally:
                    for sig, handler in original.items():
                        signal.signal(sig, handler)

        self.server = Server(config)

    def run(self, sockets: list[socket.socket]) -> None:
        self.server.run(sockets=sockets)
