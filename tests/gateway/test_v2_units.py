"""``gateway.tensors``: each branch of reading V2 tensors into a model's columns, and back."""

from __future__ import annotations

import struct
from typing import Any

import orjson
import pytest

from gateway.inputs import Column, ColumnType, InputSchema
from gateway.tensors import (
    InferRequest,
    TensorError,
    datatype_of,
    encode,
    input_metadata,
    outputs,
    parse_request,
    to_doc,
)

NAMED = InputSchema(
    (
        Column("amount", ColumnType.FLOAT, False),
        Column("age", ColumnType.INT, False),
        Column("vip", ColumnType.BOOL, False),
        Column("city", ColumnType.STRING, False),
    ),
    "spec",
)
FLOATS = InputSchema(tuple(Column(n, ColumnType.FLOAT, False) for n in "abc"), "sklearn")
POSITIONAL = InputSchema(tuple(Column(None, ColumnType.FLOAT, False) for _ in range(3)), "sklearn")


def t(name: str, datatype: str, shape: list[int], data: Any) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


def request(*inputs: dict[str, Any], **extra: Any) -> InferRequest:
    return parse_request(orjson.dumps({"inputs": list(inputs), **extra}))


def named(**over: dict[str, Any]) -> list[dict[str, Any]]:
    tensors = {
        "amount": t("amount", "FP64", [2], [1.5, 2]),
        "age": t("age", "INT64", [2], [30, 40]),
        "vip": t("vip", "BOOL", [2], [True, False]),
        "city": t("city", "BYTES", [2], ["Oslo", "Rome"]),
    }
    tensors.update(over)
    return list(tensors.values())


# -- to_doc: the columns -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("tensors", "schema", "doc"),
    [
        (  # one tensor per column, put in the model's order
            list(reversed(named())),
            NAMED,
            {
                "inputs": {
                    "amount": [1.5, 2],
                    "age": [30, 40],
                    "vip": [True, False],
                    "city": ["Oslo", "Rome"],
                }
            },
        ),
        (  # [n, 1] columns; an INT tensor for a float column
            [
                t("a", "INT32", [2, 1], [1, 2]),
                t("b", "FP32", [2], [3, 4]),
                t("c", "FP64", [2], [5, 6]),
            ],
            FLOATS,
            {"inputs": {"a": [1, 2], "b": [3, 4], "c": [5, 6]}},
        ),
        (  # one 2-D tensor, any name: columns by the model's order
            [t("input-0", "FP64", [2, 3], [1, 2, 3, 4, 5, 6])],
            FLOATS,
            {"inputs": {"a": [1, 4], "b": [2, 5], "c": [3, 6]}},
        ),
        (  # nested data
            [t("x", "FP64", [2, 3], [[1, 2, 3], [4, 5, 6]])],
            FLOATS,
            {"inputs": {"a": [1, 4], "b": [2, 5], "c": [3, 6]}},
        ),
        (  # a positional model: rows
            [t("input", "FP64", [2, 3], [1, 2, 3, 4, 5, 6])],
            POSITIONAL,
            {"inputs": [[1, 2, 3], [4, 5, 6]]},
        ),
        (  # no schema: columns as sent, or rows
            [t("p", "FP64", [1], [1]), t("q", "BYTES", [1], ["x"])],
            None,
            {"inputs": {"p": [1], "q": ["x"]}},
        ),
        ([t("m", "FP64", [1, 2], [1, 2])], None, {"inputs": [[1, 2]]}),
    ],
)
def test_tensors_become_the_models_columns(
    tensors: list[dict[str, Any]], schema: InputSchema | None, doc: dict[str, Any]
) -> None:
    got = to_doc(request(*tensors), schema)
    assert got == doc
    assert list(got["inputs"]) == list(doc["inputs"])  # in the model's order, as a record keeps it


