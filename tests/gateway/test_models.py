"""Model endpoints through a real ``mlx serve`` process: predictions, bad input, routing, faults.

One server for the module; every test drives real HTTP at it and reads the real log.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contract import Role
from gateway.routing import choose, key_hash, sampled
from tests.gateway.conftest import FEATURES, dump, log_url, routes, spec_dir, train, training_frame
from tests.gateway.slow_models import Crashy, Sleepy, SlowSum
from tests.gateway.support import (
    Served,
    model_variant,
    records,
    route,
    wait_records,
)

pytestmark = pytest.mark.slow


@dataclass
class World:
    spec: Path
    server: Served
    model_a: Any
    model_b: Any
    rows: Any  # a DataFrame of feature rows
    log: str

    def invoke(self, endpoint: str, body: Any = None, **kw: Any) -> Any:
        return self.server.post(f"/endpoints/{endpoint}/invocations", body, **kw)

    def put(self, endpoint: str, doc: dict[str, Any]) -> int:
        return routes(self.spec).put("default", endpoint, doc)

    def wait_generation(self, endpoint: str, generation: int) -> dict[str, Any]:
        def check() -> Any:
            health = self.server.get("/healthz").json()["endpoints"].get(endpoint)
            return health if health and health["generation"] >= generation else None

        return self.server.wait_for(check, what=f"{endpoint} generation {generation}")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("gw-models")
    spec = spec_dir(root / "spec")
    art = root / "artifacts"
    model_a = train(art / "a" / "model.joblib", seed=0)
    model_b = train(art / "b" / "model.joblib", seed=1, alpha=50.0)
    numpy_model = _numpy_model(art / "np" / "model.joblib")
    dump(Sleepy(10.0, 3), art / "sleepy" / "model.joblib")
    dump(Crashy(3), art / "crashy" / "model.joblib")
    (art / "garbage").mkdir()
    (art / "garbage" / "model.joblib").write_bytes(b"this is not a pickle")
    va = model_variant("v1", 1, art / "a" / "model.joblib")
    vb = model_variant("v2", 2, art / "b" / "model.joblib")
    store = routes(spec)
    store.put("default", "fraud", route("fraud", "model", [va], stable="v1"))
    store.put("default", "tiny", route("tiny", "model", [va], stable="v1", max_body_bytes=200))
    store.put(
        "default",
        "ab",
        route(
            "ab", "model", [va, vb], stable="v1", candidate="v2", weight=30, log={"payloads": 0.5}
        ),
    )
    store.put(
        "default",
        "plain",
        route("plain", "model", [model_variant("v1", 1, art / "np" / "model.joblib")], stable="v1"),
    )
    hang = model_variant("v9", 9, art / "sleepy" / "model.joblib")
    store.put(
        "default",
        "shadowed",
        route(
            "shadowed", "model", [va, hang], stable="v1", candidate="v9", mirror=100, timeout_s=1
        ),
    )
    crash = model_variant("v8", 8, art / "crashy" / "model.joblib")
    store.put(
        "default",
        "crashy",
        route("crashy", "model", [va, crash], stable="v1", candidate="v8", mirror=100),
    )
    store.put("default", "flaky", route("flaky", "model", [va], stable="v1"))
    dump(Sleepy(2.0, 3), art / "slow" / "model.joblib")
    slow = model_variant("v1", 1, art / "slow" / "model.joblib")
    store.put("default", "slow", route("slow", "model", [slow], stable="v1", timeout_s=0.5))
    dump(SlowSum(0.5, 3), art / "summed" / "model.joblib")
    summed = model_variant("v1", 1, art / "summed" / "model.joblib")
    store.put("default", "summed", route("summed", "model", [summed], stable="v1"))
    server = Served(spec).wait_ready()
    rows, _ = training_frame(seed=7)
    w = World(spec, server, model_a, model_b, rows.head(5), log_url(spec))
    w.numpy_model = numpy_model  # type: ignore[attr-defined]
    w.art = art  # type: ignore[attr-defined]
    yield w
    server.stop()


def _numpy_model(path: Path) -> Any:
    from sklearn.linear_model import LinearRegression

    x, y = training_frame(seed=3)
    model = LinearRegression().fit(x.to_numpy(), y.to_numpy())
    dump(model, path)
    return model


def _expected(model: Any, rows: Any) -> Any:
    """The model's own predictions, to the last bits BLAS may sum in another order."""
    return pytest.approx([float(v) for v in model.predict(rows)], rel=1e-12, abs=1e-12)


