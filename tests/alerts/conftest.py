"""A channel server on 127.0.0.1 that fails on purpose, the alert tables on SQLite and
PostgreSQL, and the engine's peers reduced to what delivery uses (a real provider each)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from contract import AlertMessage, Context, Desired, Prior, Provider
from state.alerting import AlertStore
from state.store import StateStore


@dataclass
class Channel:
    """A receiver whose next answers are scripted: ``modes`` is consumed one per request —
    an HTTP status (``500``), ``"429:SECONDS"`` (with Retry-After) or ``"slow"`` (answers
    after the client's timeout); then ``200``. ``down()`` closes the port (refused)."""

    port: int
    modes: list[Any] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook/secret-token"

    def up(self) -> None:
        channel = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                mode = channel.modes.pop(0) if channel.modes else 200
                channel.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "json": json.loads(body),
                        "answered": mode,
                    }
                )
                if mode == "slow":
                    channel.release.wait(5)
                    mode = 200
                headers = {}
                if isinstance(mode, str) and mode.startswith("429:"):
                    headers["Retry-After"] = mode.split(":", 1)[1]
                    mode = 429
                try:
                    self.send_response(int(mode))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(b'{"status": "ok"}' if int(mode) < 300 else b"nope")
                except ConnectionError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def down(self) -> None:
        if self.server is not None:
            self.release.set()
            self.server.shutdown()
            self.server.server_close()
            self.server = None
            self.release = threading.Event()

    @property
    def delivered(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["answered"] == 200]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def channel() -> Iterator[Channel]:
    ch = Channel(free_port())
    ch.up()
    yield ch
    ch.down()


class Peers:
    """``engine.peers.EnginePeers`` reduced to ``spec`` and ``notify``: each channel is a real
    provider (webhook, pagerduty, sns) sending to a real server."""

    def __init__(self) -> None:
        self.channels: dict[str, tuple[Provider, Prior]] = {}
        self.specs: dict[str, dict[str, Any]] = {}

    def add(self, address: str, provider: Provider, spec: dict[str, Any]) -> None:
        name = address.split(".", 1)[1]
        desired = Desired(address, "alerts", name, spec)
        assert provider.check(desired) == []
        outputs = provider.create(desired).outputs
        self.specs[address] = spec
        self.channels[address] = (provider, Prior(address, "alerts", name, spec, outputs))

    def spec(self, address: str) -> dict[str, Any] | None:
        return self.specs.get(address)

    def notify(self, channel: str, message: AlertMessage) -> None:
        provider, prior = self.channels[channel]
        provider.send(prior, message)  # type: ignore[attr-defined]


def webhook_peers(tmp_path: Path, channel: Channel, **spec: Any) -> Peers:
    from providers.webhook import WebhookProvider

    peers = Peers()
    ctx = Context(root=tmp_path, data_dir=tmp_path / ".mlx", peers=peers)  # type: ignore[arg-type]
    body = {"type": "webhook", "url": channel.url, "timeout_s": 0.5, **spec}
    peers.add("alerts.oncall", WebhookProvider({"type": "webhook"}, ctx), body)
    return peers


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(state_url: str) -> Iterator[AlertStore]:
    state = StateStore(state_url)
    yield AlertStore(state.engine, "default")
    state.close()
