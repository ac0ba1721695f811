"""Named columns (item 3), end to end: `mlx apply` records each version's input schema, the
route carries it, and `mlx serve` checks requests against it — reordering named columns,
refusing unknown and missing ones, refusing names a positional model would ignore — and a
plan shows a new version whose schema differs from the released one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_mlx, write_spec
from tests.gateway.conftest import FEATURES, dump, train, training_frame
from tests.gateway.support import Reply, Served

pytestmark = pytest.mark.slow

SPEC = {
    "models.yaml": """
        models:
          named: {artifact: named.joblib, flavor: sklearn, owner: team-ml}
          plain: {artifact: plain.joblib, flavor: sklearn, owner: team-ml}
          declared:
            artifact: plain.joblib
            flavor: sklearn
            owner: team-ml
            inputs:
              - {name: amount, type: float}
              - {name: age, type: int}
              - {name: hour, type: int}
    """,
    "serving.yaml": """
        endpoints:
          named: {serves: "${models.named}", owner: team-ml}
          plain: {serves: "${models.plain}", owner: team-ml}
          declared: {serves: "${models.declared}", owner: team-ml}
    """,
}


@dataclass
class World:
    spec: Path
    server: Served
    named: Any  # fitted on a DataFrame: feature_names_in_ = FEATURES
    plain: Any  # fitted on an array: 3 columns by position
    rows: Any

    def invoke(self, endpoint: str, body: Any) -> Reply:
        return self.server.post(f"/endpoints/{endpoint}/invocations", body)


def _plain(path: Path) -> Any:
    from sklearn.linear_model import LinearRegression

    x, y = training_frame(seed=3)
    model = LinearRegression().fit(x.to_numpy(), y.to_numpy())
    dump(model, path)
    return model


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    spec = write_spec(tmp_path_factory.mktemp("schema") / "spec", SPEC)
    named = train(spec / "named.joblib", seed=0)
    plain = _plain(spec / "plain.joblib")
    applied = run_mlx(["apply", "--yes"], spec)
    assert applied.code == 0, applied
    server = Served(spec).wait_ready()
    rows, _ = training_frame(seed=7)
    yield World(spec, server, named, plain, rows.head(4))
    server.stop()


def _expected(model: Any, x: Any) -> Any:
    return pytest.approx([float(v) for v in model.predict(x)], rel=1e-12, abs=1e-12)


def _message(reply: Reply) -> str:
    assert reply.status == 400, reply.body
    assert reply.json()["error_code"] == "BAD_REQUEST"
    return str(reply.json()["message"])


def test_each_version_records_its_input_schema(world: World) -> None:
    def schema(address: str) -> Any:
        shown = run_mlx(["state", "show", address], world.spec)
        return json.loads(shown.out)["outputs"]["input_schema"]

    floats = [{"name": n, "type": "float", "nullable": False} for n in FEATURES]
    assert schema("models.named") == {"source": "sklearn", "columns": floats}
    positional = [{"name": None, "type": "float", "nullable": False}] * 3
    assert schema("models.plain") == {"source": "sklearn", "columns": positional}
    declared = schema("models.declared")
    assert declared["source"] == "spec"
    assert [(c["name"], c["type"]) for c in declared["columns"]] == [
        ("amount", "float"),
        ("age", "int"),
        ("hour", "int"),
    ]


def test_records_with_keys_in_another_order_predict_the_same(world: World) -> None:
    trained = world.rows[FEATURES].to_dict(orient="records")
    sorted_keys = [dict(sorted(r.items())) for r in trained]  # what Go and many encoders send
    assert list(sorted_keys[0]) != FEATURES
    expected = _expected(world.named, world.rows[FEATURES])
    for body in (
        {"dataframe_records": trained},
        {"dataframe_records": sorted_keys},
        {"instances": sorted_keys},
        {
            "dataframe_split": {
                "columns": sorted(FEATURES),
                "data": [list(r.values()) for r in sorted_keys],
            }
        },
    ):
        reply = world.invoke("named", body)
        assert reply.status == 200, reply.body
        assert reply.json()["predictions"] == expected


def test_a_misspelled_or_missing_column_is_a_400_naming_it(world: World) -> None:
    record = world.rows[FEATURES].head(1).to_dict(orient="records")[0]
    typo = {("amout" if k == "amount" else k): v for k, v in record.items()}
    said = _message(world.invoke("named", {"dataframe_records": [typo]}))
    assert "unknown column 'amout' (did you mean 'amount'?)" in said
    assert "missing column 'amount'" in said
    missing = {k: v for k, v in record.items() if k != "hour"}
    said = _message(world.invoke("named", {"dataframe_records": [missing]}))
    assert "missing column 'hour'" in said and "the model takes amount, age, hour" in said
    positional = world.rows[FEATURES].head(1).values.tolist()
    assert world.invoke("named", {"instances": positional}).status == 200  # by position
    short = _message(world.invoke("named", {"instances": [r[:2] for r in positional]}))
    assert "rows have 2 values, but the model takes 3 columns (amount, age, hour)" in short


def test_names_to_a_model_without_names_are_refused(world: World) -> None:
    record = world.rows[FEATURES].head(1).to_dict(orient="records")
    said = _message(world.invoke("plain", {"dataframe_records": record}))
    assert "takes its 3 columns by position" in said and "declare `inputs:`" in said
    positional = world.rows[FEATURES].head(2).values.tolist()
    reply = world.invoke("plain", {"instances": positional})
    assert reply.json()["predictions"] == _expected(
        world.plain, world.rows[FEATURES].head(2).to_numpy()
    )


def test_with_inputs_declared_names_are_reordered_and_types_checked(world: World) -> None:
    records = world.rows[FEATURES].to_dict(orient="records")
    reordered = [{"hour": r["hour"], "age": r["age"], "amount": r["amount"]} for r in records]
    reply = world.invoke("declared", {"dataframe_records": reordered})
    assert reply.status == 200, reply.body
    assert reply.json()["predictions"] == _expected(world.plain, world.rows[FEATURES].to_numpy())
    wrong = [{**records[0], "age": 41.5}]
    said = _message(world.invoke("declared", {"dataframe_records": wrong}))
    assert "column 'age' must be a whole number, but row 0 has number 41.5" in said
    null = [records[0], {**records[1], "hour": None}]
    said = _message(world.invoke("declared", {"dataframe_records": null}))
    assert "column 'hour' takes no nulls, but row 1 has null" in said


# -- the plan shows a schema change ------------------------------------------------------------
def test_a_retrained_model_that_drops_a_column_shows_the_change_in_the_plan(
    tmp_path: Path,
) -> None:
    import joblib
    from sklearn.linear_model import Ridge

    spec = write_spec(
        tmp_path / "spec",
        {
            "models.yaml": """
                models:
                  fraud: {artifact: model.joblib, flavor: sklearn, owner: team-ml}
            """,
            "serving.yaml": """
                endpoints:
                  fraud: {serves: "${models.fraud}", owner: team-ml}
            """,
        },
    )
    train(spec / "model.joblib", seed=0)
    assert run_mlx(["apply", "--yes"], spec).code == 0
    x, y = training_frame(seed=2)
    joblib.dump(Ridge().fit(x[["amount", "hour"]], y), spec / "model.joblib")  # age dropped
    removed = "input schema changed (breaking for callers): column 'age' removed"
    text = run_mlx(["plan"], spec)
    assert text.code == 0, text
    assert f"# Warning: {removed}" in text.out
    markdown = run_mlx(["plan", "--markdown"], spec)
    assert f"`models.fraud`: {removed}" in markdown.out
    doc = json.loads(run_mlx(["plan", "--json"], spec).out)
    assert f"models.fraud: {removed}" in doc["mlx"]["warnings"]
    # the same model, retrained on the same columns: nothing to say
    train(spec / "model.joblib", seed=5, alpha=3.0)
    assert "input schema changed" not in run_mlx(["plan"], spec).out