# -- predictions ---------------------------------------------------------------------------------
def test_all_four_formats_predict_what_the_model_predicts(world: World) -> None:
    rows = world.rows
    expected = _expected(world.model_a, rows)
    shuffled = ["hour", "amount", "age"]  # not the model's order: the gateway reorders by name
    bodies = {
        "dataframe_split": {
            "dataframe_split": {"columns": shuffled, "data": rows[shuffled].values.tolist()}
        },
        "dataframe_records": {"dataframe_records": rows.to_dict(orient="records")},
        "instances (records)": {"instances": rows[shuffled].to_dict(orient="records")},
        "instances (rows)": {"instances": rows[FEATURES].values.tolist()},
        "inputs (columns)": {"inputs": {c: rows[c].tolist() for c in shuffled}},
        "inputs (rows)": {"inputs": rows[FEATURES].values.tolist()},
    }
    for name, body in bodies.items():
        reply = world.invoke("fraud", body)
        assert reply.status == 200, (name, reply.body)
        assert reply.json()["predictions"] == expected, name


def test_a_model_without_column_names_takes_rows_by_position(world: World) -> None:
    model = world.numpy_model  # type: ignore[attr-defined]
    rows = world.rows[FEATURES].values.tolist()
    reply = world.invoke("plain", {"instances": rows})
    assert reply.status == 200, reply.body
    assert reply.json()["predictions"] == _expected(model, world.rows.to_numpy())
    wrong = world.invoke("plain", {"instances": [r[:2] for r in rows]})
    assert wrong.status == 400
    assert "rows have 2 values, but the model takes 3 columns" in wrong.json()["message"]


def test_headers_carry_request_id_variant_and_version(world: World) -> None:
    body = {"dataframe_records": world.rows.head(1).to_dict(orient="records")}
    mine = world.invoke("fraud", body, headers={"x-request-id": "req-abc-123"})
    assert mine.headers["x-request-id"] == "req-abc-123"
    assert mine.headers["x-mlx-variant"] == "stable"
    assert mine.headers["x-mlx-version"] == "1"
    fresh = world.invoke("fraud", body)
    assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers["x-request-id"])
    silly = world.invoke("fraud", body, headers={"x-request-id": "has space"})
    assert silly.headers["x-request-id"] != "has space"


def test_every_request_is_logged_with_the_fixed_fields(world: World) -> None:
    body = {"dataframe_records": world.rows.head(2).to_dict(orient="records")}
    reply = world.invoke(
        "fraud", body, headers={"x-request-id": "logged-1", "x-mlx-key": "user-42"}
    )
    assert reply.status == 200
    got = [r for r in wait_records(world.log, "fraud", 1) if r.request_id == "logged-1"]
    if not got:
        got = world.server.wait_for(
            lambda: [r for r in records(world.log, "fraud") if r.request_id == "logged-1"],
            what="the record",
        )
    (rec,) = got
    assert rec.variant == "stable" and rec.version == "1" and rec.subject == "models.fraud"
    fingerprint = model_variant("v1", 1, world.art / "a" / "model.joblib")["fingerprint"]  # type: ignore[attr-defined]
    assert rec.fingerprint == fingerprint and rec.status == 200 and rec.error is None
    assert rec.latency_ms > 0 and rec.environment == "default"
    assert rec.inputs == body and rec.outputs == reply.json()["predictions"]
    assert rec.key_hash == key_hash("user-42") and "user-42" not in str(rec.to_json())