@pytest.mark.parametrize(
    ("tensors", "schema", "message"),
    [
        (
            named(age=t("age", "FP64", [2], [1.0, 2.0])),
            NAMED,
            "'age' is FP64, but column 'age' takes int",
        ),
        (
            named(vip=t("vip", "INT8", [2], [1, 0])),
            NAMED,
            "'vip' is INT8, but column 'vip' takes bool",
        ),
        (
            named(city=t("city", "FP64", [2], [1, 2])),
            NAMED,
            "'city' is FP64, but column 'city' takes string",
        ),
        (
            named(amount=t("amount", "BYTES", [2], ["1", "2"])),
            NAMED,
            "'amount' is BYTES, but column 'amount' takes float",
        ),
        (
            [*named(), t("zip", "BYTES", [2], ["a", "b"])],
            NAMED,
            "input tensor 'zip' is not an input of this model (its inputs: amount, age, vip, city)",
        ),
        (named()[:2], NAMED, "input tensors 'vip', 'city' missing"),
        (
            named(age=t("age", "INT64", [1], [3])),
            NAMED,
            "input tensor 'age' has 1 rows, but 'amount' has 2",
        ),
        (
            named(age=t("age", "INT64", [1, 2], [3, 4])),
            NAMED,
            "'age' has shape [1, 2]: a column is [n] or [n, 1]",
        ),
        (
            [t("x", "FP64", [1, 4], [1, 2, 3, 4])],
            FLOATS,
            "input tensor 'x' has shape [1, 4]: this model takes 3 columns",
        ),
        (
            [t("x", "BOOL", [1, 3], [True, True, False])],
            FLOATS,
            "'x' is BOOL, but column 'a' takes float",
        ),
        (
            [t("a", "FP64", [1], [1])],
            POSITIONAL,
            "takes its 3 columns by position: send one 2-D tensor of shape [n, 3]",
        ),
    ],
)
def test_tensors_that_do_not_fit_are_named(
    tensors: list[dict[str, Any]], schema: InputSchema, message: str
) -> None:
    with pytest.raises(TensorError, match=None) as caught:
        to_doc(request(*tensors), schema)
    assert message in str(caught.value)


# -- parse_request: the wire -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[1]", "must be a JSON object"),
        (b"{nope", "malformed JSON"),
        (b'{"inputs": []}', "inputs must be a non-empty list"),
        (b'{"id": 3, "inputs": [1]}', "id must be a string"),
        (b'{"inputs": [1]}', "inputs[0] must be a tensor object"),
        (
            b'{"inputs": [{"datatype": "FP64", "shape": [1], "data": [1]}]}',
            "inputs[0] needs a name",
        ),
        (
            orjson.dumps({"inputs": [t("a", "FP128", [1], [1])]}),
            "'a': datatype 'FP128' is not taken",
        ),
        (
            orjson.dumps({"inputs": [t("a", "FP64", [-1], [1])]}),
            "'a': shape must be a list of sizes",
        ),
        (
            orjson.dumps({"inputs": [t("a", "FP64", [2], [1])]}),
            "'a': shape [2] holds 2 values, but data has 1",
        ),
        (
            orjson.dumps({"inputs": [t("a", "FP64", [2, 2], [[1, 2], [3]])]}),
            "'a': nested data does not have shape [2, 2]",
        ),
        (
            orjson.dumps({"inputs": [t("a", "FP64", [2], [1, "x"])]}),
            "'a' is FP64, but data[1] is \"x\"",
        ),
        (orjson.dumps({"inputs": [t("a", "FP64", [1], [None])]}), "data[0] is null"),
        (orjson.dumps({"inputs": [t("a", "INT8", [1], [300])]}), "an integer in INT8"),
        (orjson.dumps({"inputs": [t("a", "INT64", [1], [True])]}), "data[0] is true"),
        (orjson.dumps({"inputs": [t("a", "BOOL", [1], [1])]}), "true or false"),
        (orjson.dumps({"inputs": [t("a", "BYTES", [1], [1])]}), "a string"),
        (
            orjson.dumps({"inputs": [{"name": "a", "datatype": "FP64", "shape": [1]}]}),
            "'a' has no data",
        ),
        (
            orjson.dumps({"inputs": [t("a", "FP64", [1], [1]), t("a", "FP64", [1], [2])]}),
            "'a' is sent twice",
        ),
        (
            orjson.dumps({"inputs": [t("a", "FP64", [1], [1])], "outputs": [{}]}),
            "outputs[0] must be an object with a name",
        ),
    ],
)
def test_malformed_requests_are_named(body: bytes, message: str) -> None:
    with pytest.raises(TensorError) as caught:
        parse_request(body)
    assert message in str(caught.value)


def _binary(tensors: list[tuple[str, str, list[int], bytes]]) -> tuple[bytes, str]:
    head = orjson.dumps(
        {
            "inputs": [
                {"name": n, "datatype": d, "shape": s, "parameters": {"binary_data_size": len(b)}}
                for n, d, s, b in tensors
            ]
        }
    )
    return head + b"".join(b for *_, b in tensors), str(len(head))


def test_binary_tensors_are_read_little_endian() -> None:
    strings = b"".join(struct.pack("<I", len(s)) + s for s in (b"Oslo", "Zürich".encode()))
    body, length = _binary(
        [
            ("f", "FP64", [2], struct.pack("<2d", 1.5, -2.0)),
            ("i", "INT32", [2], struct.pack("<2i", 7, -8)),
            ("b", "BOOL", [2], bytes([1, 0])),
            ("s", "BYTES", [2], strings),
        ]
    )
    got = parse_request(body, length)
    assert [(x.name, x.data) for x in got.inputs] == [
        ("f", [1.5, -2.0]),
        ("i", [7, -8]),
        ("b", [True, False]),
        ("s", ["Oslo", "Zürich"]),
    ]


