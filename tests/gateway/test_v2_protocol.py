"""KServe's Open Inference Protocol (V2) on a real ``mlx serve``, driven by Triton's own client.

``tritonclient.http`` (not mlx's code) speaks the protocol: health, metadata, infer with its
default binary tensors and with JSON tensors. Predictions are compared with what
``invocations`` answers on the same gateway for the same rows, and with the models' own.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contract import Role
from gateway.routing import choose, key_hash
from tests.conftest import require_extra
from tests.gateway.conftest import FEATURES, dump, log_url, routes, spec_dir, train, training_frame
from tests.gateway.support import (
    Served,
    http,
    model_variant,
    prompt_variant,
    records,
    route,
)

pytestmark = pytest.mark.slow

httpclient = pytest.importorskip("tritonclient.http")
np = pytest.importorskip("numpy")
from tritonclient.utils import InferenceServerException  # noqa: E402


@dataclass
class World:
    server: Served
    triton: Any
    model_a: Any
    model_b: Any
    positional: Any
    rows: Any  # a DataFrame of 5 feature rows
    log: str

    def invocations(self, endpoint: str, **kw: Any) -> Any:
        body = {"dataframe_split": {"columns": FEATURES, "data": self.rows.values.tolist()}}
        reply = self.server.post(f"/endpoints/{endpoint}/invocations", body, **kw)
        assert reply.status == 200, reply.body
        return reply.json()["predictions"]

    def record(self, endpoint: str, rid: str) -> Any:
        return self.server.wait_for(
            lambda: next((r for r in records(self.log, endpoint) if r.request_id == rid), None),
            what=f"the record {rid}",
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("gw-v2")
    spec = spec_dir(root / "spec")
    art = root / "artifacts"
    model_a = train(art / "a" / "model.joblib", seed=0)
    model_b = train(art / "b" / "model.joblib", seed=1, alpha=50.0)
    positional = _positional(art / "np" / "model.joblib")
    va = model_variant("v1", 1, art / "a" / "model.joblib")
    vb = model_variant("v2", 2, art / "b" / "model.joblib")
    store = routes(spec)
    store.put("default", "fraud", route("fraud", "model", [va], stable="v1"))
    store.put(
        "default", "ab", route("ab", "model", [va, vb], stable="v1", candidate="v2", weight=50)
    )
    plain = model_variant("v1", 1, art / "np" / "model.joblib")
    store.put("default", "plain", route("plain", "model", [plain], stable="v1"))
    chat = prompt_variant("v1", 1, template="{{q}}", model="m")
    client = {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "timeout_s": 1, "params": {}}
    store.put("default", "support", route("support", "prompt", [chat], stable="v1", client=client))
    server = Served(spec).wait_ready()
    rows, _ = training_frame(seed=7)
    triton = httpclient.InferenceServerClient(url=server.url.removeprefix("http://"))
    yield World(server, triton, model_a, model_b, positional, rows.head(5), log_url(spec))
    triton.close()
    server.stop()


def _positional(path: Path) -> Any:
    from sklearn.linear_model import LinearRegression

    x, y = training_frame(seed=3)
    model = LinearRegression().fit(x.to_numpy(), y.to_numpy())
    dump(model, path)
    return model


def _columns(world: World, binary: bool = True) -> list[Any]:
    """One FP64/INT64 tensor per column, as the metadata lists them."""
    out = []
    for name in FEATURES:
        values = world.rows[name].to_numpy()
        datatype = "INT64" if values.dtype.kind == "i" else "FP64"
        tensor = httpclient.InferInput(name, [len(values)], datatype)
        tensor.set_data_from_numpy(
            values.astype(np.int64 if datatype == "INT64" else np.float64), binary_data=binary
        )
        out.append(tensor)
    return out


def _frame(world: World, name: str = "input-0", binary: bool = True) -> Any:
    values = world.rows[FEATURES].to_numpy(dtype=np.float64)
    tensor = httpclient.InferInput(name, list(values.shape), "FP64")
    tensor.set_data_from_numpy(values, binary_data=binary)
    return tensor


def _v2(world: World, path: str, body: Any, **kw: Any) -> Any:
    return http("POST", f"{world.server.url}/v2/models/{path}", body, **kw)


# -- health and metadata -------------------------------------------------------------------------
def test_health_and_metadata_through_tritonclient(world: World) -> None:
    t = world.triton
    assert t.is_server_live() and t.is_server_ready()
    assert t.is_model_ready("fraud") and t.is_model_ready("ab", "2")
    assert not t.is_model_ready("ab", "7") and not t.is_model_ready("nope")
    assert t.get_server_metadata()["name"] == "mlx"
    live = world.server.get("/v2/health/live")
    assert (live.status, live.json()) == (200, {"live": True})
    ready = world.server.get("/v2/health/ready")
    assert (ready.status, ready.json()) == (200, {"ready": True})
    meta = t.get_model_metadata("fraud")
    assert meta == {
        "name": "fraud",
        "versions": ["1"],
        "platform": "mlx",
        "inputs": [{"name": n, "datatype": "FP64", "shape": [-1]} for n in FEATURES],
        "outputs": [{"name": "predict", "datatype": "FP64", "shape": [-1]}],
    }
    assert t.get_model_metadata("ab")["versions"] == ["1", "2"]
    assert t.get_model_metadata("ab", "2")["versions"] == ["1", "2"]
    assert t.get_model_metadata("plain")["inputs"] == [
        {"name": "input", "datatype": "FP64", "shape": [-1, 3]}
    ]


def test_unknown_models_versions_and_prompt_endpoints_are_named(world: World) -> None:
    with pytest.raises(InferenceServerException) as unknown:
        world.triton.get_model_metadata("fruad")
    assert unknown.value.status() == "404"
    assert "unknown endpoint 'fruad' (did you mean 'fraud'?)" in unknown.value.message()
    with pytest.raises(InferenceServerException) as version:
        world.triton.infer("ab", _columns(world), model_version="7")
    assert version.value.status() == "404"
    assert "does not serve version '7' (it serves: 1, 2)" in version.value.message()
    with pytest.raises(InferenceServerException) as prompt:
        world.triton.infer("support", _columns(world))
    assert prompt.value.status() == "404"
    assert "POST /endpoints/support/v1/chat/completions" in prompt.value.message()
    reply = _v2(world, "support/infer", {"inputs": []})
    assert reply.status == 404 and set(reply.json()) == {"error"}


# -- predictions ---------------------------------------------------------------------------------
def test_infer_predicts_what_invocations_predicts(world: World) -> None:
    expected = world.invocations("fraud")
    assert expected == pytest.approx(list(world.model_a.predict(world.rows)), rel=1e-12)
    for inputs in (
        _columns(world),  # tritonclient's default: binary tensors
        _columns(world, binary=False),  # JSON tensors
        [_frame(world)],  # one 2-D tensor, as KServe's sklearn server takes it
        [_frame(world, binary=False)],
    ):
        result = world.triton.infer("fraud", inputs)
        assert result.as_numpy("predict").tolist() == expected
        answer = result.get_response()
        assert answer["model_name"] == "fraud" and answer["model_version"] == "1"
    asked = [httpclient.InferRequestedOutput("predict", binary_data=False)]
    json_out = world.triton.infer("fraud", _columns(world), outputs=asked)
    assert json_out.get_response()["outputs"][0]["data"] == expected  # JSON, not binary
    binary = {**_json_body(world), "parameters": {"binary_data_output": True}}
    raw = _v2(world, "fraud/infer", binary)
    length = int(raw.headers["inference-header-content-length"])
    assert raw.headers["content-type"] == "application/octet-stream"
    head = json.loads(raw.body[:length])
    assert head["outputs"][0]["parameters"] == {"binary_data_size": 40}
    assert list(struct.unpack("<5d", raw.body[length:])) == expected


def test_nested_data_and_a_positional_model(world: World) -> None:
    data = world.rows[FEATURES].values.tolist()
    reply = _v2(
        world,
        "fraud/infer",
        {
            "id": "mine-1",
            "inputs": [{"name": "x", "shape": [5, 3], "datatype": "FP64", "data": data}],
        },
    )
    assert reply.status == 200, reply.body
    doc = reply.json()
    assert doc["id"] == "mine-1"
    assert doc["outputs"] == [
        {"name": "predict", "shape": [5], "datatype": "FP64", "data": world.invocations("fraud")}
    ]
    positional = world.triton.infer("plain", [_frame(world, "input")])
    expected = world.positional.predict(world.rows[FEATURES].to_numpy())
    assert positional.as_numpy("predict").tolist() == pytest.approx(expected.tolist(), rel=1e-12)
    with pytest.raises(InferenceServerException) as by_name:
        world.triton.infer("plain", _columns(world))
    assert "takes its 3 columns by position" in by_name.value.message()


def test_both_rollout_variants_answer_by_the_sticky_key(world: World) -> None:
    keys: dict[Role, str] = {}
    for i in range(200):
        keys.setdefault(choose("ab", 50, f"user-{i}", "unused"), f"user-{i}")
    assert set(keys) == {Role.STABLE, Role.CANDIDATE}
    models = {Role.STABLE: (world.model_a, "1"), Role.CANDIDATE: (world.model_b, "2")}
    for role, key in keys.items():
        model, version = models[role]
        for _ in range(3):  # sticky: the same variant every time
            result = world.triton.infer("ab", _columns(world), headers={"x-mlx-key": key})
            assert result.get_response()["model_version"] == version
            got = result.as_numpy("predict").tolist()
            assert got == world.invocations("ab", headers={"x-mlx-key": key})
            assert got == pytest.approx(list(model.predict(world.rows)), rel=1e-12)
        reply = _v2(world, "ab/infer", _json_body(world), headers={"x-mlx-key": key})
        assert reply.headers["x-mlx-variant"] == role.value
        assert reply.headers["x-mlx-version"] == version
    pinned = _v2(
        world, "ab/versions/2/infer", _json_body(world), headers={"x-mlx-key": keys[Role.STABLE]}
    )
    assert pinned.status == 200 and pinned.headers["x-mlx-variant"] == "candidate"
    assert pinned.json()["model_version"] == "2"


def _json_body(world: World) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": n, "shape": [5], "datatype": "FP64", "data": [float(v) for v in world.rows[n]]}
            for n in FEATURES
        ]
    }


# -- the log -------------------------------------------------------------------------------------
def test_an_infer_is_logged_like_an_invocation(world: World) -> None:
    started = time.perf_counter()
    result = world.triton.infer(
        "ab",
        _columns(world),
        headers={"x-request-id": "v2-logged-1", "x-mlx-key": "user-7"},
    )
    client_ms = (time.perf_counter() - started) * 1000
    rec = world.record("ab", "v2-logged-1")
    role = choose("ab", 50, "user-7", "unused")
    assert rec.endpoint == "ab" and rec.variant == role.value
    assert rec.version == result.get_response()["model_version"]
    assert rec.status == 200 and rec.error is None and rec.key_hash == key_hash("user-7")
    columns = {n: world.rows[n].tolist() for n in FEATURES}
    assert rec.inputs == {"inputs": columns}  # columnar, as invocations would take it
    assert rec.outputs == result.as_numpy("predict").tolist()
    assert 0 < rec.latency_ms <= client_ms


# -- bad tensors ---------------------------------------------------------------------------------
def _refused(world: World, inputs: list[Any], model: str = "fraud") -> str:
    with pytest.raises(InferenceServerException) as caught:
        world.triton.infer(model, inputs)
    assert caught.value.status() == "400", caught.value.message()
    message = str(caught.value.message())
    assert "\n" not in message and "Traceback" not in message
    return message


def test_bad_tensors_are_400s_naming_the_tensor(world: World) -> None:
    text = httpclient.InferInput("amount", [5], "BYTES")
    text.set_data_from_numpy(np.array([b"1.5"] * 5, dtype=np.object_))
    wrong_type = _refused(world, [text, *_columns(world)[1:]])
    assert "input tensor 'amount' is BYTES, but column 'amount' takes float" in wrong_type
    colour = httpclient.InferInput("colour", [5], "FP64")
    colour.set_data_from_numpy(np.ones(5))
    unknown = _refused(world, [*_columns(world), colour])
    assert "input tensor 'colour' is not an input of this model" in unknown
    missing = _refused(world, _columns(world)[:2])
    assert "input tensor 'hour' missing" in missing
    short = httpclient.InferInput("age", [4], "INT64")
    short.set_data_from_numpy(np.ones(4, dtype=np.int64))
    rows = _refused(world, [_columns(world)[0], short, _columns(world)[2]])
    assert "input tensor 'age' has 4 rows, but 'amount' has 5" in rows
    wide = httpclient.InferInput("input-0", [1, 4], "FP64")
    wide.set_data_from_numpy(np.ones((1, 4)))
    assert "this model takes 3 columns" in _refused(world, [wide])

    body = _json_body(world)
    body["inputs"][1]["data"] = body["inputs"][1]["data"][:4]  # shape [5], 4 values
    reply = _v2(world, "fraud/infer", body, headers={"x-request-id": "v2-bad-shape"})
    assert reply.status == 400
    assert reply.json() == {"error": "input tensor 'age': shape [5] holds 5 values, but data has 4"}
    body = _json_body(world)
    body["inputs"][0]["data"][2] = "12.5"
    reply = _v2(world, "fraud/infer", body)
    assert (
        reply.status == 400 and "'amount' is FP64, but data[2] is \"12.5\"" in reply.json()["error"]
    )
    assert (
        _v2(world, "fraud/infer", None, raw=b"{nope").json()["error"].startswith("malformed JSON")
    )
    rec = world.record("fraud", "v2-bad-shape")  # a request that reached a variant is logged
    assert rec.status == 400 and rec.variant == "stable" and "shape [5]" in rec.error


# -- the bearer token ----------------------------------------------------------------------------
def test_the_token_guards_models_not_health(tmp_path: Path) -> None:
    spec = spec_dir(tmp_path / "spec")
    (spec / "mlx.yaml").write_text(
        "mlx:\n  state: sqlite:///.mlx/state.db\n  gateway:\n    token: ${env.GW_TOKEN}\n"
    )
    train(tmp_path / "m" / "model.joblib")
    v1 = model_variant("v1", 1, tmp_path / "m" / "model.joblib")
    routes(spec).put("default", "fraud", route("fraud", "model", [v1], stable="v1"))
    server = Served(spec, env={"GW_TOKEN": "tok-v2"}).wait_ready()
    try:
        t = httpclient.InferenceServerClient(url=server.url.removeprefix("http://"))
        assert t.is_server_live() and t.is_server_ready()
        with pytest.raises(InferenceServerException) as refused:
            t.get_model_metadata("fraud")
        assert refused.value.status() == "401" and "bearer token" in refused.value.message()
        auth = {"Authorization": "Bearer tok-v2"}
        assert t.get_model_metadata("fraud", headers=auth)["versions"] == ["1"]
        x = httpclient.InferInput("input-0", [1, 3], "FP64")
        x.set_data_from_numpy(np.array([[10.0, 30.0, 12.0]]))
        assert t.infer("fraud", [x], headers=auth).as_numpy("predict").shape == (1,)
        t.close()
    finally:
        server.stop()


# -- an MLflow model -------------------------------------------------------------------------------
def test_an_mlflow_model_over_v2_reads_its_signature(tmp_path: Path) -> None:
    require_extra("mlflow", "mlflow")
    import os

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "1")
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import Ridge

    x, y = training_frame(seed=5)
    model = Ridge().fit(x, y)
    path = tmp_path / "mlflow-model"
    mlflow.sklearn.save_model(model, str(path), signature=infer_signature(x, model.predict(x)))
    spec = spec_dir(tmp_path / "spec")
    v1 = model_variant("v1", 1, path, flavor="pyfunc")  # no recorded schema: the signature's
    routes(spec).put("default", "mlf", route("mlf", "model", [v1], stable="v1"))
    server = Served(spec, env={"MLFLOW_DISABLE_TELEMETRY": "1"}).wait_ready(timeout=120)
    try:
        t = httpclient.InferenceServerClient(url=server.url.removeprefix("http://"))
        meta = t.get_model_metadata("mlf")
        assert meta["inputs"] == [
            {"name": "amount", "datatype": "FP64", "shape": [-1]},
            {"name": "age", "datatype": "INT64", "shape": [-1]},
            {"name": "hour", "datatype": "INT64", "shape": [-1]},
        ]
        assert meta["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
        rows = x.head(3)
        amount = httpclient.InferInput("amount", [3], "FP64")
        amount.set_data_from_numpy(rows["amount"].to_numpy(dtype=np.float64))
        ints = []
        for name in ("age", "hour"):
            tensor = httpclient.InferInput(name, [3], "INT64")
            tensor.set_data_from_numpy(rows[name].to_numpy(dtype=np.int64))
            ints.append(tensor)
        got = t.infer("mlf", [amount, *ints]).as_numpy("predict").tolist()
        body = {"inputs": {c: rows[c].tolist() for c in rows.columns}}
        assert got == server.post("/endpoints/mlf/invocations", body).json()["predictions"]
        assert got == pytest.approx([float(v) for v in model.predict(rows)], rel=1e-12)
        age = httpclient.InferInput("age", [3], "FP64")
        age.set_data_from_numpy(rows["age"].to_numpy(dtype=np.float64))
        with pytest.raises(InferenceServerException) as caught:
            t.infer("mlf", [amount, age, ints[1]])
        assert caught.value.status() == "400"
        assert "input tensor 'age' is FP64, but column 'age' takes int" in caught.value.message()
        t.close()
    finally:
        assert server.stop() == 0
