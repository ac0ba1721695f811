"""KServe's Open Inference Protocol (V2) tensors ↔ a model endpoint's columns (pure Python).

A request's tensors become MLflow's columnar scoring document, ``{"inputs": {column:
[values]}}`` — the body ``POST …/invocations`` takes too, so the rest of the model path
(``checked``, the model, the log record) is the one invocations use. Two ways to send a
model's columns, both read the same way by whichever client sends them:

* **one tensor per column**: the tensor's ``name`` is the column's, its shape ``[n]`` or
  ``[n, 1]``; every column of the model is sent, each once, all with the same ``n``
  (what ``GET /v2/models/{name}`` lists for a model with named columns);
* **one 2-D tensor** ``[n, k]``, any name that is not a column's (KServe's sklearn server
  and MLServer read ``input-0`` so): ``k`` is the model's width and the columns follow the
  model's order (what the metadata lists for a model that takes its columns by position).

``data`` is row-major, flat or nested (the spec allows both); its length must be the
shape's product. A tensor's ``datatype`` must fit its column's type (``COMPATIBLE``): a
float column takes any number datatype, an int column the integer ones, a bool column
``BOOL``, a string column ``BYTES``; an untyped column anything. Every error is a
``TensorError`` (an ``InputError``: a 400) whose one line names the tensor.

Triton's binary tensor extension is supported both ways (``tritonclient`` uses it by
default): a request whose ``Inference-Header-Content-Length`` header says where its JSON
ends carries each tensor with a ``binary_data_size`` parameter as raw little-endian bytes
after it, in the order of ``inputs``; outputs are sent the same way when the request asks
(``binary_data_output``, or an output's ``binary_data``).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.inputs import ColumnType, InputError, InputSchema

#: struct format characters of the fixed-size datatypes (little-endian on the wire)
_FORMATS = {
    "BOOL": "?",
    "INT8": "b",
    "INT16": "h",
    "INT32": "i",
    "INT64": "q",
    "UINT8": "B",
    "UINT16": "H",
    "UINT32": "I",
    "UINT64": "Q",
    "FP16": "e",
    "FP32": "f",
    "FP64": "d",
}
INTEGERS = frozenset(k for k in _FORMATS if "INT" in k)
FLOATS = frozenset({"FP16", "FP32", "FP64"})
DATATYPES = frozenset({*_FORMATS, "BYTES"})
#: the datatypes each column type takes (None: an untyped column takes any)
COMPATIBLE: dict[ColumnType | None, frozenset[str]] = {
    ColumnType.FLOAT: FLOATS | INTEGERS,
    ColumnType.INT: INTEGERS,
    ColumnType.BOOL: frozenset({"BOOL"}),
    ColumnType.STRING: frozenset({"BYTES"}),
    None: DATATYPES,
}
#: the datatype the metadata names for a column type (BYTES for an untyped column: the one
#: datatype any value can be written in)
DATATYPE_OF: dict[ColumnType | None, str] = {
    ColumnType.FLOAT: "FP64",
    ColumnType.INT: "INT64",
    ColumnType.BOOL: "BOOL",
    ColumnType.STRING: "BYTES",
    None: "BYTES",
}
#: the output tensor of a model whose predictions are no records
PREDICT = "predict"


class TensorError(InputError):
    """A V2 request the model cannot take; one line naming the tensor (a 400)."""


@dataclass(frozen=True, slots=True)
class Tensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: list[Any]  # flat, row-major


@dataclass(frozen=True, slots=True)
class InferRequest:
    id: str | None
    inputs: tuple[Tensor, ...]
    #: the outputs asked for by name (None: all), and whether each is wanted as binary
    outputs: dict[str, bool] | None
    binary_output: bool


# -- decoding a request ----------------------------------------------------------------------------
def parse_request(body: bytes, header_length: str | None = None) -> InferRequest:
    """The request's tensors: JSON, or JSON then binary tensors when ``header_length`` (the
    ``Inference-Header-Content-Length`` header) is given."""
    raw = b""
    if header_length is not None:
        if not header_length.strip().isdigit() or int(header_length) > len(body):
            raise TensorError(
                f"Inference-Header-Content-Length {header_length!r} is not a length within "
                f"the body ({len(body)} bytes)"
            )
        split = int(header_length)
        body, raw = body[:split], body[split:]
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise TensorError(f"malformed JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise TensorError("the body must be a JSON object with an inputs list")
    rid = doc.get("id")
    if rid is not None and not isinstance(rid, str):
        raise TensorError("id must be a string")
    params = _object(doc.get("parameters"), "parameters")
    items = doc.get("inputs")
    if not isinstance(items, list) or not items:
        raise TensorError("inputs must be a non-empty list of tensors")
    inputs, offset = [], 0
    for i, item in enumerate(items):
        tensor, used = _tensor(item, i, raw, offset)
        inputs.append(tensor)
        offset += used
    if offset != len(raw):
        raise TensorError(
            f"the body holds {len(raw) - offset} bytes after the tensors that no input's "
            "binary_data_size accounts for"
        )
    names = [t.name for t in inputs]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        raise TensorError(f"input tensor {twice!r} is sent twice")
    outputs = _outputs(doc.get("outputs"))
    return InferRequest(rid, tuple(inputs), outputs, params.get("binary_data_output") is True)


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TensorError(f"{where} must be an object")
    return value


def _outputs(value: Any) -> dict[str, bool] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise TensorError("outputs must be a list of {name} objects")
    wanted: dict[str, bool] = {}
    for i, item in enumerate(value):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            raise TensorError(f"outputs[{i}] must be an object with a name")
        wanted[name] = (
            _object(item.get("parameters"), f"outputs[{i}].parameters").get("binary_data") is True
        )
    return wanted


def _tensor(item: Any, i: int, raw: bytes, offset: int) -> tuple[Tensor, int]:
    """Input ``i``, and how many bytes of the binary part it took."""
    if not isinstance(item, dict):
        raise TensorError(f"inputs[{i}] must be a tensor object (name, shape, datatype, data)")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise TensorError(f"inputs[{i}] needs a name")
    datatype = item.get("datatype")
    if datatype not in DATATYPES:
        known = ", ".join(sorted(DATATYPES))
        raise TensorError(
            f"input tensor {name!r}: datatype {datatype!r} is not taken here ({known})"
        )
    shape = item.get("shape")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise TensorError(f"input tensor {name!r}: shape must be a list of sizes (>= 0)")
    count = math.prod(shape)
    size = _object(item.get("parameters"), f"input tensor {name!r} parameters").get(
        "binary_data_size"
    )
    if size is not None:
        if "data" in item:
            raise TensorError(f"input tensor {name!r} has both data and binary_data_size")
        if not isinstance(size, int) or size < 0 or offset + size > len(raw):
            raise TensorError(
                f"input tensor {name!r}: binary_data_size {size!r} is past the body's end"
            )
        data = _from_bytes(name, datatype, raw[offset : offset + size], count)
        return Tensor(name, datatype, tuple(shape), data), size
    if "data" not in item:
        raise TensorError(f"input tensor {name!r} has no data")
    data = _flat(name, item["data"], shape)
    if len(data) != count:
        raise TensorError(
            f"input tensor {name!r}: shape {shape} holds {count} values, but data has {len(data)}"
        )
    _check_values(name, datatype, data)
    return Tensor(name, datatype, tuple(shape), data), 0


def _flat(name: str, data: Any, shape: Sequence[int]) -> list[Any]:
    """``data`` flat: as sent when flat, else checked against ``shape`` level by level."""
    if not isinstance(data, list):
        raise TensorError(f"input tensor {name!r}: data must be a list")
    if not any(isinstance(v, list) for v in data):
        return data
    out: list[Any] = []

    def walk(value: Any, depth: int) -> None:
        if depth == len(shape):
            if isinstance(value, list):
                raise TensorError(f"input tensor {name!r}: data is nested deeper than {shape}")
            out.append(value)
            return
        if not isinstance(value, list) or len(value) != shape[depth]:
            raise TensorError(
                f"input tensor {name!r}: nested data does not have shape {list(shape)}"
            )
        for v in value:
            walk(v, depth + 1)

    walk(data, 0)
    return out


_RANGES = {
    t: ((-(1 << (b - 1)), (1 << (b - 1)) - 1) if t[0] == "I" else (0, (1 << b) - 1))
    for t, b in (
        ("INT8", 8),
        ("INT16", 16),
        ("INT32", 32),
        ("INT64", 64),
        ("UINT8", 8),
        ("UINT16", 16),
        ("UINT32", 32),
        ("UINT64", 64),
    )
}


def _check_values(name: str, datatype: str, data: list[Any]) -> None:
    """Every JSON value is one of ``datatype``'s (the OIP JSON forms: BOOL true/false,
    integers, numbers, BYTES strings)."""
    if datatype == "BOOL":
        ok, what = (lambda v: v.__class__ is bool), "true or false"
    elif datatype in INTEGERS:
        low, high = _RANGES[datatype]
        ok, what = (lambda v: v.__class__ is int and low <= v <= high), f"an integer in {datatype}"
    elif datatype in FLOATS:
        ok, what = (lambda v: v.__class__ is float or v.__class__ is int), "a number"
    else:
        ok, what = (lambda v: v.__class__ is str), "a string"
    for i, v in enumerate(data):
        if not ok(v):
            shown = "null" if v is None else orjson.dumps(v).decode()[:40]
            raise TensorError(
                f"input tensor {name!r} is {datatype}, but data[{i}] is {shown}: each value "
                f"must be {what}"
            )


def _from_bytes(name: str, datatype: str, raw: bytes, count: int) -> list[Any]:
    if datatype == "BYTES":
        return _strings(name, raw, count)
    fmt = _FORMATS[datatype]
    need = struct.calcsize(fmt) * count
    if len(raw) != need:
        raise TensorError(
            f"input tensor {name!r}: {count} {datatype} values take {need} bytes, "
            f"but binary_data_size is {len(raw)}"
        )
    return list(struct.unpack(f"<{count}{fmt}", raw))


def _strings(name: str, raw: bytes, count: int) -> list[Any]:
    """BYTES in binary: each element a 4-byte little-endian length, then its bytes (UTF-8)."""
    out, at = [], 0
    for _ in range(count):
        if at + 4 > len(raw):
            raise TensorError(f"input tensor {name!r}: binary BYTES data ends early")
        (n,) = struct.unpack_from("<I", raw, at)
        at += 4
        if at + n > len(raw):
            raise TensorError(f"input tensor {name!r}: binary BYTES data ends early")
        try:
            out.append(raw[at : at + n].decode("utf-8"))
        except UnicodeDecodeError:
            raise TensorError(f"input tensor {name!r}: a BYTES value is not UTF-8 text") from None
        at += n
    if at != len(raw):
        raise TensorError(f"input tensor {name!r}: binary BYTES data holds more than its shape")
    return out


# -- tensors → the model's columns -----------------------------------------------------------------
def to_doc(request: InferRequest, schema: InputSchema | None) -> dict[str, Any]:
    """MLflow's scoring document of the request: ``{"inputs": {column: values}}`` (columnar)
    where the columns have names, ``{"inputs": [[row], ...]}`` for a model that takes them by
    position. ``TensorError`` naming the tensor that does not fit."""
    names = schema.names if schema is not None and schema.columns else None
    single = request.inputs[0] if len(request.inputs) == 1 else None
    if single is not None and len(single.shape) == 2 and single.name not in (names or ()):
        return _frame(single, schema, names)
    if schema is not None and schema.columns and names is None:
        raise TensorError(
            f"input tensor {request.inputs[0].name!r}: this model takes its {schema.width} "
            f"columns by position: send one 2-D tensor of shape [n, {schema.width}]"
        )
    rows: int | None = None
    columns: dict[str, list[Any]] = {}
    kinds = {c.name: c.type for c in schema.columns} if schema is not None else {}
    for t in request.inputs:
        if names is not None and t.name not in names:
            raise TensorError(
                f"input tensor {t.name!r} is not an input of this model (its inputs: "
                f"{', '.join(names)})"
            )
        if len(t.shape) > 2 or (len(t.shape) == 2 and t.shape[1] != 1):
            raise TensorError(
                f"input tensor {t.name!r} has shape {list(t.shape)}: a column is [n] or [n, 1]"
            )
        if rows is None:
            rows = t.shape[0]
        elif t.shape[0] != rows:
            first = request.inputs[0].name
            raise TensorError(
                f"input tensor {t.name!r} has {t.shape[0]} rows, but {first!r} has {rows}"
            )
        _fits(t, kinds.get(t.name), repr(t.name))
        columns[t.name] = t.data
    if names is not None:
        missing = [n for n in names if n not in columns]
        if missing:
            raise TensorError(
                f"input tensor{'s' if len(missing) > 1 else ''} "
                f"{', '.join(map(repr, missing))} missing (this model's inputs: {', '.join(names)})"
            )
        columns = {n: columns[n] for n in names}
    return {"inputs": columns}


def _frame(t: Tensor, schema: InputSchema | None, names: tuple[str, ...] | None) -> dict[str, Any]:
    n, k = t.shape
    if schema is not None and schema.columns:
        if k != schema.width:
            raise TensorError(
                f"input tensor {t.name!r} has shape {list(t.shape)}: this model takes "
                f"{schema.width} columns ([n, {schema.width}])"
            )
        for c in schema.columns:
            _fits(t, c.type, repr(c.name) if c.name is not None else "")
    rows = [t.data[r * k : (r + 1) * k] for r in range(n)]
    if names is None:
        return {"inputs": rows}
    return {"inputs": {name: [row[i] for row in rows] for i, name in enumerate(names)}}


def _fits(t: Tensor, kind: ColumnType | None, column: str) -> None:
    if t.datatype not in COMPATIBLE[kind]:
        assert kind is not None
        which = f"column {column}" if column else "its column"
        raise TensorError(
            f"input tensor {t.name!r} is {t.datatype}, but {which} takes {kind.value} "
            f"({', '.join(sorted(COMPATIBLE[kind]))})"
        )


# -- metadata and outputs --------------------------------------------------------------------------
def input_metadata(schema: InputSchema | None) -> list[dict[str, Any]]:
    """The tensors the metadata lists: one per named column, else one 2-D ``input``."""
    if schema is None or not schema.columns:
        return []
    names = schema.names
    if names is not None:
        return [
            {"name": n, "datatype": DATATYPE_OF[c.type], "shape": [-1]}
            for n, c in zip(names, schema.columns, strict=True)
        ]
    kinds = {c.type for c in schema.columns}
    datatype = DATATYPE_OF[kinds.pop()] if len(kinds) == 1 else "BYTES"
    return [{"name": "input", "datatype": datatype, "shape": [-1, schema.width]}]


def datatype_of(values: Sequence[Any]) -> str:
    """The datatype of a prediction's values (nulls aside): BOOL, INT64, FP64, else BYTES."""
    seen = {v.__class__ for v in values if v is not None}
    if seen == {bool}:
        return "BOOL"
    if seen <= {int}:
        return "INT64" if seen else "FP64"
    if seen <= {int, float}:
        return "FP64"
    return "BYTES"