@pytest.mark.parametrize(
    ("tensors", "length", "message"),
    [
        (
            [("f", "FP64", [2], struct.pack("<d", 1.0))],
            None,
            "2 FP64 values take 16 bytes, but binary_data_size is 8",
        ),
        ([("s", "BYTES", [2], struct.pack("<I", 2) + b"ab")], None, "binary BYTES data ends early"),
        ([("s", "BYTES", [1], struct.pack("<I", 1) + b"\xff")], None, "a BYTES value is not UTF-8"),
        ([("f", "FP64", [1], struct.pack("<d", 1.0))], "99999", "is not a length within the body"),
    ],
)
def test_bad_binary_tensors_are_named(
    tensors: list[tuple[str, str, list[int], bytes]], length: str | None, message: str
) -> None:
    body, real = _binary(tensors)
    with pytest.raises(TensorError) as caught:
        parse_request(body, length or real)
    assert message in str(caught.value)


def test_bytes_no_input_accounts_for_are_refused() -> None:
    body, length = _binary([("f", "FP64", [1], struct.pack("<d", 1.0))])
    with pytest.raises(TensorError, match="8 bytes after the tensors"):
        parse_request(body + b"\0" * 8, length)


# -- metadata and outputs --------------------------------------------------------------------------
def test_metadata_lists_columns_or_one_2d_input() -> None:
    assert input_metadata(NAMED) == [
        {"name": "amount", "datatype": "FP64", "shape": [-1]},
        {"name": "age", "datatype": "INT64", "shape": [-1]},
        {"name": "vip", "datatype": "BOOL", "shape": [-1]},
        {"name": "city", "datatype": "BYTES", "shape": [-1]},
    ]
    assert input_metadata(POSITIONAL) == [{"name": "input", "datatype": "FP64", "shape": [-1, 3]}]
    assert input_metadata(None) == []


@pytest.mark.parametrize(
    ("values", "datatype"),
    [
        ([True, False], "BOOL"),
        ([1, 2], "INT64"),
        ([1, 2.5], "FP64"),
        ([1.0, None], "FP64"),
        (["a", "b"], "BYTES"),
        ([1, "a"], "BYTES"),
        ([], "FP64"),
    ],
)
def test_the_datatype_of_predictions(values: list[Any], datatype: str) -> None:
    assert datatype_of(values) == datatype


def test_outputs_are_one_predict_tensor_or_one_per_record_field() -> None:
    plain = request(t("a", "FP64", [1], [1]))
    assert outputs([0.5, 1.5], plain) == [
        {"name": "predict", "shape": [2], "datatype": "FP64", "data": [0.5, 1.5]}
    ]
    assert outputs([[0.1, 0.9], [0.7, 0.3]], plain) == [
        {"name": "predict", "shape": [2, 2], "datatype": "FP64", "data": [0.1, 0.9, 0.7, 0.3]}
    ]
    records = [{"label": "cat", "score": 0.9}, {"label": "dog", "score": 0.6}]
    assert outputs(records, plain) == [
        {"name": "label", "shape": [2], "datatype": "BYTES", "data": ["cat", "dog"]},
        {"name": "score", "shape": [2], "datatype": "FP64", "data": [0.9, 0.6]},
    ]
    asked = request(t("a", "FP64", [1], [1]), outputs=[{"name": "score"}])
    assert [o["name"] for o in outputs(records, asked)] == ["score"]
    wrong = request(t("a", "FP64", [1], [1]), outputs=[{"name": "proba"}])
    with pytest.raises(TensorError, match="output 'proba' is not an output of this model"):
        outputs([1.0], wrong)


def test_binary_outputs_when_asked() -> None:
    asked = request(t("a", "FP64", [1], [1]), parameters={"binary_data_output": True})
    answer = {"model_name": "m", "outputs": outputs([1.5, 2.5], asked)}
    body, length = encode(answer, asked)
    assert length is not None
    head = orjson.loads(body[:length])
    assert head["outputs"][0]["parameters"] == {"binary_data_size": 16}
    assert "data" not in head["outputs"][0]
    assert struct.unpack("<2d", body[length:]) == (1.5, 2.5)
    as_json = request(t("a", "FP64", [1], [1]))
    body, length = encode({"outputs": outputs([1.5], as_json)}, as_json)
    assert length is None and orjson.loads(body)["outputs"][0]["data"] == [1.5]