# -- bad input -----------------------------------------------------------------------------------
def _bad(world: World, body: Any = None, raw: bytes | None = None, endpoint: str = "fraud") -> str:
    reply = world.invoke(endpoint, body, raw=raw)
    assert reply.status == 400, reply.body
    doc = reply.json()
    assert doc["error_code"] == "BAD_REQUEST"
    assert "Traceback" not in reply.body.decode() and "\n" not in doc["message"]
    return str(doc["message"])


def test_bad_input_is_a_400_naming_what_is_wrong(world: World) -> None:
    rec = world.rows.head(1).to_dict(orient="records")[0]
    assert _bad(world, raw=b'{"dataframe_split": ').startswith("malformed JSON")
    assert "'amount'" in _bad(world, {"dataframe_records": [{**rec, "amount": "12.5"}]})
    assert "must be a number" in _bad(world, {"dataframe_records": [{**rec, "amount": "12.5"}]})
    missing = {k: v for k, v in rec.items() if k != "age"}
    assert "missing column 'age'" in _bad(world, {"dataframe_records": [missing]})
    assert "unknown column 'colour'" in _bad(world, {"dataframe_records": [{**rec, "colour": 1}]})
    assert "unknown field(s) 'rows'" in _bad(world, {"rows": [[1, 2, 3]]})
    assert "exactly one of" in _bad(world, {})
    split = {"columns": FEATURES, "data": [[1, 2]]}
    assert "row 0 has 2 values" in _bad(world, {"dataframe_split": split})
    assert "column 'hour' takes no nulls, but row 0 has null" in _bad(
        world, {"dataframe_records": [{**rec, "hour": None}]}
    )


def test_errors_are_logged_with_status_and_error(world: World) -> None:
    world.invoke("fraud", raw=b"{not json", headers={"x-request-id": "bad-json-1"})
    rec = world.server.wait_for(
        lambda: next(
            (r for r in records(world.log, "fraud") if r.request_id == "bad-json-1"), None
        ),
        what="the error record",
    )
    assert rec.status == 400 and rec.error.startswith("malformed JSON") and rec.variant == "stable"


def test_oversize_bodies_get_413(world: World) -> None:
    big = {"instances": [[1.0, 2.0, 3.0]] * 40}
    reply = world.invoke("tiny", big, headers={"x-request-id": "too-big-1"})
    assert reply.status == 413
    assert "at most 200" in reply.json()["message"]
    small = world.invoke("tiny", {"instances": [[1.0, 30, 4]]})
    assert small.status == 200
    rec = world.server.wait_for(
        lambda: next((r for r in records(world.log, "tiny") if r.request_id == "too-big-1"), None),
        what="the 413 record",
    )
    assert rec.status == 413


def test_unknown_endpoints_and_routes_get_404_listing_them(world: World) -> None:
    reply = world.invoke("fraudd", {"instances": [[1, 2, 3]]})
    assert reply.status == 404
    doc = reply.json()
    assert "fraud" in doc["endpoints"] and "did you mean 'fraud'" in doc["message"]
    listed = "endpoints: ab, crashy, flaky, fraud, plain, shadowed, slow, summed, tiny"
    assert listed in doc["message"]
    assert reply.headers["x-request-id"]
    other = world.server.post("/endpoints/fraud/predict", {})
    assert other.status == 404 and "routes:" in other.json()["error"]["message"]
    wrong = world.server.post("/endpoints/fraud/v1/chat/completions", {"messages": []})
    assert wrong.status == 404 and "serves a model" in wrong.json()["error"]["message"]
    assert world.server.get("/endpoints/fraud/invocations").status == 405
    assert not records(world.log, "fraudd")


def _counter(world: World, name: str) -> float:
    text = world.server.get("/metrics").body.decode()
    return float(next(ln for ln in text.splitlines() if ln.startswith(name + " ")).split()[-1])


