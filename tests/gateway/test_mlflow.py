"""An MLflow model directory served through ``mlflow.pyfunc`` (its signature judges the input)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_extra
from tests.gateway.conftest import routes, spec_dir, training_frame
from tests.gateway.support import Served, model_variant, route

pytestmark = pytest.mark.slow


def test_an_mlflow_model_directory_is_served_with_its_signature(tmp_path: Path) -> None:
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
    for name, flavor in (("pyfunc", "pyfunc"), ("sk", "sklearn")):  # a directory: pyfunc either way
        v1 = model_variant("v1", 1, path, flavor=flavor)
        routes(spec).put("default", name, route(name, "model", [v1], stable="v1"))
    server = Served(spec, env={"MLFLOW_DISABLE_TELEMETRY": "1"}).wait_ready(timeout=120)
    try:
        rows = x.head(3)
        expected = pytest.approx([float(v) for v in model.predict(rows)], rel=1e-12)
        for name in ("pyfunc", "sk"):
            for body in (
                {"dataframe_split": rows.to_dict(orient="split")},
                {"dataframe_records": rows.to_dict(orient="records")},
                {"inputs": {c: rows[c].tolist() for c in rows.columns}},
            ):
                body.get("dataframe_split", {}).pop("index", None)
                reply = server.post(f"/endpoints/{name}/invocations", body)
                assert reply.status == 200, reply.body
                assert reply.json()["predictions"] == expected
        missing = rows.drop(columns=["age"]).to_dict(orient="records")
        bad = server.post("/endpoints/pyfunc/invocations", {"dataframe_records": missing})
        assert bad.status == 400 and "age" in bad.json()["message"]
        assert "Traceback" not in bad.body.decode()
    finally:
        assert server.stop() == 0


def test_an_mlflow_model_that_raises_is_a_500_and_its_signature_refusals_are_400s(
    tmp_path: Path,
) -> None:
    """MLflow's schema enforcement is the caller's 400; what predict raises is the model's
    500 MODEL_ERROR (before: a ValueError from predict answered 400)."""
    require_extra("mlflow", "mlflow")
    import os

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "1")
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    from tests.gateway.mlflow_models import RaisesOnPredict

    x, _ = training_frame(seed=5)
    x = x.astype(float)
    path = tmp_path / "raises"
    mlflow.pyfunc.save_model(
        str(path), python_model=RaisesOnPredict(), signature=infer_signature(x, [0.0] * len(x))
    )
    spec = spec_dir(tmp_path / "spec")
    routes(spec).put(
        "default", "raises", route("raises", "model", [model_variant("v2", 2, path)], stable="v2")
    )
    server = Served(spec, env={"MLFLOW_DISABLE_TELEMETRY": "1"}).wait_ready(timeout=120)
    try:
        rows = x.head(2)
        good = server.post(
            "/endpoints/raises/invocations", {"dataframe_records": rows.to_dict(orient="records")}
        )
        assert good.status == 500, good.body
        assert good.json() == {
            "error_code": "INTERNAL_ERROR",
            "message": "endpoint 'raises' version 2: the model failed (ValueError)",
            "mlx_code": "MODEL_ERROR",
        }
        csv = "amount,age,hour\n" + "\n".join(",".join(map(str, r)) for r in rows.values)
        as_csv = server.post(
            "/endpoints/raises/invocations",
            raw=csv.encode(),
            headers={"Content-Type": "text/csv"},
        )
        assert as_csv.status == 500 and as_csv.json()["mlx_code"] == "MODEL_ERROR"
        missing = rows.drop(columns=["age"]).to_dict(orient="records")
        bad = server.post("/endpoints/raises/invocations", {"dataframe_records": missing})
        assert bad.status == 400, bad.body
        assert "age" in bad.json()["message"] and bad.json()["error_code"] == "BAD_REQUEST"
    finally:
        assert server.stop() == 0
