"""Process life: PostgreSQL replicas agree and share a log; SIGTERM with shadows in flight.

(SIGTERM under load, in both log durabilities, and kill -9: tests/gateway/test_log_truth.py.)
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from pathlib import Path

import pytest

from gateway.routing import choose
from tests.gateway.conftest import FEATURES, log_url, routes, spec_dir, train
from tests.gateway.support import Served, model_variant, records, route, wait_records

pytestmark = pytest.mark.slow

BODY = json.dumps({"instances": [[10.0, 30, 12]]}).encode()
#: how long a test waits for the idle-priority shadow worker's first record (a bound on a
#: condition, generous for a machine whose cores are all busy; not a claim about speed)
SHADOW_PATIENCE_S = 600.0


def _post(url: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    """One request on a fresh connection (``Connection: close``)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port, timeout=30)
    try:
        conn.request(
            "POST",
            path,
            BODY,
            {"Content-Type": "application/json", "Connection": "close", **headers},
        )
        resp = conn.getresponse()
        resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def test_replicas_on_postgresql_agree_on_sticky_variants_and_share_one_log(
    tmp_path: Path, pg_url: str
) -> None:
    from dataplane.table import RouteStore

    spec = spec_dir(tmp_path / "spec")
    train(tmp_path / "a" / "model.joblib", seed=0)
    train(tmp_path / "b" / "model.joblib", seed=1, alpha=30.0)
    va = model_variant("v1", 1, tmp_path / "a" / "model.joblib")
    vb = model_variant("v2", 2, tmp_path / "b" / "model.joblib")
    store = RouteStore.open(pg_url)
    store.put(
        "default",
        "fraud",
        route("fraud", "model", [va, vb], stable="v1", candidate="v2", weight=40),
    )
    one = Served(spec, args=["--state", pg_url])
    two = Served(spec, args=["--state", pg_url])
    one.wait_ready()
    two.wait_ready()
    try:
        sent = 0
        for i in range(60):
            key = f"customer-{i}"
            a = _post(
                one.url,
                "/endpoints/fraud/invocations",
                {"x-mlx-key": key, "x-request-id": f"one-{i}"},
            )
            b = _post(
                two.url,
                "/endpoints/fraud/invocations",
                {"x-mlx-key": key, "x-request-id": f"two-{i}"},
            )
            sent += 2
            assert a[0] == b[0] == 200
            assert (
                a[1]["x-mlx-variant"] == b[1]["x-mlx-variant"] == choose("fraud", 40, key, "").value
            ), key
            assert a[1]["x-mlx-version"] == b[1]["x-mlx-version"]
        # a route change reaches both replicas
        gen = store.put("default", "fraud", route("fraud", "model", [va, vb], stable="v2"))
        for s in (one, two):
            s.wait_for(
                lambda s=s: s.get("/healthz").json()["endpoints"]["fraud"]["generation"] == gen,
                what="the new generation",
            )
            assert _post(s.url, "/endpoints/fraud/invocations", {})[1]["x-mlx-version"] == "2"
            sent += 1
    finally:
        assert one.stop() == 0 and two.stop() == 0
    logged = wait_records(pg_url, "fraud", sent)
    assert len(logged) == sent
    ids = {r.request_id for r in logged}
    assert {f"one-{i}" for i in range(60)} <= ids and {f"two-{i}" for i in range(60)} <= ids


