"""Input schemas, table by table: read from artifacts without running them
(``common.model_inputs``), compared for a plan (``engine.plan.schema_change``), checked
against requests (``gateway.inputs``), and artifact digests (``common.digests``)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from common.digests import Mismatch, digest_path, read_verified
from common.model_inputs import (
    SchemaConflict,
    conflict,
    declared,
    for_model,
    of_artifact,
    of_estimator,
    of_mlmodel,
    of_pickle,
)
from engine.plan.schema_change import changes
from gateway.inputs import (
    Column,
    ColumnType,
    CsvDocument,
    InputError,
    InputSchema,
    align,
    checked,
    parse,
    parse_csv,
)

joblib = pytest.importorskip("joblib")
pd = pytest.importorskip("pandas")
sklearn = pytest.importorskip("sklearn")

NAMES = ["amount", "age", "site"]


def _frame() -> Any:
    return pd.DataFrame(
        {"amount": [1.0, 2.5, 3.0, 4.0], "age": [30, 40, 50, 60], "site": ["n", "s", "n", "e"]}
    )


def _numeric() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = _frame()[["amount", "age"]]
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(x, [0, 1, 0, 1])


def _encoding() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    encode = ColumnTransformer([("site", OneHotEncoder(), ["site"])], remainder="passthrough")
    return make_pipeline(encode, LogisticRegression()).fit(_frame(), [0, 1, 0, 1])


def _positional() -> Any:
    from sklearn.linear_model import Ridge

    return Ridge().fit(_frame()[["amount", "age"]].to_numpy(), [0.0, 1.0, 0.0, 1.0])


def _takes_nulls() -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(max_iter=2).fit(
        _frame()[["amount", "age"]], [0.0, 1.0, 0.0, 1.0]
    )


def _cols(names: list[Any], type_: str | None, nullable: bool) -> list[dict[str, Any]]:
    return [{"name": n, "type": type_, "nullable": nullable} for n in names]


NUMERIC = {"source": "sklearn", "columns": _cols(["amount", "age"], "float", False)}


# -- reading artifacts --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "compress", "expected"),
    [
        (_numeric, 0, NUMERIC),
        (_numeric, 3, NUMERIC),  # zlib
        (_numeric, ("gzip", 3), NUMERIC),
        (_numeric, ("bz2", 3), NUMERIC),
        (_numeric, ("xz", 3), NUMERIC),
        (_numeric, ("lzma", 3), NUMERIC),
        (_positional, 0, {"source": "sklearn", "columns": _cols([None, None], "float", False)}),
        (_encoding, 0, {"source": "sklearn", "columns": _cols(NAMES, None, True)}),
        (
            _takes_nulls,
            0,
            {"source": "sklearn", "columns": _cols(["amount", "age"], "float", True)},
        ),
    ],
)
def test_a_joblib_file_is_read_for_its_schema(
    tmp_path: Path, make: Any, compress: Any, expected: dict[str, Any]
) -> None:
    path = tmp_path / "model.joblib"
    model = make()
    joblib.dump(model, path, compress=compress)
    assert of_pickle(path.read_bytes()) == expected
    assert of_estimator(model) == expected  # the same rules on the live object (the gateway)


def test_a_plain_pickle_and_a_directory_holding_one_are_read(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "model.pkl").write_bytes(pickle.dumps(_numeric()))
    assert of_artifact(tmp_path / "d", "sklearn") == NUMERIC
    assert of_artifact(tmp_path / "d", "onnx") is None  # not a pickle flavor: not read


class _Hostile:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> Any:
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize(
    "blob",
    [b"", b"not a pickle at all", b"\x80\x05garbage", pickle.dumps({"weights": [1, 2]})],
)
def test_what_is_not_a_fitted_model_has_no_schema(blob: bytes) -> None:
    assert of_pickle(blob) is None


def test_reading_a_hostile_pickle_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    blob = pickle.dumps(_Hostile(marker))
    assert of_pickle(blob) is None
    path = tmp_path / "model.joblib"
    joblib.dump({"model": _Hostile(marker)}, path)
    assert of_pickle(path.read_bytes()) is None
    assert not marker.exists()


def _mlmodel(tmp_path: Path, signature: Any) -> Path:
    import yaml

    meta: dict[str, Any] = {"flavors": {"python_function": {}}}
    if signature is not None:
        meta["signature"] = {"inputs": json.dumps(signature)}
    path = tmp_path / "MLmodel"
    path.write_text(yaml.safe_dump(meta))
    return path


@pytest.mark.parametrize(
    ("signature", "expected"),
    [
        (
            [
                {"type": "double", "name": "amount", "required": True},
                {"type": "long", "name": "age"},
                {"type": "string", "name": "site", "required": False},
                {"type": "boolean", "name": "vip"},
                {"type": "binary", "name": "blob"},
            ],
            [
                {"name": "amount", "type": "float", "nullable": False},
                {"name": "age", "type": "int", "nullable": False},
                {"name": "site", "type": "string", "nullable": True},
                {"name": "vip", "type": "bool", "nullable": False},
                {"name": "blob", "type": None, "nullable": False},
            ],
        ),
        (
            [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}],
            _cols([None, None, None], "float", False),
        ),
        ([{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3, 3]}}], None),
        (None, None),
    ],
)
def test_an_mlflow_signature_is_read(tmp_path: Path, signature: Any, expected: Any) -> None:
    found = of_mlmodel(_mlmodel(tmp_path, signature))
    assert (found["columns"] if found else None) == expected


def test_the_spec_wins_and_must_agree_with_the_artifact(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump(_numeric(), path)
    spec = {"inputs": [{"name": "amount", "type": "float"}, {"name": "age", "type": "int"}]}
    assert for_model(spec, path) == declared(spec)
    assert declared(spec) == {
        "source": "spec",
        "columns": [
            {"name": "amount", "type": "float", "nullable": False},
            {"name": "age", "type": "int", "nullable": False},
        ],
    }
    swapped = {"inputs": list(reversed(spec["inputs"]))}
    with pytest.raises(SchemaConflict, match=r"declares \[age, amount\], but the artifact was"):
        for_model(swapped, path)
    positional = {"source": "sklearn", "columns": _cols([None, None], "float", False)}
    three = declared({"inputs": [{"name": n, "type": "float"} for n in ("a", "b", "c")]})
    assert three is not None
    assert conflict(three, positional) == "inputs: declares 3 columns, but the artifact takes 2"
    assert conflict(three, None) is None
    assert for_model({}, None) is None


# -- what a plan says --------------------------------------------------------------------------
def _named(*columns: tuple[str, str, bool]) -> dict[str, Any]:
    return {"source": "sklearn", "columns": [_col(*c) for c in columns]}


def _col(name: Any, type_: str, nullable: bool = False) -> dict[str, Any]:
    return {"name": name, "type": type_, "nullable": nullable}


B = "input schema changed (breaking for callers)"


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        (None, _named(("a", "float", False)), []),
        (_named(("a", "float", False)), None, []),
        (_named(("a", "float", False)), _named(("a", "float", False)), []),
        (
            _named(("a", "float", False), ("b", "float", False)),
            _named(("a", "float", False), ("c", "float", False)),
            [f"{B}: column 'b' removed", f"{B}: column 'c' added"],
        ),
        (
            _named(("z", "float", False)),
            _named(("z", "int", False)),
            [f"{B}: type of column 'z' float -> int"],
        ),
        (
            _named(("z", "float", True)),
            _named(("z", "float", False)),
            [f"{B}: column 'z' no longer takes nulls"],
        ),
        (
            _named(("z", "float", False)),
            _named(("z", "float", True)),
            ["input schema changed: column 'z' now takes nulls"],
        ),
        (
            _named(("a", "float", False), ("b", "float", False)),
            _named(("b", "float", False), ("a", "float", False)),
            [
                f"{B}: column order a, b -> b, a (callers who send rows by position, without "
                "names, get other answers)"
            ],
        ),
        (
            {"columns": [_col(None, "float")] * 3},
            {"columns": [_col(None, "float")] * 2},
            [f"{B}: 3 columns by position -> 2"],
        ),
        (
            {"columns": [_col(None, "float"), _col(None, "float")]},
            {"columns": [_col(None, "float"), _col(None, "string")]},
            [f"{B}: type of column #1 float -> string"],
        ),
        (
            {"columns": [_col(None, "float")] * 2},
            _named(("a", "float", False), ("b", "float", False)),
            [
                f"{B}: the model now takes named columns (a, b; it took 2 by position): "
                "requests that send other names get 400"
            ],
        ),
        (
            _named(("a", "float", False)),
            {"columns": [_col(None, "float")]},
            [
                f"{B}: the model no longer takes named columns (it takes 1 by position; it "
                "took a): requests that send names get 400"
            ],
        ),
    ],
)
def test_schema_changes_are_said_for_the_reviewer(old: Any, new: Any, said: list[str]) -> None:
    assert changes(old, new) == said


# -- requests against a schema -------------------------------------------------------------------
F, N, BOOL, S = ColumnType.FLOAT, ColumnType.INT, ColumnType.BOOL, ColumnType.STRING
TYPED = InputSchema(
    (Column("x", F, False), Column("n", N, True), Column("ok", BOOL, False), Column("s", S, False)),
    "spec",
)


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ({"x": 1.5, "n": 2, "ok": True, "s": "a"}, None),
        ({"x": 1, "n": 2.0, "ok": False, "s": ""}, None),  # an int is a float; 2.0 a whole number
        ({"x": 1.5, "n": None, "ok": True, "s": "a"}, None),  # n is nullable
        (
            {"x": None, "n": 1, "ok": True, "s": "a"},
            "column 'x' takes no nulls, but row 0 has null",
        ),
        (
            {"x": "1", "n": 1, "ok": True, "s": "a"},
            "column 'x' must be a number, but row 0 has string '1'",
        ),
        (
            {"x": True, "n": 1, "ok": True, "s": "a"},
            "column 'x' must be a number, but row 0 has boolean True",
        ),
        (
            {"x": 1.0, "n": 1.5, "ok": True, "s": "a"},
            "column 'n' must be a whole number, but row 0 has number 1.5",
        ),
        (
            {"x": 1.0, "n": 1, "ok": 1, "s": "a"},
            "column 'ok' must be a boolean (true or false), but row 0 has number 1",
        ),
        (
            {"x": 1.0, "n": 1, "ok": True, "s": 7},
            "column 's' must be a string, but row 0 has number 7",
        ),
    ],
)
def test_values_must_fit_their_columns(row: dict[str, Any], error: str | None) -> None:
    frame = parse({"dataframe_records": [row]})
    if error is None:
        columns, rows = checked(frame, TYPED)
        assert columns == ["x", "n", "ok", "s"] and rows == [[row[c] for c in columns]]
    else:
        with pytest.raises(InputError, match=re_escape(error)):
            checked(frame, TYPED)


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


POSITIONAL = InputSchema((Column(None, F, False), Column(None, F, False)), "sklearn")


@pytest.mark.parametrize(
    ("body", "schema", "result"),
    [
        ({"instances": [[1, 2]]}, POSITIONAL, (None, [[1, 2]])),
        ({"instances": [[1, 2, 3]]}, POSITIONAL, "rows have 3 values, but the model takes 2"),
        ({"dataframe_records": [{"a": 1, "b": 2}]}, POSITIONAL, "takes its 2 columns by position"),
        ({"dataframe_records": [{"b": 2, "a": 1}]}, None, (["b", "a"], [[2, 1]])),
        ({"instances": [[1, 2]]}, InputSchema((), "mlflow"), (None, [[1, 2]])),
    ],
)
def test_names_and_positions(body: Any, schema: Any, result: Any) -> None:
    frame = parse(body)
    if isinstance(result, str):
        with pytest.raises(InputError, match=re_escape(result)):
            align(frame, schema)
    else:
        assert align(frame, schema) == result


def test_csv_cells_are_read_by_their_columns_types() -> None:
    body = b"s,x,n,ok\n02139,1.5,3,true\n,2,,0\n"
    doc = parse_csv(body)
    assert isinstance(doc, CsvDocument)
    schema = InputSchema(
        (
            Column("x", F, False),
            Column("n", N, True),
            Column("ok", BOOL, False),
            Column("s", S, True),
        ),
        "spec",
    )
    columns, rows = checked(parse(doc), schema)
    assert columns == ["x", "n", "ok", "s"]
    assert rows == [[1.5, 3, True, "02139"], [2.0, None, False, None]]  # "02139" stays text
    untyped = checked(parse(parse_csv(b"a,b,c\n1,2.5,yes\n")), None)
    assert untyped == (["a", "b", "c"], [[1, 2.5, "yes"]])  # guessed, as pandas would
    for bad, said in [
        (b"", "the CSV body is empty"),
        (b"a,a\n1,2\n", "the CSV header names column 'a' twice"),
        (b"a,b\n1\n", "CSV line 2 (data row 0) has 1 value, but the header names 2 columns (a, b)"),
        (b"a,b\n", "csv holds no rows"),
        (b"\xff\xfe", "the CSV body is not UTF-8 text"),
    ]:
        with pytest.raises(InputError, match=re_escape(said)):
            parse(parse_csv(bad))
    with pytest.raises(
        InputError, match=re_escape("column 'n' must be a whole number, but row 0 has '1.5'")
    ):
        checked(parse(parse_csv(b"x,n,ok,s\n1,1.5,true,a\n")), schema)


# -- digests ------------------------------------------------------------------------------------
def test_the_gateways_digest_is_the_registrys_fingerprint(tmp_path: Path) -> None:
    """The gateway checks bytes against what a registry recorded: the same definition."""
    from providers.files import FileHasher

    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "MLmodel").write_text("flavors: {}\n")
    (tmp_path / "d" / "sub" / "model.pkl").write_bytes(b"\x80\x05weights")
    (tmp_path / "f.joblib").write_bytes(b"some model bytes")
    hasher = FileHasher()
    for path in (tmp_path / "d", tmp_path / "f.joblib"):
        expected = hasher.digest(path)
        assert digest_path(path) == expected
        verified = read_verified(path, expected)
        assert verified.is_dir == path.is_dir()
    assert read_verified(tmp_path / "f.joblib", hasher.digest(tmp_path / "f.joblib")).one() == (
        b"some model bytes"
    )
    with pytest.raises(Mismatch) as wrong:
        read_verified(tmp_path / "f.joblib", "sha256:" + "0" * 64)
    assert wrong.value.got == hasher.digest(tmp_path / "f.joblib")
    gated = hasher.digest(tmp_path / "d")
    (tmp_path / "d" / "sub" / "model.pkl").write_bytes(b"\x80\x05other")  # one file swapped
    with pytest.raises(Mismatch):
        read_verified(tmp_path / "d", gated)
    (tmp_path / "d" / "sub" / "model.pkl").write_bytes(b"\x80\x05weights")
    (tmp_path / "d" / "extra.py").write_text("import os\n")  # a file added
    with pytest.raises(Mismatch):
        read_verified(tmp_path / "d", gated)
