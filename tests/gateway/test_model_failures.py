"""Whose failure is it? Models through a real ``mlx serve``: the caller's (4xx) or the model's.

A request the model's input schema refuses is the caller's 400; an exception the model
raises on a request that passed it — ``ValueError`` and its subclasses included — is the
model's 500 ``MODEL_ERROR``, logged as an error of the variant that answered, whatever path
the prediction took (batched, one request at a time, a shadow copy). Content types: JSON
(also with no ``Content-Type``) and CSV; anything else is a 415. Error answers name the
endpoint, the version and the kind of failure, never a path on the server.
"""

from __future__ import annotations

import http.client
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.conftest import FEATURES, dump, log_url, routes, spec_dir, train, training_frame
from tests.gateway.slow_models import Raises, Unreadable, linalg_error
from tests.gateway.support import Reply, Served, model_variant, records, route

pytestmark = pytest.mark.slow

STRINGS = {
    "source": "spec",
    "columns": [
        {"name": "site", "type": "string", "nullable": False},
        {"name": "amount", "type": "float", "nullable": False},
    ],
}


@dataclass
class World:
    spec: Path
    server: Served
    model: Any
    rows: Any  # a DataFrame of feature rows
    log: str

    def invoke(self, endpoint: str, body: Any = None, **kw: Any) -> Reply:
        return self.server.post(f"/endpoints/{endpoint}/invocations", body, **kw)

    def record(self, endpoint: str, request_id: str) -> Any:
        return self.server.wait_for(
            lambda: next(
                (r for r in records(self.log, endpoint) if r.request_id == request_id), None
            ),
            what=f"the record of {request_id}",
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("gw-failures")
    spec = spec_dir(root / "spec")
    art = spec / ".mlx" / "gateway" / "artifacts"  # where the gateway provider copies them
    model = train(art / "a" / "model.joblib", seed=0)
    secret = spec / "secret" / "features.csv"  # a model whose error text holds a server path
    dump(Raises(ValueError, f"cannot read {secret}: no such row", 3), art / "value" / "m.joblib")
    dump(Raises(linalg_error(), "Singular matrix", 3), art / "linalg" / "m.joblib")
    dump(Raises(ValueError, "could not convert 'north'", 2), art / "strings" / "m.joblib")
    dump(Unreadable(3), art / "unreadable" / "m.joblib")
    good = model_variant("v1", 1, art / "a" / "model.joblib")
    bad = model_variant("v3", 3, art / "value" / "m.joblib")
    store = routes(spec)
    store.put("default", "fraud", route("fraud", "model", [good], stable="v1"))
    store.put("default", "broken", route("broken", "model", [bad], stable="v3"))
    linalg = model_variant("v4", 4, art / "linalg" / "m.joblib")
    store.put("default", "linalg", route("linalg", "model", [linalg], stable="v4"))
    strings = model_variant("v5", 5, art / "strings" / "m.joblib", input_schema=STRINGS)
    store.put("default", "strings", route("strings", "model", [strings], stable="v5"))
    store.put(
        "default",
        "canary",
        route("canary", "model", [good, bad], stable="v1", candidate="v3", weight=100),
    )
    store.put(
        "default",
        "mirrored",
        route("mirrored", "model", [good, bad], stable="v1", candidate="v3", mirror=100),
    )
    odd = model_variant("v6", 6, art / "unreadable" / "m.joblib")
    store.put("default", "odd", route("odd", "model", [odd], stable="v6"))
    server = Served(spec).wait_ready()
    rows, _ = training_frame(seed=7)
    yield World(spec, server, model, rows.head(4), log_url(spec))
    server.stop()


def _positional(world: World, n: int = 2) -> dict[str, Any]:
    return {"instances": world.rows.head(n)[FEATURES].values.tolist()}


def _poll(check: Any, timeout: float) -> Any:
    """``check()`` once it is truthy, or its last (falsy) value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def _expected(model: Any, rows: Any) -> Any:
    return pytest.approx([float(v) for v in model.predict(rows)], rel=1e-12, abs=1e-12)


# -- item 1: the model's failures are the model's ----------------------------------------------
@pytest.mark.parametrize(
    ("endpoint", "version", "kind"),
    [("broken", "3", "ValueError"), ("linalg", "4", "LinAlgError")],
)
def test_a_model_that_raises_on_every_input_answers_500_model_error(
    world: World, endpoint: str, version: str, kind: str
) -> None:
    rid = f"{endpoint}-raises-1"
    reply = world.invoke(endpoint, _positional(world), headers={"x-request-id": rid})
    assert reply.status == 500, reply.body
    doc = reply.json()
    assert (doc["error_code"], doc["mlx_code"]) == ("INTERNAL_ERROR", "MODEL_ERROR")
    assert doc["message"] == f"endpoint {endpoint!r} version {version}: the model failed ({kind})"
    assert reply.headers["x-mlx-variant"] == "stable"
    assert reply.headers["x-mlx-version"] == version
    rec = world.record(endpoint, rid)
    assert rec.status == 500 and rec.variant == "stable" and rec.version == version
    assert rec.error.startswith(f"the model failed: {kind}: ")


def test_a_malformed_request_to_a_failing_model_is_still_the_callers_400(world: World) -> None:
    rows = world.rows.head(1)[FEATURES].values.tolist()
    for body, says in [
        ({"instances": [r[:2] for r in rows]}, "rows have 2 values, but the model takes 3"),
        ({"instances": [["a", 1, 2]]}, "column #0 must be a number"),
        ({"instances": [[None, 1, 2]]}, "column #0 takes no nulls"),
    ]:
        reply = world.invoke("broken", body, headers={"x-request-id": "broken-400"})
        assert reply.status == 400, reply.body
        assert reply.json()["error_code"] == "BAD_REQUEST" and says in reply.json()["message"]
    assert world.record("broken", "broken-400").status == 400


def test_a_model_fed_a_frame_one_request_at_a_time_fails_as_the_model(world: World) -> None:
    """A schema with a string column: the model gets a DataFrame from the prediction pool
    (not the batching lane); its ValueError is still its own failure, after the types passed."""
    body = {"dataframe_records": [{"amount": 12.5, "site": "north"}]}
    reply = world.invoke("strings", body, headers={"x-request-id": "strings-1"})
    assert reply.status == 500 and reply.json()["mlx_code"] == "MODEL_ERROR", reply.body
    assert world.record("strings", "strings-1").status == 500
    wrong = world.invoke("strings", {"dataframe_records": [{"amount": 12.5, "site": 7}]})
    assert wrong.status == 400
    assert "column 'site' must be a string, but row 0 has number 7" in wrong.json()["message"]


def test_a_failing_candidate_is_logged_as_the_candidates_error(world: World) -> None:
    reply = world.invoke("canary", _positional(world), headers={"x-request-id": "canary-1"})
    assert reply.status == 500 and reply.json()["mlx_code"] == "MODEL_ERROR"
    assert (reply.headers["x-mlx-variant"], reply.headers["x-mlx-version"]) == ("candidate", "3")
    rec = world.record("canary", "canary-1")
    assert (rec.status, rec.variant, rec.version) == (500, "candidate", "3")


def test_a_shadow_copy_the_candidate_fails_on_is_logged_500(world: World) -> None:
    expected = _expected(world.model, world.rows.head(2))
    ids: list[str] = []

    def shadows() -> list[Any]:
        logged = records(world.log, "mirrored")
        return [r for r in logged if r.variant == "shadow" and r.request_id in ids]

    found: list[Any] = []
    for i in range(60):  # copies are dropped while the worker loads the candidate: resend
        ids.append(f"mirror-{i}")
        reply = world.invoke("mirrored", _positional(world), headers={"x-request-id": ids[-1]})
        assert reply.status == 200 and reply.json()["predictions"] == expected
        found = _poll(shadows, timeout=1.0)
        if found:
            break
    assert found, world.server.output()
    assert all(r.status == 500 and r.version == "3" for r in found)
    assert all("the model failed: ValueError" in r.error for r in found)


# -- item 21: no server paths in what callers read -------------------------------------------------
def test_a_500_names_endpoint_and_version_and_no_path(world: World) -> None:
    reply = world.invoke("broken", _positional(world), headers={"x-request-id": "no-path-1"})
    assert reply.status == 500
    assert str(world.spec) not in reply.body.decode() and "/secret/" not in reply.body.decode()
    rec = world.record("broken", "no-path-1")  # the operator's record keeps the detail
    assert str(world.spec / "secret" / "features.csv") in rec.error
    assert str(world.spec) in world.server.output()  # and the server's stderr


def test_a_model_whose_answer_cannot_be_encoded_is_the_models_500(world: World) -> None:
    reply = world.invoke("odd", _positional(world), headers={"x-request-id": "odd-1"})
    assert reply.status == 500, reply.body
    doc = reply.json()
    assert (doc["error_code"], doc["mlx_code"]) == ("INTERNAL_ERROR", "MODEL_ERROR")
    assert doc["message"] == "endpoint 'odd' version 6: the model failed (TypeError)"
    rec = world.record("odd", "odd-1")  # the operator's record keeps the exception's words
    assert rec.status == 500 and rec.version == "6"
    assert "Opaque" in rec.error, rec.error


# -- item 11: one input format per body ---------------------------------------------------------
def test_a_body_with_two_input_formats_is_a_400_naming_both(world: World) -> None:
    rows = world.rows.head(1)
    records_ = rows.to_dict(orient="records")
    split = {"columns": FEATURES, "data": rows[FEATURES].values.tolist()}
    for body, both in [
        ({"instances": records_, "inputs": records_}, "instances and inputs"),
        ({"dataframe_split": split, "dataframe_records": records_}, "dataframe_split and "),
    ]:
        for endpoint in ("fraud", "strings"):  # the batching lane and the prediction pool
            reply = world.invoke(endpoint, body)
            assert reply.status == 400, reply.body
            assert f"carries 2 input formats, {both}" in reply.json()["message"]
    body = {"dataframe_split": split, "dataframe_records": records_}
    assert "dataframe_records" in world.invoke("fraud", body).json()["message"]


# -- item 22: content types --------------------------------------------------------------------
def _csv(columns: list[str], rows: Any) -> bytes:
    lines = [",".join(columns)] + [",".join(repr(float(v)) for v in r) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def test_a_csv_body_predicts_what_json_does(world: World) -> None:
    rows = world.rows
    expected = _expected(world.model, rows)
    in_order = world.invoke(
        "fraud",
        raw=_csv(FEATURES, rows[FEATURES].values),
        headers={"Content-Type": "text/csv; charset=utf-8"},
    )
    assert in_order.status == 200, in_order.body
    assert in_order.json()["predictions"] == expected
    shuffled = ["hour", "amount", "age"]  # columns are taken by name from the header
    other = world.invoke(
        "fraud", raw=_csv(shuffled, rows[shuffled].values), headers={"Content-Type": "text/csv"}
    )
    assert other.json()["predictions"] == expected
    bad = world.invoke(
        "fraud", raw=b"amount,age,hour\n1.5,abc,3\n", headers={"Content-Type": "text/csv"}
    )
    assert bad.status == 400
    assert "column 'age' must be a number, but row 0 has 'abc'" in bad.json()["message"]


def test_other_content_types_are_a_415_naming_what_is_taken(world: World) -> None:
    body = b'{"instances": [[1, 2, 3]]}'
    for given in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        reply = world.invoke(
            "fraud", raw=body, headers={"Content-Type": given, "x-request-id": "ct-415"}
        )
        assert reply.status == 415, (given, reply.body)
        doc = reply.json()
        assert (doc["error_code"], doc["mlx_code"]) == ("BAD_REQUEST", "UNSUPPORTED_MEDIA_TYPE")
        assert "application/json or text/csv" in doc["message"] and given in doc["message"]
    assert world.record("fraud", "ct-415").status == 415
    charset = world.invoke(
        "fraud", raw=body, headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert charset.status == 200
    for given, said in [
        ("application/json; charset=latin-1", "charset 'latin-1' is not taken here"),
        ("application/json; format=pandas-split", "parameter 'format' is not taken here"),
    ]:
        reply = world.invoke("fraud", raw=body, headers={"Content-Type": given})
        assert reply.status == 415 and said in reply.json()["message"], reply.body


def test_a_body_without_a_content_type_is_read_as_json(world: World) -> None:
    url = urllib.parse.urlsplit(world.server.url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        body = b'{"instances": [[10.0, 30, 4]]}'
        conn.putrequest("POST", "/endpoints/fraud/invocations", skip_accept_encoding=True)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
    finally:
        conn.close()
