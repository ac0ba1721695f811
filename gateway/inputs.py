"""MLflow scoring-server request bodies → rows of feature values, checked against a model.

The four formats of ``POST /invocations`` (MLflow's ``pyfunc`` scoring server)::

    {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}
    {"dataframe_records": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}
    {"instances": [{"a": 1, "b": 2}, ...]}   or  [[1, 2], ...]   (TF-serving rows)
    {"inputs": {"a": [1, 3], "b": [2, 4]}}   or  [[1, 2], ...]   (TF-serving columns / tensor)

plus an optional ``params`` object; or a ``text/csv`` body with a header row (``parse_csv``).
Pure Python (no pandas): a one-row request costs a few microseconds here. Every error is an
``InputError`` whose one-line message names the format, the row and the column, so that the
gateway answers 400 and never a traceback.

Then the rows meet the model version's recorded input schema (``InputSchema``, ``checked``):
named columns are reordered by name, positional rows checked for width, every value for its
column's type and nullability — all before the model sees anything, so that whatever the
model raises afterwards is the model's failure, not the caller's.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_ALLOWED = frozenset((*FORMATS, "params"))


class InputError(ValueError):
    """A request body the model cannot take; the message is one line for the caller."""


@dataclass(frozen=True, slots=True)
class Frame:
    """Rows of a request: ``columns`` names them (None: by position); ``text``: every cell is
    still CSV text."""

    format: str
    columns: list[str] | None
    rows: list[list[Any]]
    params: dict[str, Any] | None = None
    text: bool = False


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def parse(body: Any) -> Frame:
    """The rows of a scoring request, in the order sent; ``InputError`` if malformed."""
    if isinstance(body, CsvDocument):
        split = body["dataframe_split"]
        if not split["data"]:
            raise InputError("csv holds no rows (only a header)")
        return Frame("csv", list(split["columns"]), [list(r) for r in split["data"]], text=True)
    if not isinstance(body, dict):
        raise InputError(
            f"the body must be a JSON object with one of {', '.join(FORMATS)}, got {_kind(body)}"
        )
    present = [k for k in FORMATS if k in body]
    unknown = sorted(k for k in body if k not in _ALLOWED)
    if unknown:
        raise InputError(
            f"unknown field(s) {', '.join(map(repr, unknown))}: the body takes one of "
            f"{', '.join(FORMATS)} (and optionally params)"
        )
    if len(present) > 1:
        both = ", ".join(present[:-1]) + f" and {present[-1]}"
        raise InputError(
            f"the body carries {len(present)} input formats, {both}: send exactly one "
            "(nothing would say which to take)"
        )
    if not present:
        raise InputError(f"the body needs exactly one of {', '.join(FORMATS)}")
    fmt = present[0]
    params = body.get("params")
    if params is not None and not isinstance(params, dict):
        raise InputError(f"params must be an object, got {_kind(params)}")
    value = body[fmt]
    if fmt == "dataframe_split":
        columns, rows = _split(value)
    elif fmt == "dataframe_records":
        columns, rows = _records(fmt, value)
    elif fmt == "instances":
        columns, rows = _rows(fmt, value)
    else:
        columns, rows = _columnar(value) if isinstance(value, dict) else _rows(fmt, value)
    if not rows:
        raise InputError(f"{fmt} holds no rows")
    return Frame(fmt, columns, rows, params)


def _split(value: Any) -> tuple[list[str] | None, list[list[Any]]]:
    if not isinstance(value, dict):
        raise InputError(
            f"dataframe_split must be an object with columns and data, got {_kind(value)}"
        )
    extra = sorted(set(value) - {"columns", "data", "index"})
    if extra:
        raise InputError(f"dataframe_split: unknown field(s) {', '.join(map(repr, extra))}")
    columns = value.get("columns")
    if columns is not None:
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise InputError("dataframe_split.columns must be a list of column names (strings)")
        _unique("dataframe_split.columns", columns)
    data = value.get("data")
    if not isinstance(data, list):
        raise InputError(f"dataframe_split.data must be a list of rows, got {_kind(data)}")
    rows: list[list[Any]] = []
    width = len(columns) if columns is not None else None
    for i, row in enumerate(data):
        if not isinstance(row, list):
            row = [row]  # a one-column frame may be sent as a list of values
        if width is None:
            width = len(row)
        if len(row) != width:
            what = f"columns names {width}" if columns is not None else f"row 0 has {width}"
            raise InputError(f"dataframe_split.data row {i} has {len(row)} values, but {what}")
        rows.append(row)
    return columns, rows


def _records(where: str, value: Any) -> tuple[list[str], list[list[Any]]]:
    if not isinstance(value, list):
        raise InputError(f"{where} must be a list of objects (one per row), got {_kind(value)}")
    if not value:
        return [], []
    first = value[0]
    if not isinstance(first, dict):
        raise InputError(f"{where}[0] must be an object of column values, got {_kind(first)}")
    columns = list(first)
    names = set(columns)
    rows: list[list[Any]] = []
    for i, rec in enumerate(value):
        if not isinstance(rec, dict):
            raise InputError(f"{where}[{i}] must be an object of column values, got {_kind(rec)}")
        if rec.keys() != names:
            missing = [c for c in columns if c not in rec]
            if missing:
                raise InputError(f"{where}[{i}] lacks column {missing[0]!r} (row 0 has it)")
            extra = next(c for c in rec if c not in names)
            raise InputError(f"{where}[{i}] has column {extra!r} that row 0 lacks")
        rows.append([rec[c] for c in columns])
    return columns, rows


def _rows(where: str, value: Any) -> tuple[list[str] | None, list[list[Any]]]:
    if not isinstance(value, list):
        raise InputError(f"{where} must be a list of rows, got {_kind(value)}")
    if value and isinstance(value[0], dict):
        return _records(where, value)
    rows: list[list[Any]] = []
    width: int | None = None
    for i, row in enumerate(value):
        if isinstance(row, dict):
            raise InputError(f"{where}[{i}] is an object, but row 0 is not: mix no formats")
        if not isinstance(row, list):
            row = [row]
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise InputError(f"{where}[{i}] has {len(row)} values, but row 0 has {width}")
        rows.append(row)
    return None, rows


def _columnar(value: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    columns = list(value)
    if not columns:
        return [], []
    lists = [isinstance(v, list) for v in value.values()]
    if not any(lists):  # one row: {"a": 1, "b": 2}
        return columns, [[value[c] for c in columns]]
    if not all(lists):
        bad = next(c for c in columns if not isinstance(value[c], list))
        raise InputError(f"inputs[{bad!r}] must be a list of values like the other columns")
    n = len(value[columns[0]])
    for c in columns:
        if len(value[c]) != n:
            raise InputError(
                f"inputs[{c!r}] has {len(value[c])} values, but inputs[{columns[0]!r}] has {n}"
            )
    cols = [value[c] for c in columns]
    return columns, [list(r) for r in zip(*cols, strict=True)]


def _unique(where: str, names: Sequence[str]) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise InputError(f"{where} names column {n!r} twice")
        seen.add(n)


# -- JSON, with the NaN and Infinity that MLflow's client writes ---------------------------------
#: The literals Python's ``json`` (and so MLflow's client, ``dump_input_data``) writes for
#: float values JSON has no word for; orjson refuses them.
NON_FINITE = (b"NaN", b"Infinity")


def loads_json(body: bytes) -> Any:
    """A JSON request body: orjson's parse; only when orjson refuses the body and it holds
    ``NaN`` or ``Infinity`` (``-Infinity``), Python's ``json``, which reads those as floats.
    What the tolerant parse takes must otherwise be what orjson takes (it re-encodes the
    result: a lone surrogate or an integer beyond 64 bits stays refused), so the request,
    the record and the shadow copy read the same document. ``InputError``: orjson's reason."""
    import orjson

    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        refused = exc
    if not any(literal in body for literal in NON_FINITE):
        raise InputError(f"malformed JSON: {refused}")
    import json

    try:
        doc = json.loads(body)
        orjson.dumps(doc)
    except (ValueError, TypeError, orjson.JSONEncodeError):
        raise InputError(f"malformed JSON: {refused}") from None
    return doc