def outputs(predictions: list[Any], request: InferRequest) -> list[dict[str, Any]]:
    """The answer's output tensors: one per field of record predictions (an MLflow model's
    DataFrame), else one ``predict`` of shape ``[n]`` (or ``[n, k]`` for rows of k values)."""
    n = len(predictions)
    if n and all(isinstance(p, dict) for p in predictions) and _same_keys(predictions):
        named = {k: [p[k] for p in predictions] for k in predictions[0]}
    else:
        named = {PREDICT: predictions}
    wanted = request.outputs
    if wanted is not None:
        unknown = [w for w in wanted if w not in named]
        if unknown:
            raise TensorError(
                f"output {unknown[0]!r} is not an output of this model (its outputs: "
                f"{', '.join(named)})"
            )
        named = {k: named[k] for k in wanted}
    return [_output(name, values, n) for name, values in named.items()]


def _same_keys(rows: list[dict[str, Any]]) -> bool:
    keys = rows[0].keys()
    return all(r.keys() == keys for r in rows)


def _output(name: str, values: list[Any], n: int) -> dict[str, Any]:
    if n and all(isinstance(v, list) for v in values):
        k = len(values[0])
        if all(len(v) == k for v in values) and not any(isinstance(x, list) for x in values[0]):
            flat = [x for v in values for x in v]
            return {"name": name, "shape": [n, k], "datatype": datatype_of(flat), "data": flat}
    if any(isinstance(v, list | dict) for v in values):  # ragged or nested: JSON text each
        data = [orjson.dumps(v).decode() for v in values]
        return {"name": name, "shape": [n], "datatype": "BYTES", "data": data}
    datatype = datatype_of(values)
    if datatype == "BYTES":
        values = [v if isinstance(v, str) else orjson.dumps(v).decode() for v in values]
    return {"name": name, "shape": [n], "datatype": datatype, "data": values}


def encode(answer: dict[str, Any], request: InferRequest) -> tuple[bytes, int | None]:
    """The answer's body, and the length of its JSON part when outputs follow it as binary
    (the ``Inference-Header-Content-Length`` to answer with), else None."""
    raws: list[bytes] = []
    for out in answer["outputs"]:
        wanted = request.outputs
        binary = wanted[out["name"]] if wanted is not None else request.binary_output
        if binary and None not in out["data"]:
            raw = _to_bytes(out["datatype"], out.pop("data"))
            out["parameters"] = {"binary_data_size": len(raw)}
            raws.append(raw)
    head = orjson.dumps(answer)
    if not raws:
        return head, None
    return head + b"".join(raws), len(head)


def _to_bytes(datatype: str, data: list[Any]) -> bytes:
    if datatype == "BYTES":
        parts = []
        for v in data:
            b = v.encode("utf-8")
            parts.append(struct.pack("<I", len(b)) + b)
        return b"".join(parts)
    return struct.pack(f"<{len(data)}{_FORMATS[datatype]}", *data)
