"""What the gateway serves is exactly what was gated (item 15), end to end.

`mlx apply` registers a model and serves it; then somebody replaces the copy under the
gateway's artifact directory — with another model, or with a pickle that runs code when it
is loaded. `mlx serve` must refuse to load it (503 naming the endpoint and the version,
``/healthz`` degraded), never unpickle it, and `mlx refresh` must report it.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_mlx, write_spec
from tests.gateway.conftest import train
from tests.gateway.support import Served

pytestmark = pytest.mark.slow

SPEC = {
    "models.yaml": """
        models:
          fraud: {artifact: model.joblib, flavor: sklearn, owner: team-ml}
    """,
    "serving.yaml": """
        endpoints:
          fraud: {serves: "${models.fraud}", owner: team-ml}
    """,
}
BODY = {"instances": [[12.5, 40, 3]]}


class WritesAMarker:
    """Unpickling this creates ``path`` (what a hostile pickle could do with a shell)."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def _served_copy(spec: Path) -> Path:
    from dataplane.table import RouteStore

    store = RouteStore.open(f"sqlite:///{spec / '.mlx' / 'state.db'}")
    try:
        route = store.get("default", "fraud")
        assert route is not None
        return Path(route.doc["variants"]["v1"]["artifact"])
    finally:
        store.engine.dispose()


@pytest.fixture
def applied(tmp_path: Path) -> Path:
    spec = write_spec(tmp_path / "spec", SPEC)
    train(spec / "model.joblib", seed=0)
    result = run_mlx(["apply", "--yes"], spec)
    assert result.code == 0, result
    return spec


def _refused(spec: Path) -> tuple[Served, str]:
    """A fresh `mlx serve` (it loads every route before it binds): the endpoint's answer."""
    server = Served(spec).wait_ready()
    reply = server.post("/endpoints/fraud/invocations", BODY)
    assert reply.status == 503, reply.body
    text = reply.body.decode()
    assert "'fraud'" in text and "version 1" in text and "not the recorded ones" in text
    assert str(spec) not in text and "/.mlx/" not in text  # no server path for callers
    health = server.get("/healthz").json()
    assert health["status"] == "degraded"
    error = health["endpoints"]["fraud"]["variants"]["v1"]["error"]
    assert error.startswith("version 1: its artifact's bytes are not the recorded ones")
    assert str(spec) not in json.dumps(health)
    return server, text


def test_a_served_copy_replaced_by_another_model_is_refused_and_reported(applied: Path) -> None:
    server = Served(applied).wait_ready()
    try:
        assert server.post("/endpoints/fraud/invocations", BODY).status == 200
    finally:
        assert server.stop() == 0
    copy = _served_copy(applied)
    train(copy, seed=3, alpha=40.0)  # a valid model, just not the one that was gated
    refresh = run_mlx(["refresh", "--detailed-exitcode"], applied)
    assert refresh.code == 2, refresh
    assert "the served copy of v1 (version 1) is not the gated bytes" in refresh.out + refresh.err
    server, _ = _refused(applied)
    try:
        assert str(copy) in server.output()  # the operator's stderr names the file
    finally:
        server.stop()
    repaired = run_mlx(["apply", "--yes"], applied)  # the repair fetches the gated bytes again
    assert repaired.code == 0, repaired
    server = Served(applied).wait_ready()
    try:
        reply = server.post("/endpoints/fraud/invocations", BODY)
        assert reply.status == 200 and reply.headers["x-mlx-version"] == "1"
    finally:
        server.stop()


def test_a_hostile_pickle_in_the_served_copy_is_never_unpickled(
    applied: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "the-pickle-ran"
    copy = _served_copy(applied)
    copy.write_bytes(pickle.dumps(WritesAMarker(marker)))
    server, _ = _refused(applied)
    try:
        server.post("/endpoints/fraud/invocations", BODY)
    finally:
        server.stop()
    assert not marker.exists()
    refresh = run_mlx(["refresh"], applied)  # reading it for drift does not run it either
    assert "not the gated bytes" in refresh.out + refresh.err
    assert not marker.exists()