def test_sigterm_with_model_shadows_loses_no_shadow_record(tmp_path: Path) -> None:
    """The shadow worker writes its own records; on SIGTERM it writes every one it holds,
    and the gateway's last line counts them.

    The worker runs only on a core nothing else wants (SCHED_IDLE): on a busy machine its first
    shadow may take a long while. The test keeps sending requests one at a time until the worker
    has logged one — the condition it needs — never for a fixed count."""
    import re

    spec = spec_dir(tmp_path / "spec")
    train(tmp_path / "a" / "model.joblib", seed=0)
    candidate = train(tmp_path / "b" / "model.joblib", seed=1, alpha=30.0)
    va = model_variant("v1", 1, tmp_path / "a" / "model.joblib")
    vb = model_variant("v2", 2, tmp_path / "b" / "model.joblib")
    routes(spec).put(
        "default",
        "fraud",
        route("fraud", "model", [va, vb], stable="v1", candidate="v2", mirror=100),
    )
    server = Served(spec).wait_ready()
    sent: list[str] = []

    def one_more_then_a_shadow_logged() -> bool:
        rid = f"mirror-{len(sent)}"
        status, headers = _post(server.url, "/endpoints/fraud/invocations", {"x-request-id": rid})
        assert status == 200 and headers["x-mlx-version"] == "1"
        sent.append(rid)
        return any(r.variant == "shadow" for r in records(log_url(spec), "fraud"))

    try:
        server.wait_for(
            one_more_then_a_shadow_logged, timeout=SHADOW_PATIENCE_S, what="a shadow record"
        )
        for i in range(20):  # and some copies still in flight when SIGTERM comes
            _post(server.url, "/endpoints/fraud/invocations", {"x-request-id": f"late-{i}"})
            sent.append(f"late-{i}")
    finally:
        code = server.stop()
    assert code == 0, server.output()
    found = re.search(r"\(and (\d+) by the shadow worker\)", server.output())
    assert found, server.output()
    shadows = [r for r in records(log_url(spec), "fraud") if r.variant == "shadow"]
    assert len(shadows) == int(found.group(1)) >= 1
    assert {r.request_id for r in shadows} <= set(sent)
    import pandas as pd

    want = candidate.predict(pd.DataFrame([[10.0, 30, 12]], columns=FEATURES)).tolist()
    for r in shadows:  # the candidate's own answer, for the caller's exact request
        assert r.status == 200 and r.version == "2" and r.inputs == json.loads(BODY)
        assert r.outputs == pytest.approx(want)


def test_max_batch_1_predicts_every_request_alone(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tests.gateway.conftest import dump
    from tests.gateway.slow_models import SlowSum

    spec = spec_dir(tmp_path / "spec")
    dump(SlowSum(0.3, 3), tmp_path / "m" / "model.joblib")
    v1 = model_variant("v1", 1, tmp_path / "m" / "model.joblib")
    routes(spec).put("default", "summed", route("summed", "model", [v1], stable="v1"))
    server = Served(spec, args=["--max-batch", "1", "--workers", "4"]).wait_ready()
    try:
        with ThreadPoolExecutor(4) as pool:
            replies = list(
                pool.map(
                    lambda i: server.post(
                        "/endpoints/summed/invocations", {"instances": [[i, 1.0, 2.0]]}
                    ),
                    range(4),
                )
            )
        assert [r.json()["predictions"] for r in replies] == [[i + 3.0] for i in range(4)]
        text = server.get("/metrics").body.decode()
        assert "mlx_gateway_predict_batched_requests_total 0.0" in text
        assert "mlx_gateway_predict_batches_total 0.0" in text
    finally:
        assert server.stop() == 0


def test_an_in_memory_log_is_refused(tmp_path: Path) -> None:
    """Nothing but the process that opened it could reach it: not the log writer's thread,
    not the shadow worker, not ``mlx logs``."""
    from tests.conftest import run_mlx

    spec = spec_dir(tmp_path / "spec")
    run = run_mlx(["serve", "--port", "0", "--log", "sqlite:///:memory:"], spec)
    assert run.code == 1
    assert "an in-memory log cannot be served" in run.err and "use a file or PostgreSQL" in run.err


def test_max_batch_out_of_range_is_refused(tmp_path: Path) -> None:
    from tests.conftest import run_mlx

    run = run_mlx(["serve", "--port", "0", "--max-batch", "0"], spec_dir(tmp_path / "spec"))
    assert run.code == 1
    assert "Invalid value for '--max-batch': 0 is not in the range 1<=x<=1024" in run.err