# -- CSV (text/csv, as MLflow's scoring server takes it) -------------------------------------------
class CsvDocument(dict[str, Any]):
    """A ``text/csv`` body as the ``dataframe_split`` it is: a header row names the columns,
    every cell is still text (``parse`` marks its frame ``text``; ``typed`` reads the cells
    by the model's column types, so ``"02139"`` stays a string where a string is declared)."""


def parse_csv(body: bytes) -> CsvDocument:
    """A CSV body with a header row; ``InputError`` naming the line that is wrong.

    Stricter than ``pandas.read_csv`` (MLflow's reader) in two places: a row with fewer
    values than the header is refused (pandas fills the rest with NaN: a value lost in
    transit would become a silent missing value), and a first row of numbers is refused as a
    header (it is data: the header is missing). Blank lines are skipped, as pandas does."""
    import csv
    import io

    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"the CSV body is not UTF-8 text: {exc.reason} at byte {exc.start}"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    data: list[list[str]] = []
    try:
        for row in reader:
            if not row:
                continue
            if header is None:
                header = _csv_header(row)
            elif len(row) != len(header):
                raise InputError(
                    f"CSV line {reader.line_num} (data row {len(data)}) has {len(row)} "
                    f"value{'s' if len(row) != 1 else ''}, but the header names "
                    f"{len(header)} column{'s' if len(header) != 1 else ''} ({_names(header)})"
                )
            else:
                data.append(row)
    except csv.Error as exc:
        raise InputError(f"malformed CSV at line {reader.line_num}: {exc}") from None
    if header is None:
        raise InputError("the CSV body is empty: it needs a header row naming the columns")
    return CsvDocument(dataframe_split={"columns": header, "data": data})