def test_requests_that_wait_behind_a_predict_share_the_next_one(world: World) -> None:
    """Each predict of this model takes 0.5 s: requests sent meanwhile wait in its lane and
    are answered together, each with its own rows' predictions, each logged on its own."""
    from concurrent.futures import ThreadPoolExecutor

    before = _counter(world, "mlx_gateway_predict_batched_requests_total")
    bodies = [[[float(i), 2.0 * i, 1.0], [0.5, float(i), 3.0]] for i in range(6)]

    def send(i: int) -> Any:
        return world.invoke(
            "summed", {"instances": bodies[i]}, headers={"x-request-id": f"sum-{i}"}, timeout=30
        )

    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(send, range(6)))
    for i, reply in enumerate(replies):
        assert reply.status == 200, reply.body
        assert reply.json()["predictions"] == [sum(row) for row in bodies[i]]
    after = _counter(world, "mlx_gateway_predict_batched_requests_total")
    assert after - before >= 2  # at least two of the six shared a predict call
    logged = wait_records(world.log, "summed", 6)
    by_id = {r.request_id: r for r in logged}
    for i in range(6):
        assert by_id[f"sum-{i}"].outputs == [sum(row) for row in bodies[i]]


def test_a_model_slower_than_the_endpoint_timeout_is_a_504(world: World) -> None:
    reply = world.invoke(
        "slow", {"instances": [[1.0, 2.0, 3.0]]}, headers={"x-request-id": "slow-1"}
    )
    assert reply.status == 504 and "did not answer within 0.5s" in reply.json()["message"]
    assert reply.headers["x-mlx-version"] == "1"
    rec = world.server.wait_for(
        lambda: next((r for r in records(world.log, "slow") if r.request_id == "slow-1"), None),
        what="the 504 record",
    )
    assert rec.status == 504 and rec.error == "the model did not answer within 0.5s"
    assert world.invoke("fraud", {"instances": [[1.0, 2.0, 3.0]]}).status == 200  # others go on


# -- routing -------------------------------------------------------------------------------------
def test_sticky_keys_and_a_split_close_to_the_weight(world: World) -> None:
    body = {"instances": world.rows.head(1)[FEATURES].values.tolist()}
    for key in ("alice", "bob", "carol"):
        seen = {
            world.invoke("ab", body, headers={"x-mlx-key": key}).headers["x-mlx-variant"]
            for _ in range(5)
        }
        assert len(seen) == 1, key
    roles = {}
    for i in range(400):
        key = f"user-{i}"
        reply = world.invoke("ab", body, headers={"x-mlx-key": key})
        assert reply.status == 200
        roles[key] = reply.headers["x-mlx-variant"]
        expected = choose("ab", 30, key, "unused")
        assert roles[key] == expected.value  # the same hash on every replica
        version = reply.headers["x-mlx-version"]
        assert version == ("2" if expected is Role.CANDIDATE else "1")
    share = sum(r == "candidate" for r in roles.values()) / len(roles)
    assert 0.24 <= share <= 0.36, share
    world.__dict__["ab_roles"] = roles


def test_payloads_are_sampled_by_request_id(world: World) -> None:
    body = {"instances": world.rows.head(1)[FEATURES].values.tolist()}
    ids = [f"sample-{i}" for i in range(60)]
    for rid in ids:
        world.invoke("ab", body, headers={"x-request-id": rid})
    got = world.server.wait_for(
        lambda: (lambda rs: rs if len(rs) >= len(ids) else None)(
            [r for r in records(world.log, "ab") if r.request_id.startswith("sample-")]
        ),
        what="the sampled records",
    )
    for rec in got:
        assert (rec.inputs is not None) == sampled(0.5, rec.request_id)
        assert (rec.outputs is not None) == sampled(0.5, rec.request_id)
    kept = sum(r.inputs is not None for r in got)
    assert 0 < kept < len(got)


