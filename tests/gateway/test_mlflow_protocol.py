"""MLflow's scoring protocol (issue 20, points 4-7), against MLflow's own server and clients.

The strongest check runs ``mlflow models serve --env-manager local`` beside ``mlx serve`` on
the same HistGradientBoosting model (it takes NaN): the same CSV and NaN bodies — written by
hand and by MLflow's own client (``ScoringServerClient``, ``dump_input_data``) — must give
the same predictions from both. The errors are read the way MLflow's clients read them
(``mlflow.deployments``' ``http`` target and ``RestException``). The pure decisions (the
error-code table, the tolerant JSON parse, the checks of non-finite values, CSV cells, which
endpoint ``POST /invocations`` is) are table-tested without a server.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dataplane.route import Kind
from gateway.control import Broken, Snapshot
from gateway.http import CODES, MLFLOW_CODES, Fail, error_payload
from gateway.inputs import (
    Column,
    ColumnType,
    InputError,
    InputSchema,
    check_values,
    checked,
    loads_json,
    parse,
    parse_csv,
)
from gateway.invocations import root_endpoint
from tests.conftest import require_extra
from tests.gateway.conftest import log_url, routes, spec_dir, train
from tests.gateway.support import Served, http, model_variant, records, route

F, N, B, S = ColumnType.FLOAT, ColumnType.INT, ColumnType.BOOL, ColumnType.STRING
MLFLOW_ENV = {"MLFLOW_DISABLE_TELEMETRY": "1"}
TREE = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"


# -- the error codes, as MLflow reads them -----------------------------------------------------
def test_every_status_has_an_mlflow_name_that_mlflow_maps_back_to_its_class() -> None:
    """Each status the gateway answers gets an ``ErrorCode`` name from MLflow's proto;
    MLflow's own table maps that name back to the same status where it has one for it, and
    always to the same class (a caller's 4xx never becomes MLflow's generic 500)."""
    require_extra("mlflow", "mlflow")
    from mlflow.exceptions import ERROR_CODE_TO_HTTP_STATUS, RestException
    from mlflow.protos.databricks_pb2 import ErrorCode

    named = set(ERROR_CODE_TO_HTTP_STATUS.values())
    for status in sorted({*CODES, *MLFLOW_CODES}):
        doc = error_payload("mlflow", status, "what went wrong", {})
        assert ErrorCode.Value(doc["error_code"]) >= 0, status  # a name in the proto
        assert doc["mlx_code"] == CODES.get(status, "ERROR")
        back = RestException(doc).get_http_status_code()
        if status in named:
            assert back == status, (status, doc)
        assert back // 100 == status // 100, (status, doc)
    assert error_payload("mlflow", 500, "m", {"mlx_code": "MODEL_ERROR"}) == {
        "error_code": "INTERNAL_ERROR",
        "message": "m",
        "mlx_code": "MODEL_ERROR",
    }
    # the other families keep their shapes
    assert error_payload("openai", 429, "m", {})["error"]["code"] == "rate_limited"
    assert "error_code" not in error_payload("plain", 404, "m", {})


# -- NaN and Infinity in JSON --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"a": [1.5, 2]}', {"a": [1.5, 2]}),  # orjson's fast path
        (b'{"a": [NaN, 1]}', {"a": [math.nan, 1]}),
        (b'{"a": [Infinity, -Infinity]}', {"a": [math.inf, -math.inf]}),
        (b'{"s": "NaN", "a": [NaN]}', {"s": "NaN", "a": [math.nan]}),
        (b'{"a": [NaN,]}', "malformed JSON"),  # what orjson refuses stays refused
        (b'{"a": [nan]}', "malformed JSON"),  # only JSON's extension's spelling
        (b'{"a": [NaN], "s": "\\ud800"}', "malformed JSON"),  # a lone surrogate
        (b'{"a": [NaN, 123456789012345678901234567890]}', "malformed JSON"),  # > 64 bits
        (b'{"a": [1, 2}', "malformed JSON"),
    ],
)
def test_json_takes_nan_and_infinity_only_besides_what_orjson_takes(
    body: bytes, expected: Any
) -> None:
    if isinstance(expected, str):
        with pytest.raises(InputError, match=expected):
            loads_json(body)
        return
    got = loads_json(body)
    assert repr(got) == repr(expected)  # nan == nan is False; repr compares it


SCHEMA = InputSchema(
    (
        Column("f", F, True),
        Column("g", F, False),
        Column("n", N, True),
        Column("b", B, True),
        Column("s", S, True),
        Column("u", None, True),
    ),
    "spec",
)
ROW = [1.0, 2.0, 3, True, "x", "anything"]


@pytest.mark.parametrize(
    ("column", "value", "said"),
    [
        ("f", math.nan, None),  # a missing float, in a nullable column
        ("f", math.inf, None),
        ("g", math.inf, None),  # a float column takes the infinities
        ("g", -math.inf, None),
        ("u", math.nan, None),  # an untyped column: the model judges
        ("g", math.nan, "column 'g' takes no nulls, but row 0 has NaN"),
        ("n", math.nan, "column 'n' is int, but row 0 has NaN, which only a float column takes"),
        ("n", math.inf, "column 'n' is int, but row 0 has Infinity"),
        ("s", math.nan, "column 's' is string, but row 0 has NaN"),
        ("b", -math.inf, "column 'b' is bool, but row 0 has -Infinity"),
    ],
)
def test_non_finite_values_go_only_to_float_columns(column: str, value: float, said: Any) -> None:
    row = list(ROW)
    row[[c.name for c in SCHEMA.columns].index(column)] = value
    names = [str(c.name) for c in SCHEMA.columns]
    if said is None:
        check_values("dataframe_split", SCHEMA, names, [row])
    else:
        with pytest.raises(InputError, match=said.replace("(", r"\(")):
            check_values("dataframe_split", SCHEMA, names, [row])


def test_nan_does_not_slip_through_the_all_floats_fast_path() -> None:
    plain = InputSchema((Column("a", F, False), Column("b", F, False)), "sklearn")
    check_values("inputs", plain, ["a", "b"], [[1.0, math.inf]])
    with pytest.raises(InputError, match="column 'b' takes no nulls, but row 1 has NaN"):
        check_values("inputs", plain, ["a", "b"], [[1.0, 2.0], [1.0, math.nan]])


# -- CSV ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cell", "kind", "value"),
    [
        ("", F, None),
        ("NA", F, None),  # pandas.read_csv's missing-value spellings
        ("NaN", F, None),
        ("null", N, None),
        ("N/A", None, None),
        ("NA", S, "NA"),  # ... but text stays text in a string column
        ("", S, None),
        ("inf", F, math.inf),
        ("-Infinity", F, -math.inf),
        ("1e3", N, 1000),
        ("02139", S, "02139"),
        ("1_000", F, "must be a number"),  # Python's float() takes it, pandas does not
        ("1_000", None, "1_000"),  # an untyped cell that is no number is text
    ],
)
def test_csv_cells_are_read_as_pandas_reads_them(cell: str, kind: Any, value: Any) -> None:
    schema = InputSchema((Column("x", kind, True), Column("y", F, True)), "spec")
    frame = parse(parse_csv(f"x,y\n{cell},1\n".encode()))
    if isinstance(value, str) and value.startswith("must"):
        with pytest.raises(InputError, match=value):
            checked(frame, schema)
        return
    assert checked(frame, schema)[1][0][0] == value


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"a,b\n1,2\n3\n", "CSV line 3 (data row 1) has 1 value, but the header names 2 columns"),
        (b"a,b\n1,2,3\n", "CSV line 2 (data row 0) has 3 values"),
        (b'a,b\n1,"2\n', "malformed CSV"),
        (b"1.5,2\n3,4\n", "the CSV's first line (1.5, 2) holds numbers: it must be a header"),
        (b"a,\n1,2\n", "the CSV header's column 1 has no name"),
        (b"\n\n", "the CSV body is empty"),
    ],
)
def test_malformed_csv_is_refused_naming_the_line(body: bytes, said: str) -> None:
    with pytest.raises(InputError, match=said.replace("(", r"\(").replace(")", r"\)")):
        parse(parse_csv(body))


# -- which endpoint POST /invocations is -------------------------------------------------------
def _snapshot(
    models: list[str], prompts: tuple[str, ...] = (), broken: tuple[str, ...] = ()
) -> Snapshot:
    def view(kind: Kind) -> Any:
        return SimpleNamespace(route=SimpleNamespace(kind=kind))

    endpoints = {n: view(Kind.MODEL) for n in models} | {n: view(Kind.PROMPT) for n in prompts}
    return Snapshot(endpoints, {n: Broken(n, 1, "cannot load") for n in broken})


@pytest.mark.parametrize(
    ("snapshot", "default", "expected"),
    [
        (_snapshot(["fraud"]), None, "fraud"),
        (_snapshot(["fraud"], prompts=("chat",)), None, "fraud"),  # prompts do not count
        (_snapshot(["fraud", "churn"]), "churn", "churn"),
        (_snapshot([], broken=("fraud",)), None, "fraud"),  # its 503 says why
        (_snapshot([], prompts=("chat",)), None, (404, "no model endpoint is served here")),
        (_snapshot([]), None, (404, "no model endpoint is served here: POST")),
        (
            _snapshot(["fraud", "churn"]),
            None,
            (400, "2 are served (churn, fraud); POST /endpoints/{name}/invocations"),
        ),
        (_snapshot(["fraud"], broken=("churn",)), None, (400, "--default-endpoint NAME")),
    ],
)
def test_root_invocations_picks_the_one_model_endpoint(
    snapshot: Snapshot, default: str | None, expected: Any
) -> None:
    if isinstance(expected, str):
        assert root_endpoint(snapshot, default) == expected
        return
    with pytest.raises(Fail) as raised:
        root_endpoint(snapshot, default)
    assert raised.value.status == expected[0] and expected[1] in raised.value.message


# -- side by side with MLflow's own scoring server -----------------------------------------------
def _hgb(tmp: Path) -> tuple[Any, Any, Path, Path]:
    """A HistGradientBoosting regressor (it takes NaN) fitted with missing ages, saved as an
    MLflow model directory and as a joblib file: ``(model, frame, mlflow dir, joblib)``."""
    require_extra("mlflow", "mlflow")
    import joblib
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.ensemble import HistGradientBoostingRegressor

    from tests.gateway.conftest import training_frame

    x, y = training_frame(seed=3)
    x = x.astype(float)
    x.loc[::7, "age"] = math.nan
    model = HistGradientBoostingRegressor(max_iter=30, random_state=0).fit(x, y)
    directory, pickle = tmp / "hgb-mlflow", tmp / "hgb.joblib"
    mlflow.sklearn.save_model(
        model,
        str(directory),
        signature=infer_signature(x, model.predict(x)),
        skops_trusted_types=[TREE],
    )
    joblib.dump(model, pickle)
    return model, x, directory, pickle


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MlflowServer:
    """``mlflow models serve --env-manager local`` (uvicorn under it: one process group)."""

    def __init__(self, model_dir: Path):
        self.port = _free_port()
        env = {**os.environ, **MLFLOW_ENV}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "mlflow"),
                "models",
                "serve",
                "-m",
                str(model_dir),
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def _predictions(reply: Any) -> list[float]:
    assert reply.status == 200, reply.body
    return [float(v) for v in reply.json()["predictions"]]


@pytest.mark.slow
def test_csv_and_nan_give_mlflows_own_predictions(tmp_path: Path) -> None:
    """MLflow's server and mlx's, on the same model: the same predictions for CSV (missing
    cells, pandas' NaN spellings, the infinities) and for JSON holding NaN and Infinity, sent
    by hand and by MLflow's own ``ScoringServerClient`` at both servers' root."""
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient
    from mlflow.utils.proto_json_utils import dump_input_data

    from gateway.core import mlx_version

    model, x, directory, pickle = _hgb(tmp_path)
    spec = spec_dir(tmp_path / "spec")
    table = routes(spec)
    table.put(
        "default", "hgb", route("hgb", "model", [model_variant("v1", 1, directory)], stable="v1")
    )
    table.put(
        "default", "hgbsk", route("hgbsk", "model", [model_variant("v1", 1, pickle)], stable="v1")
    )
    mlflow_server = MlflowServer(directory)
    served = Served(spec, env=MLFLOW_ENV, args=["--default-endpoint", "hgb"])
    try:
        served.wait_ready(timeout=180)
        host, port = served.url.removeprefix("http://").rsplit(":", 1)
        mlx_client = ScoringServerClient(host, int(port))
        mlx_client.wait_server_ready(timeout=60)
        theirs = ScoringServerClient("127.0.0.1", mlflow_server.port)
        theirs.wait_server_ready(timeout=180, scoring_server_proc=mlflow_server.proc)
        assert mlx_client.get_version() == mlx_version() != theirs.get_version()

        rows = x.head(6).copy()
        rows.loc[rows.index[1], "amount"] = math.nan
        rows.loc[rows.index[2], "hour"] = math.nan
        expected = pytest.approx([float(v) for v in model.predict(rows)], rel=1e-12)
        # MLflow's own client writes NaN literals (dump_input_data); both servers agree
        body = dump_input_data(rows)
        assert b"NaN" in body.encode()
        assert theirs.invoke(rows).get_predictions().iloc[:, 0].tolist() == expected
        assert mlx_client.invoke(rows).get_predictions().iloc[:, 0].tolist() == expected
        csv = (
            b"amount,age,hour\n"
            b"100.5,,3\n"  # an empty cell
            b"NA,40,7\n"  # pandas' spellings of a missing value
            b"50,NaN,null\n"
            b"20,inf,5\n"  # and of the infinities
            b"20,-Infinity,5\n"
        )
        as_json = (
            b'{"dataframe_split": {"columns": ["amount", "age", "hour"], "data": ['
            b"[100.5, NaN, 3], [NaN, 40, 7], [50, NaN, NaN], [20, Infinity, 5], [20, -Infinity, 5]"
            b"]}}"
        )
        for content_type, raw in (
            ("text/csv", csv),
            ("text/csv; charset=utf-8", csv),
            ("application/json", as_json),
        ):
            headers = {"Content-Type": content_type}
            reference = _predictions(
                http("POST", f"{mlflow_server.url}/invocations", raw=raw, headers=headers)
            )
            assert len(reference) == 5
            for path in (
                "/invocations",
                "/endpoints/hgb/invocations",
                "/endpoints/hgbsk/invocations",
            ):
                got = _predictions(served.post(path, raw=raw, headers=headers))
                assert got == pytest.approx(reference, rel=1e-12), (content_type, path)
        # the record of a NaN request is JSON: NaN is stored as null
        nan_headers = {"Content-Type": "application/json", "x-request-id": "nan-1"}
        reply = served.post("/endpoints/hgbsk/invocations", raw=as_json, headers=nan_headers)
        assert reply.status == 200
        rec = served.wait_for(
            lambda: next(
                (r for r in records(log_url(spec), "hgbsk") if r.request_id == "nan-1"), None
            ),
            what="the record of nan-1",
        )
        assert rec.inputs["dataframe_split"]["data"][0] == [100.5, None, 3]
        assert rec.outputs == pytest.approx(_predictions(reply))
    finally:
        mlflow_server.stop()
        assert served.stop() == 0, served.output()


# -- errors as MLflow's clients read them; readiness ---------------------------------------------
def _mlflow_error(client: Any, endpoint: str, inputs: Any) -> tuple[int, Any, str]:
    """What ``mlflow.deployments``' ``http`` client raises: (status, RestException, text)."""
    import requests
    from mlflow.exceptions import RestException

    with pytest.raises(requests.HTTPError) as raised:
        client.predict(endpoint=endpoint, inputs=inputs)
    response = raised.value.response
    return response.status_code, RestException(response.json()), str(raised.value)


@pytest.mark.slow
def test_mlflow_clients_see_the_right_status_and_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``mlflow.deployments.get_deploy_client(url).predict`` (MLflow's ``http`` target posts to
    ``/endpoints/{name}/invocations``) and MLflow's ``RestException`` read each error with its
    own status and an MLflow name — never the generic 500 an unknown code became; mlx's code
    is kept in ``mlx_code``. Readiness: ``/ping``, ``/health``, ``/readyz`` are 503 while an
    endpoint has no version loaded or the log cannot be written; ``/healthz`` stays 200."""
    require_extra("mlflow", "mlflow")
    from mlflow.deployments import get_deploy_client
    from sqlalchemy import create_engine, text

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # 503s are retried otherwise
    spec = spec_dir(tmp_path / "spec")
    table = routes(spec)
    train(tmp_path / "fraud.joblib")
    fraud = model_variant("v1", 1, tmp_path / "fraud.joblib")
    table.put("default", "fraud", route("fraud", "model", [fraud], stable="v1", max_body_bytes=400))
    missing = model_variant("v3", 3, tmp_path / "nowhere.joblib")  # fails to load
    table.put("default", "gone", route("gone", "model", [missing], stable="v3"))
    served = Served(spec).wait_ready()
    client = get_deploy_client(served.url)
    row = {"dataframe_records": [{"amount": 10.0, "age": 30, "hour": 4}]}
    try:
        assert client.predict(endpoint="fraud", inputs=row)["predictions"]
        cases = [
            ("fraud", {"dataframe_records": [{"amount": 1, "age": "x", "hour": 4}]}, 400,
             "BAD_REQUEST", "BAD_REQUEST", "column 'age' must be a number"),
            ("frad", row, 404, "ENDPOINT_NOT_FOUND", "NOT_FOUND", "did you mean 'fraud'?"),
            ("fraud", {"instances": [[1.0, 2.0, 3.0]] * 40}, 413, "BAD_REQUEST",
             "REQUEST_TOO_LARGE", "this endpoint takes at most 400"),
            ("gone", row, 503, "TEMPORARILY_UNAVAILABLE", "UNAVAILABLE",
             "endpoint 'gone' has no version that can serve"),
        ]  # fmt: skip
        for endpoint, inputs, status, code, mlx_code, said in cases:
            got, exc, shown = _mlflow_error(client, endpoint, inputs)
            assert got == status, (endpoint, shown)
            assert exc.error_code == code and exc.json["mlx_code"] == mlx_code, exc.json
            assert exc.get_http_status_code() // 100 == status // 100
            assert said in exc.message and said in shown  # the user reads the reason
        nan = served.post(  # (the deployments client's requests refuses to send a NaN)
            "/endpoints/fraud/invocations", raw=b'{"instances": [[1.0, NaN, 4]]}'
        )
        assert nan.status == 400 and nan.json()["error_code"] == "BAD_REQUEST"
        assert "column 'age' takes no nulls, but row 0 has NaN" in nan.json()["message"]
        # the root route names the endpoints to pick from
        two = served.post("/invocations", row)
        assert two.status == 400 and two.json()["endpoints"] == ["fraud", "gone"]
        assert "POST /endpoints/{name}/invocations" in two.json()["message"]
        for path in ("/ping", "/health", "/readyz"):
            reply = served.get(path)
            assert reply.status == 503, path
            assert "endpoint 'gone': no version loaded" in reply.json()["problems"], path
        assert served.get("/healthz").status == 200
        assert served.get("/version").body.decode() == _mlx_version()
        table.delete("default", "gone")  # the one model endpoint left is ready, and the root's
        served.wait_for(lambda: served.get("/ping").status == 200, what="/ping to say 200")
        assert served.get("/ping").body == b"\n" and served.get("/readyz").status == 200
        root = served.post("/invocations", row, headers={"x-request-id": "root-1"})
        assert root.status == 200 and root.headers["x-mlx-version"] == "1"
        assert root.json() == served.post("/endpoints/fraud/invocations", row).json()
        rec = served.wait_for(
            lambda: next(
                (r for r in records(log_url(spec), "fraud") if r.request_id == "root-1"), None
            ),
            what="the record of root-1",
        )
        assert rec.endpoint == "fraud" and rec.status == 200
        wrong = served.get("/invocations")  # a GET: 405, in MLflow's shape
        assert wrong.status == 405 and wrong.json()["error_code"] == "BAD_REQUEST"
        engine = create_engine(log_url(spec))
        try:  # the log cannot be written: not ready (records wait), alive
            with engine.begin() as conn:
                conn.execute(text("ALTER TABLE mlx_inference RENAME TO mlx_inference_away"))
            assert served.post("/invocations", row).status == 200
            served.wait_for(lambda: served.get("/ping").status == 503, what="/ping to say 503")
            assert served.get("/health").status == 503 and served.get("/readyz").status == 503
            assert "inference log failing" in served.get("/ping").json()["problems"][0]
            assert served.get("/healthz").status == 200
            with engine.begin() as conn:
                conn.execute(text("ALTER TABLE mlx_inference_away RENAME TO mlx_inference"))
            served.wait_for(lambda: served.get("/ping").status == 200, what="/ping to say 200")
        finally:
            engine.dispose()
    finally:
        assert served.stop() == 0, served.output()


def _mlx_version() -> str:
    from gateway.core import mlx_version

    return mlx_version()


@pytest.mark.parametrize(
    ("default", "said"),
    [
        ("nope", "--default-endpoint nope: no such endpoint; endpoints: chat, fraud"),
        ("chat", "--default-endpoint chat: endpoint 'chat' serves a prompt"),
    ],
)
def test_serve_refuses_a_default_endpoint_that_is_no_model_endpoint(
    tmp_path: Path, default: str, said: str
) -> None:
    from tests.conftest import MLX, REPO
    from tests.gateway.support import prompt_variant

    spec = spec_dir(tmp_path / "spec")
    train(tmp_path / "fraud.joblib")
    table = routes(spec)
    model = model_variant("v1", 1, tmp_path / "fraud.joblib")
    table.put("default", "fraud", route("fraud", "model", [model], stable="v1"))
    prompt = prompt_variant("p1", 1, template="hi")
    table.put("default", "chat", route("chat", "prompt", [prompt], stable="p1"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for name in ("MLX_ENV", "MLX_STATE", "MLX_LOG", "MLX_GATEWAY_TOKEN"):
        env.pop(name, None)
    run = subprocess.run(
        [str(MLX), "serve", "-C", str(spec), "--port", "0", "--default-endpoint", default],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run
    assert said in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert "listening" not in run.stdout