def _csv_header(row: list[str]) -> list[str]:
    _unique("the CSV header", row)
    numbers = [cell for cell in row if _number(cell)]
    if numbers and len(numbers) == len(row):
        raise InputError(
            f"the CSV's first line ({', '.join(row[:6])}{', …' if len(row) > 6 else ''}) "
            "holds numbers: it must be a header row naming the columns"
        )
    for c, name in enumerate(row):
        if not name.strip():
            raise InputError(f"the CSV header's column {c} has no name")
    return row


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


# -- against a model's input schema ----------------------------------------------------------------
class ColumnType(StrEnum):
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    STRING = "string"


@dataclass(frozen=True, slots=True)
class Column:
    name: str | None  # None: taken by position
    type: ColumnType | None  # None: any value (the model judges it)
    nullable: bool


@dataclass(frozen=True)
class InputSchema:
    """What a model version takes (``common.model_inputs`` documents the recorded form)."""

    columns: tuple[Column, ...]
    source: str

    @classmethod
    def from_doc(cls, doc: Any) -> InputSchema | None:
        """The recorded schema (a version's ``input_schema``); None for none. ``ValueError``
        for one this gateway cannot read."""
        if doc is None:
            return None
        if not isinstance(doc, dict) or not isinstance(doc.get("columns"), list):
            raise ValueError("input_schema must be an object with a list of columns")
        columns = []
        for i, c in enumerate(doc["columns"]):
            if not isinstance(c, dict):
                raise ValueError(f"input_schema.columns[{i}] must be an object")
            name, type_ = c.get("name"), c.get("type")
            if name is not None and not isinstance(name, str):
                raise ValueError(f"input_schema.columns[{i}].name must be a string or null")
            try:
                kind = ColumnType(type_) if type_ is not None else None
            except ValueError:
                raise ValueError(f"input_schema.columns[{i}].type {type_!r} is unknown") from None
            columns.append(Column(name, kind, bool(c.get("nullable", False))))
        named = [c.name for c in columns if c.name is not None]
        if named and len(named) != len(columns):
            raise ValueError("input_schema names some columns and not others")
        _unique("input_schema", named)
        return cls(tuple(columns), str(doc.get("source") or "recorded"))

    @property
    def names(self) -> tuple[str, ...] | None:
        if not self.columns or self.columns[0].name is None:
            return None
        return tuple(str(c.name) for c in self.columns)

    @property
    def width(self) -> int:
        return len(self.columns)

    @functools.cached_property
    def plain_floats(self) -> bool:
        """Every column a float that takes no null (a numeric scikit-learn model's schema)."""
        return all(c.type is ColumnType.FLOAT and not c.nullable for c in self.columns)

    @property
    def numeric(self) -> bool:
        """Every value fits a float64 array (no strings, no untyped columns)."""
        return all(c.type not in (ColumnType.STRING, None) for c in self.columns)