def test_a_route_change_is_picked_up_without_a_restart(world: World) -> None:
    art = world.art  # type: ignore[attr-defined]
    roles_before = world.__dict__.get("ab_roles") or {}
    v1 = model_variant("v1", 1, art / "a" / "model.joblib")
    v3 = model_variant("v3", 3, art / "b" / "model.joblib")
    gen = world.put("ab", route("ab", "model", [v1, v3], stable="v1", candidate="v3", weight=70))
    health = world.wait_generation("ab", gen)
    assert health["serving"] == {"stable": "1", "candidate": "3", "weight": 70.0, "mirror": 0.0}
    body = {"instances": world.rows.head(1)[FEATURES].values.tolist()}
    versions = {}
    for i in range(200):
        key = f"user-{i}"
        reply = world.invoke("ab", body, headers={"x-mlx-key": key})
        versions[key] = reply.headers["x-mlx-version"]
        assert versions[key] == ("3" if choose("ab", 70, key, "") is Role.CANDIDATE else "1")
        if roles_before.get(key) == "candidate":  # raising the weight keeps candidates there
            assert versions[key] == "3"
    share = sum(v == "3" for v in versions.values()) / len(versions)
    assert 0.6 <= share <= 0.8, share
    expected = _expected(world.model_b, world.rows.head(1))
    cand = next(k for k, v in versions.items() if v == "3")
    assert world.invoke("ab", body, headers={"x-mlx-key": cand}).json()["predictions"] == expected


def test_a_model_that_fails_to_load_is_unhealthy_and_the_previous_version_serves(
    world: World,
) -> None:
    art = world.art  # type: ignore[attr-defined]
    v1 = model_variant("v1", 1, art / "a" / "model.joblib")
    broken = model_variant("v2", 2, art / "garbage" / "model.joblib")
    gen = world.put("flaky", route("flaky", "model", [v1, broken], stable="v2"))
    health = world.wait_generation("flaky", gen)
    assert health["healthy"] is False
    assert health["variants"]["v2"]["state"] == "failed"
    assert "cannot load" in health["variants"]["v2"]["error"]
    assert health["serving"]["stable"] == "1"
    body = {"instances": world.rows.head(2)[FEATURES].values.tolist()}
    reply = world.invoke("flaky", body)
    assert reply.status == 200 and reply.headers["x-mlx-version"] == "1"
    assert reply.json()["predictions"] == _expected(world.model_a, world.rows.head(2))
    assert world.server.get("/healthz").json()["status"] == "degraded"
    metrics = world.server.get("/metrics").body.decode()
    assert (
        'mlx_gateway_variant_healthy{endpoint="flaky",role="stable",variant="v2",version="2"} 0.0'
        in metrics
    )
    # a candidate that fails to load takes no traffic: stable answers everything
    gone = model_variant("v4", 4, art / "nowhere" / "model.joblib")
    gen = world.put(
        "flaky", route("flaky", "model", [v1, gone], stable="v1", candidate="v4", weight=100)
    )
    health = world.wait_generation("flaky", gen)
    assert "does not exist" in health["variants"]["v4"]["error"]
    assert {world.invoke("flaky", body).headers["x-mlx-version"] for _ in range(5)} == {"1"}


# -- shadows -------------------------------------------------------------------------------------
def _drive_shadows(
    world: World, endpoint: str, prefix: str, want: int, rows: int = 1
) -> tuple[list[Any], list[Any]]:
    """Send requests (checking every answer) until ``want`` shadow records are in the log.

    Shadow copies run at low priority and are dropped while the worker loads a model or
    restarts, so the test keeps sending, a little apart, until enough have run.
    """
    body = {"instances": world.rows.head(rows)[FEATURES].values.tolist()}
    expected = _expected(world.model_a, world.rows.head(rows))
    ids: list[str] = []

    def shadows() -> list[Any]:
        return [
            r for r in records(world.log, endpoint) if r.variant == "shadow" and r.request_id in ids
        ]

    for i in range(150):
        rid = f"{prefix}-{i}"
        ids.append(rid)
        reply = world.invoke(endpoint, body, headers={"x-request-id": rid}, timeout=5)
        assert reply.status == 200 and reply.json()["predictions"] == expected
        assert reply.headers["x-mlx-variant"] == "stable" and reply.headers["x-mlx-version"] == "1"
        if len(shadows()) >= want:
            break
        time.sleep(0.2)
    got = shadows()
    assert len(got) >= want, world.server.output()
    callers = world.server.wait_for(
        lambda: (lambda rs: rs if len(rs) == len(ids) else None)(
            [
                r
                for r in records(world.log, endpoint)
                if r.variant == "stable" and r.request_id in ids
            ]
        ),
        what="the callers' records",
    )
    return callers, got


