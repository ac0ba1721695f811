"""Running the real gateway (``mlx serve``) against a spec dir whose state holds route documents.

``RouteStore`` stands in for the control plane (the ``gateway`` provider writes the same
documents); ``Served`` is one ``mlx serve`` process on a free loopback port.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import MLX, REPO

READY = "mlx serve: listening on http://"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    method: str,
    url: str,
    body: Any = None,
    *,
    headers: Mapping[str, str] | None = None,
    raw: bytes | None = None,
    timeout: float = 30.0,
) -> Reply:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None and not req.has_header("Content-type"):  # urllib's capitalization
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Reply(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


class Served:
    """One ``mlx serve`` subprocess; ``url`` once it printed its ready line."""

    def __init__(
        self,
        spec: Path,
        *,
        args: list[str] | None = None,
        env: Mapping[str, str] | None = None,
        poll: float = 0.2,
    ):
        full_env = {**os.environ, "PYTHONPATH": str(REPO), "MLX_ACTOR": "tester"}
        for name in ("MLX_ENV", "MLX_STATE", "MLX_LOG", "MLX_GATEWAY_TOKEN"):
            full_env.pop(name, None)
        full_env.update(env or {})
        cmd = [
            str(MLX),
            "serve",
            "-C",
            str(spec),
            "--port",
            "0",
            "--poll",
            str(poll),
            *(args or []),
        ]
        self.proc = subprocess.Popen(
            cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._ready = threading.Event()
        self.url = ""
        threading.Thread(target=self._read_out, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout.append(line)
            if line.startswith(READY) and not self._ready.is_set():
                self.url = "http://" + line[len(READY) :].split(" ", 1)[0]
                self._ready.set()
        self._ready.set()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def wait_ready(self, timeout: float = 60.0) -> Served:
        if not self._ready.wait(timeout) or not self.url:
            self.proc.kill()
            raise AssertionError(f"mlx serve did not start:\n{self.output()}")
        return self

    def output(self) -> str:
        return "".join(self.stdout) + "--- stderr\n" + "".join(self.stderr)

    def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return http("POST", self.url + path, body, **kw)

    def get(self, path: str, **kw: Any) -> Reply:
        return http("GET", self.url + path, **kw)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"mlx serve did not stop on SIGTERM:\n{self.output()}") from None

    def wait_for(self, check: Any, timeout: float = 20.0, what: str = "condition") -> Any:
        """Poll ``check()`` until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}\n{self.output()}")


# -- route documents (what the gateway provider writes) -------------------------------------------
def model_variant(
    name: str,
    version: int,
    artifact: Path | str,
    flavor: str = "sklearn",
    input_schema: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A model variant as the gateway provider writes it: its fingerprint is the digest of
    the artifact's bytes as they are now (a fake one for an artifact that does not exist)."""
    from common.digests import digest_path

    path = Path(artifact)
    fingerprint = digest_path(path) if path.exists() else f"sha256:{name}-{version}-missing"
    entry = {
        "name": name,
        "version": version,
        "fingerprint": fingerprint,
        "outputs": {"version": version, "fingerprint": fingerprint},
        "flavor": flavor,
        "artifact": str(artifact),
        "digest": fingerprint,
        "deployed_at": "2026-12-01T12:00:00+00:00",
    }
    if input_schema is not None:
        entry["input_schema"] = input_schema
    return entry


def prompt_variant(name: str, version: int, **prompt: Any) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "fingerprint": f"sha256:{name}-{version}",
        "prompt": {
            "params": {},
            "variables": [],
            "routing": None,
            "retrieval_version": None,
            **prompt,
        },
    }


def route(
    endpoint: str,
    kind: str,
    variants: list[dict[str, Any]],
    *,
    stable: str,
    candidate: str | None = None,
    weight: float = 0,
    mirror: float = 0,
    **extra: Any,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": 1,
        "endpoint": endpoint,
        "address": f"endpoints.{endpoint}",
        "environment": "default",
        "kind": kind,
        "subject": f"{'models' if kind == 'model' else 'prompts'}.{endpoint}",
        "variants": {v["name"]: v for v in variants},
        "traffic": {"stable": stable, "candidate": candidate, "weight": weight, "mirror": mirror},
        "log": {"payloads": 1.0},
        "cache": None,
        "client": None,
        "pricing": {},
        "timeout_s": 5,
        "max_body_bytes": 1_048_576,
    }
    doc.update(extra)
    return doc


def llm_client(base_url: str, **kw: Any) -> dict[str, Any]:
    """A prompt route's ``client`` (an OpenAI-compatible upstream at ``base_url``): short
    timeouts and backoff for tests; ``kw`` overrides."""
    return {
        "type": "openai",
        "base_url": base_url,
        "timeout_s": 5,
        "backoff_s": 0.01,
        "model": None,
        "params": {},
        **kw,
    }


def find_record(log_url: str, endpoint: str, request_id: str, variant: str | None = None) -> Any:
    """The record of ``request_id`` (of ``variant``, if given), or None."""
    return next(
        (
            r
            for r in records(log_url, endpoint)
            if r.request_id == request_id and (variant is None or r.variant == variant)
        ),
        None,
    )


def records(log_url: str, endpoint: str, **kw: Any) -> list[Any]:
    from inference import query
    from inference.store import open_log

    store = open_log(log_url)
    try:
        return [r.record for r in query.tail(store, endpoint, limit=None, **kw)]
    finally:
        store.close()


def wait_records(
    log_url: str, endpoint: str, n: int, timeout: float = 20.0, **kw: Any
) -> list[Any]:
    """The endpoint's records once there are at least ``n`` (the writer flushes every 0.2 s)."""
    deadline = time.monotonic() + timeout
    got: list[Any] = []
    while time.monotonic() < deadline:
        got = records(log_url, endpoint, **kw)
        if len(got) >= n:
            return got
        time.sleep(0.1)
    raise AssertionError(f"{endpoint}: {len(got)} records, expected {n}")