def align(frame: Frame, schema: InputSchema | None) -> tuple[list[str] | None, list[list[Any]]]:
    """The rows with their values in the model's column order.

    Named columns are reordered by name (missing and unknown ones are errors naming them); a
    model that takes its columns by position refuses names (they would be ignored: a
    silent wrong answer when they come in another order); positional rows must have
    exactly the model's width. With no schema, rows go as sent.
    """
    if schema is None or not schema.columns:
        return frame.columns, frame.rows
    features = schema.names
    if frame.columns is not None:
        if features is None:
            raise InputError(
                f"{frame.format}: this model takes its {schema.width} columns by position (it "
                f"was fitted without column names), so it cannot take named columns "
                f"({_names(frame.columns)}): send rows as lists (instances, inputs, or "
                "dataframe_split without columns), or declare `inputs:` on the model"
            )
        return list(features), _reordered(frame, features)
    width = len(frame.rows[0])
    if width != schema.width:
        takes = f" ({_names(features)})" if features is not None else ""
        raise InputError(
            f"{frame.format}: rows have {width} value{'s' if width != 1 else ''}, but the model "
            f"takes {schema.width} column{'s' if schema.width != 1 else ''}{takes}"
        )
    return (list(features) if features is not None else None), frame.rows


def _reordered(frame: Frame, features: Sequence[str]) -> list[list[Any]]:
    given = frame.columns or []
    if list(given) == list(features):
        return frame.rows
    index = {c: i for i, c in enumerate(given)}
    missing = [f for f in features if f not in index]
    wanted = set(features)
    unknown = [c for c in given if c not in wanted]
    if missing or unknown:
        said = []
        if unknown:
            said.append(
                f"unknown column{'s' if len(unknown) > 1 else ''} "
                + ", ".join(f"{c!r}{_did_you_mean(c, missing)}" for c in unknown)
            )
        if missing:
            said.append(
                f"missing column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}"
            )
        raise InputError(f"{frame.format}: {'; '.join(said)} (the model takes {_names(features)})")
    order = [index[f] for f in features]
    return [[row[i] for i in order] for row in frame.rows]


