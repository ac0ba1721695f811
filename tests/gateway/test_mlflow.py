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
