"""Feedback is checked, through a real ``mlx serve`` (issue 18, item 13).

Feedback for a request id the endpoint never answered is a 404 — whether this process answered
it (memory), an earlier process or another replica did (the log). A second feedback for a
request replaces the first (last write wins; both are kept): outcome metrics count each
request once, with its newest score. A caller's ``x-request-id`` that was already used is
answered under a fresh id, returned in ``x-request-id``, with the caller's kept as
``client_request_id``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.conftest import log_url, routes, spec_dir, train
from tests.gateway.support import Served, model_variant, records, route, wait_records

pytestmark = pytest.mark.slow

BODY = {"instances": [[10.0, 30, 12]]}


def _spec(tmp_path: Path) -> Path:
    spec = spec_dir(tmp_path / "spec")
    train(tmp_path / "m" / "model.joblib")
    v1 = model_variant("v1", 1, tmp_path / "m" / "model.joblib")
    routes(spec).put("default", "fraud", route("fraud", "model", [v1], stable="v1"))
    return spec


def _summary(url: str) -> Any:
    from inference import query
    from inference.store import open_log

    store = open_log(url)
    try:
        return query.variant_summary(store, "fraud")["stable"]
    finally:
        store.close()


def _feedback(server: Served, rid: str, value: Any, endpoint: str = "fraud") -> Any:
    return server.post(f"/endpoints/{endpoint}/feedback", {"request_id": rid, "value": value})


def test_feedback_for_an_id_never_answered_is_a_404(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    server = Served(spec).wait_ready()
    try:
        answer = server.post("/endpoints/fraud/invocations", BODY)
        rid = answer.headers["x-request-id"]
        unknown = _feedback(server, "never-answered", 1)
        assert unknown.status == 404, unknown.body
        assert (
            "never answered a request with id 'never-answered'"
            in unknown.json()["error"]["message"]
        )
        assert _feedback(server, rid, 1).status == 200  # answered here a moment ago
    finally:
        assert server.stop() == 0
    # a new process knows what the log knows, and still nothing else
    again = Served(spec).wait_ready()
    try:
        assert _feedback(again, rid, 0).status == 200
        assert _feedback(again, "never-answered", 1).status == 404
    finally:
        assert again.stop() == 0


def test_a_second_feedback_replaces_the_first_and_counts_once(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    server = Served(spec).wait_ready()
    try:
        rids = [
            server.post("/endpoints/fraud/invocations", BODY).headers["x-request-id"]
            for _ in range(2)
        ]
        for value in (1, 1, 0):  # the last word on the first request: failure
            assert _feedback(server, rids[0], value).status == 200
        for value in (0, 1):  # on the second: success
            assert _feedback(server, rids[1], value).status == 200
    finally:
        assert server.stop() == 0
    got = _summary(log_url(spec))
    assert (got.requests, got.feedback, got.successes, got.mean_score) == (2, 2, 1, 0.5)


def test_a_reused_request_id_is_logged_under_a_fresh_one(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    server = Served(spec).wait_ready()
    try:
        first = server.post("/endpoints/fraud/invocations", BODY, headers={"x-request-id": "mine"})
        second = server.post("/endpoints/fraud/invocations", BODY, headers={"x-request-id": "mine"})
        assert first.headers["x-request-id"] == "mine"
        fresh = second.headers["x-request-id"]
        assert fresh != "mine" and len(fresh) == 32
        # feedback names the request it is about: the caller's id is the first request's
        assert _feedback(server, "mine", 1).status == 200
        assert _feedback(server, fresh, 0).status == 200
    finally:
        assert server.stop() == 0
    logged = {r.request_id: r for r in wait_records(log_url(spec), "fraud", 2)}
    assert set(logged) == {"mine", fresh}
    assert logged["mine"].client_request_id is None
    assert logged[fresh].client_request_id == "mine"
    got = _summary(log_url(spec))
    assert (got.requests, got.feedback, got.successes) == (2, 2, 1)  # one each, not two on one


def test_feedback_reaches_a_request_another_replica_answered(tmp_path: Path, pg_url: str) -> None:
    from dataplane.table import RouteStore

    spec = spec_dir(tmp_path / "spec")
    train(tmp_path / "m" / "model.joblib")
    v1 = model_variant("v1", 1, tmp_path / "m" / "model.joblib")
    RouteStore.open(pg_url).put("default", "fraud", route("fraud", "model", [v1], stable="v1"))
    one = Served(spec, args=["--state", pg_url])
    two = Served(spec, args=["--state", pg_url])
    try:
        one.wait_ready()
        two.wait_ready()
        rid = one.post("/endpoints/fraud/invocations", BODY).headers["x-request-id"]
        wait_records(pg_url, "fraud", 1)  # written by the first replica's writer
        assert _feedback(two, rid, 1).status == 200
        assert _feedback(two, "from-nowhere", 1).status == 404
    finally:
        assert one.stop() == 0 and two.stop() == 0
    assert [r.request_id for r in records(pg_url, "fraud")] == [rid]


def test_feedback_bodies_that_are_not_feedback_are_400_not_404(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    server = Served(spec).wait_ready()
    try:
        bad = server.post("/endpoints/fraud/feedback", raw=json.dumps({"value": 1}).encode())
        assert bad.status == 400 and "request_id" in bad.json()["error"]["message"]
    finally:
        assert server.stop() == 0