def test_a_hanging_shadow_never_delays_or_changes_the_answer(world: World) -> None:
    callers, shadows = _drive_shadows(world, "shadowed", "hang", want=2)
    caller_ids = {r.request_id for r in callers}
    for r in shadows:
        assert r.request_id in caller_ids  # the caller's request id, variant "shadow"
        assert r.status == 504 and "did not answer within 1s" in r.error and r.version == "9"
    # every caller's answer was ready long before the shadow's 1 s timeout
    assert all(r.status == 200 and r.latency_ms < 1000 for r in callers)
    assert "the shadow worker exited" in world.server.output()  # stuck: replaced by a fresh one


def test_a_crashing_shadow_is_logged_under_shadow_and_the_caller_is_unaffected(
    world: World,
) -> None:
    callers, shadows = _drive_shadows(world, "crashy", "crash", want=3, rows=2)
    assert all(r.status == 500 and "candidate exploded" in r.error for r in shadows)
    inputs = {r.request_id: r.inputs for r in callers}
    assert all(r.inputs == inputs[r.request_id] for r in shadows)  # the same request, copied
    metrics = world.server.get("/metrics").body.decode()
    line = next(
        ln
        for ln in metrics.splitlines()
        if ln.startswith('mlx_gateway_shadow_total{endpoint="crashy",outcome="failed"}')
    )
    failed = int(float(line.split()[-1]))
    assert failed >= len(shadows)
    world.server.wait_for(  # every failure counted is a record under "shadow"
        lambda: len([r for r in records(world.log, "crashy") if r.variant == "shadow"]) == failed,
        what="the shadow records",
    )


# -- feedback, health, metrics ------------------------------------------------------------------
def test_feedback_is_stored_joined_on_request_id(world: World) -> None:
    from sqlalchemy import select

    from inference import schema
    from inference.store import open_log

    ok = world.server.post("/endpoints/fraud/feedback", {"request_id": "logged-1", "label": 1})
    assert ok.status == 200 and ok.json() == {"accepted": True, "request_id": "logged-1"}
    bad = world.server.post("/endpoints/fraud/feedback", {"request_id": "x"})
    assert bad.status == 400 and "one of label, outcome, value" in bad.json()["error"]["message"]
    unknown = world.server.post("/endpoints/nope/feedback", {"request_id": "x", "label": 1})
    assert unknown.status == 404
    store = open_log(world.log)

    def stored() -> Any:
        with store.engine.connect() as conn:
            return conn.execute(
                select(schema.feedback).where(schema.feedback.c.request_id == "logged-1")
            ).all()

    (row,) = world.server.wait_for(stored, what="the feedback row")
    assert row.endpoint == "fraud" and row.score == 1.0


def test_healthz_and_metrics(world: World) -> None:
    health = world.server.get("/healthz")
    assert health.status == 200
    fraud = health.json()["endpoints"]["fraud"]
    assert fraud["healthy"] is True and fraud["variants"]["v1"]["state"] == "ready"
    metrics = world.server.get("/metrics")
    assert metrics.status == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.body.decode()
    assert re.search(
        r'mlx_gateway_requests_total\{endpoint="fraud",status="200",variant="stable"\} \d', text
    )
    assert 'mlx_gateway_requests_total{endpoint="fraud",status="400",variant="stable"}' in text
    assert "mlx_gateway_request_duration_seconds_bucket" in text
    assert 'mlx_gateway_log_records_total{state="written"}' in text
    assert 'mlx_gateway_rejected_total{reason="unknown_endpoint"}' in text
