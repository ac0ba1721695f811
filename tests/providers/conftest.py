"""Real services for provider tests: moto's S3/SNS server, an MLflow server, a webhook receiver.

Each is a real process (or a real HTTP server in a thread) on 127.0.0.1 and a
free port, started once per session and killed at teardown. Tests that use
the processes are marked ``slow``; they still run in ``make test`` and CI. A
``FlakyProxy`` in front of one is the network failing on purpose. A missing
extra (mlflow, moto) skips its tests — and fails them under
``MLX_TEST_REQUIRE_EXTRAS=1``, as CI runs them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from providers.testing.flaky import FlakyProxy
from tests.conftest import missing_extra, require_extra

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args[0]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    _stop(proc)
    tail = log.read_text()[-3000:]
    pytest.fail(f"{proc.args[0]} did not answer {url} within {limit:g}s:\n{tail}")


def _start(
    args: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own process group: teardown kills its workers too
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


# -- moto (S3, SNS, SQS) ---------------------------------------------------------------------
@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``moto_server`` on a free port; the URL to pass as ``endpoint_url``."""
    if not (BIN / "moto_server").exists():
        missing_extra("moto's server is not installed: pip install 'moto[server]' (the dev extra)")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    proc = _start([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], log)
    url = f"http://127.0.0.1:{port}"
    _wait_until_up(f"{url}/moto-api/", proc, log, limit=30)
    yield url
    _stop(proc)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials, and no shared config of the machine's user leaking in."""
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


# -- MLflow -------------------------------------------------------------------------------
MLFLOW_ENV = {
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "MLFLOW_DISABLE_TELEMETRY": "1",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}

#: What SageMaker tests pass as the execution role and the serving image (moto checks neither).
SAGEMAKER_ROLE = "arn:aws:iam::123456789012:role/mlx-sagemaker"
SAGEMAKER_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sklearn-inference:1.2-1"


@pytest.fixture(scope="module")
def sagemaker_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's server with ``UpdateEndpoint`` added; the URL to pass as ``endpoint_url``."""
    require_extra("moto.server", "dev")
    port = free_port()
    log = tmp_path_factory.mktemp("moto-sagemaker") / "moto.log"
    args = [sys.executable, "-m", "tests.providers.moto_sagemaker", "-H", "127.0.0.1"]
    root = Path(__file__).resolve().parents[2]
    proc = _start([*args, "-p", str(port)], log, env={"PYTHONPATH": str(root)})
    url = f"http://127.0.0.1:{port}"
    _wait_until_up(f"{url}/moto-api/", proc, log, limit=30)
    yield url
    _stop(proc)


@pytest.fixture(scope="session")
def mlflow_template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow database: copying it is instant, migrating one takes seconds."""
    require_extra("mlflow", "mlflow")
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    for key, value in MLFLOW_ENV.items():
        os.environ.setdefault(key, value)
    client = MlflowClient(tracking_uri=f"sqlite:///{path}", registry_uri=f"sqlite:///{path}")
    client.search_experiments()
    client.search_registered_models()
    return path


@pytest.fixture
def mlflow_db(mlflow_template_db: Path, tmp_path: Path) -> str:
    """A fresh serverless MLflow store for one test: ``sqlite:///…``."""
    target = tmp_path / "mlflow" / "mlflow.db"
    target.parent.mkdir()
    shutil.copyfile(mlflow_template_db, target)
    return f"sqlite:///{target}"


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` (one worker, no job runner); its tracking URI."""
    require_extra("mlflow", "mlflow")
    home = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    args = [
        str(BIN / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{home / 'mlflow.db'}",
        "--artifacts-destination",
        str(home / "artifacts"),
    ]
    proc = _start(args, home / "server.log", MLFLOW_ENV)
    url = f"http://127.0.0.1:{port}"
    _wait_until_up(f"{url}/health", proc, home / "server.log", limit=120)
    yield url
    _stop(proc)


@pytest.fixture
def mlflow_proxy(mlflow_server: str) -> Iterator[FlakyProxy]:
    """A ``FlakyProxy`` in front of the MLflow server: the network between mlx and MLflow."""
    with FlakyProxy(mlflow_server) as proxy:
        yield proxy


@pytest.fixture
def moto_proxy(moto_endpoint: str) -> Iterator[FlakyProxy]:
    """A ``FlakyProxy`` in front of moto's server."""
    with FlakyProxy(moto_endpoint) as proxy:
        yield proxy


# -- a webhook receiver -------------------------------------------------------------------
@dataclass
class Receiver:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    #: Released at teardown so a deliberately slow handler does not outlive the test.
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def webhook_receiver() -> Iterator[Receiver]:
    """An HTTP server on 127.0.0.1 recording every POST; ``status``/``delay`` set its answer."""
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.requests.append(
                {"path": self.path, "headers": dict(self.headers), "json": json.loads(body)}
            )
            if receiver.delay:
                receiver.release.wait(receiver.delay)
            try:
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok" if receiver.status < 400 else b"no_service")
            except ConnectionError:
                pass  # the client timed out and left (what the timeout tests do)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/T000/B000/secret"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield receiver
    receiver.release.set()
    server.shutdown()
    server.server_close()
