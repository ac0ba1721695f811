"""Bearer tokens: refusing to bind a non-loopback address without one, 401s, nothing logged."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import run_mlx
from tests.gateway.conftest import log_url, routes, spec_dir, train
from tests.gateway.support import Served, model_variant, records, route, wait_records

pytestmark = pytest.mark.slow

TOKEN = "s3cret-gateway-token-42"
SPEC_WITH_TOKEN = "mlx:\n  state: sqlite:///.mlx/state.db\n  gateway:\n    token: ${env.GW_TOKEN}\n"


def test_a_non_loopback_host_needs_a_token(tmp_path: Path) -> None:
    spec = spec_dir(tmp_path / "spec")
    run = run_mlx(["serve", "--host", "0.0.0.0", "--port", "0"], spec)
    assert run.code == 1
    assert run.err.strip().splitlines() == [
        "Error: --host 0.0.0.0 is not a loopback address: set a bearer token first "
        "(MLX_GATEWAY_TOKEN, or mlx.gateway.token: ${env.NAME} in the spec)"
    ], run


def test_the_spec_token_must_be_a_secret_that_is_set(tmp_path: Path) -> None:
    spec = spec_dir(tmp_path / "spec")
    (spec / "mlx.yaml").write_text("mlx:\n  gateway:\n    token: plain-text-token\n")
    literal = run_mlx(["serve", "--port", "0"], spec)
    assert literal.code == 1 and "gateway.token" in literal.err and "Traceback" not in literal.err
    (spec / "mlx.yaml").write_text(SPEC_WITH_TOKEN)
    unset = run_mlx(["serve", "--port", "0"], spec, env={"GW_TOKEN": ""})
    assert unset.code == 1
    assert "mlx.gateway.token is ${env.GW_TOKEN}, but GW_TOKEN is not set" in unset.err


@dataclass
class World:
    server: Served
    log: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("gw-auth")
    spec = spec_dir(root / "spec")
    (spec / "mlx.yaml").write_text(SPEC_WITH_TOKEN)
    train(root / "m" / "model.joblib")
    v1 = model_variant("v1", 1, root / "m" / "model.joblib")
    routes(spec).put("default", "fraud", route("fraud", "model", [v1], stable="v1"))
    server = Served(spec, env={"GW_TOKEN": TOKEN}).wait_ready()
    yield World(server, log_url(spec))
    server.stop()


BODY = {"instances": [[10.0, 30, 12]]}


def test_a_missing_or_wrong_token_is_a_401_and_nothing_is_logged(world: World) -> None:
    s = world.server
    for rid, headers in [
        ("no-auth", {}),
        ("wrong", {"Authorization": "Bearer nope"}),
        ("basic", {"Authorization": f"Basic {TOKEN}"}),
    ]:
        reply = s.post(
            "/endpoints/fraud/invocations", BODY, headers={"x-request-id": rid, **headers}
        )
        assert reply.status == 401, rid
        assert reply.headers["x-request-id"] == rid and "x-mlx-variant" not in reply.headers
    ok = s.post(
        "/endpoints/fraud/invocations",
        BODY,
        headers={"x-request-id": "good", "Authorization": f"Bearer {TOKEN}"},
    )
    assert ok.status == 200
    assert s.post("/endpoints/nope/invocations", BODY).status == 401  # no endpoint list leaks
    assert s.post("/endpoints/fraud/feedback", {"request_id": "good", "label": 1}).status == 401
    logged = wait_records(world.log, "fraud", 1)
    assert [r.request_id for r in logged] == ["good"]
    assert not records(world.log, "nope")


def test_healthz_is_open_and_metrics_need_the_token(world: World) -> None:
    s = world.server
    open_health = s.get("/healthz")
    assert open_health.status == 200 and open_health.json() == {"status": "ok"}
    full = s.get("/healthz", headers={"Authorization": f"Bearer {TOKEN}"})
    assert full.json()["endpoints"]["fraud"]["healthy"] is True
    assert s.get("/metrics").status == 401
    metrics = s.get("/metrics", headers={"Authorization": f"bearer {TOKEN}"})
    assert metrics.status == 200
    line = next(
        ln
        for ln in metrics.body.decode().splitlines()
        if ln.startswith('mlx_gateway_rejected_total{reason="unauthorized"}')
    )
    assert float(line.split()[-1]) >= 5