def _did_you_mean(name: str, candidates: Sequence[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def checked(frame: Frame, schema: InputSchema | None) -> tuple[list[str] | None, list[list[Any]]]:
    """``align``, then every value read (CSV text) and checked against its column's type."""
    columns, rows = align(frame, schema)
    if frame.text:
        rows = typed(frame.format, schema, columns, rows)
    if schema is not None and schema.columns:
        check_values(frame.format, schema, columns, rows)
    return columns, rows


def _label(columns: Sequence[str] | None, c: int) -> str:
    return repr(columns[c]) if columns is not None else f"#{c}"


def check_values(
    fmt: str, schema: InputSchema, columns: Sequence[str] | None, rows: list[list[Any]]
) -> None:
    """Every value fits its column's type, and a null only where the column is nullable;
    else an ``InputError`` naming the column and the row."""
    if schema.plain_floats and _all_numbers(rows):  # the common case, on the request path
        return
    checks = [_CHECKS[c.type] if c.type is not None else None for c in schema.columns]
    nullable = [c.nullable for c in schema.columns]
    kinds = [c.type for c in schema.columns]
    for r, row in enumerate(rows):
        for c, v in enumerate(row):
            if v.__class__ is float and not math.isfinite(v) and kinds[c] not in _NON_FINITE_OK:
                raise InputError(
                    f"{fmt}: column {_label(columns, c)} is {kinds[c]}, but row {r} has "
                    f"{_show_float(v)}, which only a float column takes (send null for a "
                    "missing value)"
                )
            if v is None or (v.__class__ is float and v != v):  # null, or NaN (missing)
                if not nullable[c]:
                    raise InputError(
                        f"{fmt}: column {_label(columns, c)} takes no nulls, but row {r} has "
                        f"{'null' if v is None else 'NaN'} (if the model takes them, declare "
                        "the column `nullable: true` in the model's `inputs:`)"
                    )
                continue
            check = checks[c]
            if check is not None and not check[0](v):
                raise InputError(
                    f"{fmt}: column {_label(columns, c)} must be {check[1]}, but row {r} has "
                    f"{_kind(v)} {_show(v)}"
                )


def _all_numbers(rows: list[list[Any]]) -> bool:
    """Every value an int or a float other than NaN (a missing value: checked slowly)."""
    for row in rows:
        for v in row:
            cls = v.__class__
            if cls is not int and (cls is not float or v != v):
                return False
    return True


#: the columns that take NaN and the infinities (``math.isfinite`` false): floats, and
#: untyped ones (the model judges them)
_NON_FINITE_OK = frozenset({ColumnType.FLOAT, None})


def _show_float(v: float) -> str:
    """A non-finite float as JSON's extension writes it (``NaN``, ``Infinity``)."""
    return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")


def _is_float(v: Any) -> bool:
    return v.__class__ is float or v.__class__ is int


def _is_int(v: Any) -> bool:
    return v.__class__ is int or (v.__class__ is float and v.is_integer())


_CHECKS = {
    ColumnType.FLOAT: (_is_float, "a number"),
    ColumnType.INT: (_is_int, "a whole number"),
    ColumnType.BOOL: (lambda v: v.__class__ is bool, "a boolean (true or false)"),
    ColumnType.STRING: (lambda v: v.__class__ is str, "a string"),
}


def typed(
    fmt: str, schema: InputSchema | None, columns: Sequence[str] | None, rows: list[list[Any]]
) -> list[list[Any]]:
    """CSV cells read as their columns' types (untyped columns: as pandas would guess them);
    an empty cell is null. ``InputError`` naming the column and row of a cell that is not
    its type."""
    kinds = [c.type for c in schema.columns] if schema is not None and schema.columns else None
    out = []
    for r, row in enumerate(rows):
        values = []
        for c, cell in enumerate(row):
            kind = kinds[c] if kinds is not None else None
            try:
                values.append(_read_cell(cell, kind))
            except ValueError:
                raise InputError(
                    f"{fmt}: column {_label(columns, c)} must be "
                    f"{_CHECKS[kind][1] if kind is not None else 'a value'}, but row {r} has "
                    f"{_show(cell)}"
                ) from None
        out.append(values)
    return out


_TRUE, _FALSE = frozenset({"true", "1"}), frozenset({"false", "0"})
#: the cells ``pandas.read_csv`` (MLflow's CSV reader) reads as missing by default
#: (``pandas._libs.parsers.STR_NA_VALUES``); in a string column only the empty cell is
#: missing here (pandas would turn the text "NA", Namibia, into NaN)
MISSING = frozenset(
    {
        "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
        "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
    }
)  # fmt: skip


def _read_cell(cell: Any, kind: ColumnType | None) -> Any:
    if not isinstance(cell, str):
        return cell
    if cell == "":
        return None
    if kind is ColumnType.STRING:
        return cell
    if cell in MISSING:
        return None
    if kind is ColumnType.FLOAT:
        return _float(cell)
    if kind is ColumnType.INT:
        number = _float(cell)
        if not number.is_integer():
            raise ValueError(cell)
        return int(number)
    if kind is ColumnType.BOOL:
        low = cell.strip().lower()
        if low in _TRUE or low in _FALSE:
            return low in _TRUE
        raise ValueError(cell)
    return guess(cell)


def _float(cell: str) -> float:
    """A CSV cell as a float, as pandas reads one (``1e3``, ``inf``, ``-Infinity``; not
    Python's ``1_000``)."""
    if "_" in cell:
        raise ValueError(cell)
    return float(cell)


def guess(cell: str) -> Any:
    """An untyped CSV cell: missing (``MISSING``), an int, a float, a boolean (true/false),
    else the text."""
    if cell in MISSING:
        return None
    if "_" not in cell:
        try:
            return int(cell)
        except ValueError:
            pass
        try:
            return float(cell)
        except ValueError:
            pass
    low = cell.lower()
    if low in ("true", "false"):
        return low == "true"
    return cell


def _names(features: Sequence[str] | None) -> str:
    if not features:
        return "no named columns"
    shown = ", ".join(features[:12])
    return shown + (f", … ({len(features)} in all)" if len(features) > 12 else "")


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "…"
