"""Readiness while an endpoint applied under a running gateway loads its first version: every
readiness route (``/readyz``, MLflow's ``/ping`` and ``/health``, KServe's
``/v2/health/ready``) says 503 and names it until it serves, then 200; liveness stays 200."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gateway.conftest import dump, routes, spec_dir, train
from tests.gateway.slow_models import SlowToLoad
from tests.gateway.support import Served, model_variant, route

pytestmark = pytest.mark.slow
READINESS = ("/readyz", "/ping", "/health", "/v2/health/ready")


def test_a_replica_is_not_ready_while_a_new_endpoint_loads(tmp_path: Path) -> None:
    spec = spec_dir(tmp_path / "spec")
    store = routes(spec)
    train(tmp_path / "fast" / "model.joblib")
    fast = model_variant("v1", 1, tmp_path / "fast" / "model.joblib")
    store.put("default", "fast", route("fast", "model", [fast], stable="v1"))
    server = Served(spec, poll=0.1).wait_ready()
    try:
        assert [server.get(p).status for p in READINESS] == [200] * 4
        # a second endpoint is applied while serving; its artifact takes 3 s to load
        dump(SlowToLoad(3.0, 3), tmp_path / "slow" / "model.joblib")
        slow = model_variant("v1", 1, tmp_path / "slow" / "model.joblib")
        store.put("default", "slow", route("slow", "model", [slow], stable="v1"))
        seen: list[tuple[str, int, str]] = []

        def loaded() -> bool:
            for path in READINESS:
                reply = server.get(path)
                seen.append((path, reply.status, reply.body.decode()))
            return server.get("/readyz").status == 200 and any(s == 503 for _, s, _ in seen)

        server.wait_for(loaded, what="the new endpoint to load", timeout=60)
        waiting = [(p, text) for p, status, text in seen if status == 503]
        # every readiness route said not ready while it loaded, naming the endpoint
        assert {p for p, _ in waiting} == set(READINESS), seen
        readyz = [text for p, text in waiting if p == "/readyz"]
        assert any("'slow': loading its first version" in t for t in readyz), readyz
        assert server.get("/healthz").status == 200  # liveness never depended on it
        assert [server.get(p).status for p in READINESS] == [200] * 4
        answer = server.post(
            "/endpoints/slow/invocations", {"dataframe_split": {"data": [[1.0, 2.0, 3.0]]}}
        )
        assert answer.status == 200 and answer.json() == {"predictions": [1]}
    finally:
        server.stop()
