"""MLflow scoring-server request bodies → rows of feature values, checked against a model.

The four formats of ``POST /invocations`` (MLflow's ``pyfunc`` scoring server)::

    {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}
    {"dataframe_records": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}
    {"instances": [{"a": 1, "b": 2}, ...]}   or  [[1, 2], ...]   (TF-serving rows)
    {"inputs": {"a": [1, 3], "b": [2, 4]}}   or  [[1, 2], ...]   (TF-serving columns / tensor)

plus an optional ``params`` object. Pure Python (no pandas): a one-row request costs a few
microseconds here. Every error is an ``InputError`` whose one-line message names the format,
the row and the column, so that the gateway answers 400 and never a traceback.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_ALLOWED = frozenset((*FORMATS, "params"))


class InputError(ValueError):
    """A request body the model cannot take; the message is one line for the caller."""


@dataclass(frozen=True, slots=True)
class Frame:
    """Rows of a request: ``columns`` names them (None: by position)."""

    format: str
    columns: list[str] | None
    rows: list[list[Any]]
    params: dict[str, Any] | None = None


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
    if len(present) != 1:
        got = f" (got {', '.join(present)})" if present else ""
        raise InputError(f"the body needs exactly one of {', '.join(FORMATS)}{got}")
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


# -- against a model -----------------------------------------------------------------------------
def align(
    frame: Frame, features: Sequence[str] | None, n_features: int | None
) -> tuple[list[str] | None, list[list[Any]]]:
    """The rows with their values in the model's column order.

    ``features``: the model's column names (``feature_names_in_``), if it has them;
    ``n_features``: how many columns it takes. Missing and unknown columns are errors that
    name them; positional rows must have exactly the model's width.
    """
    if frame.columns is not None and features is not None:
        given = frame.columns
        if list(given) == list(features):
            return list(features), frame.rows
        index = {c: i for i, c in enumerate(given)}
        missing = [f for f in features if f not in index]
        if missing:
            raise InputError(
                f"{frame.format}: missing column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(map(repr, missing))} (the model takes {_names(features)})"
            )
        wanted = set(features)
        unknown = [c for c in given if c not in wanted]
        if unknown:
            raise InputError(
                f"{frame.format}: unknown column{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))} (the model takes {_names(features)})"
            )
        order = [index[f] for f in features]
        return list(features), [[row[i] for i in order] for row in frame.rows]
    width = len(frame.rows[0])
    if n_features is not None and width != n_features:
        takes = f" ({_names(features)})" if features is not None else ""
        raise InputError(
            f"{frame.format}: rows have {width} value{'s' if width != 1 else ''}, but the model "
            f"takes {n_features} column{'s' if n_features != 1 else ''}{takes}"
        )
    names = list(features) if features is not None else frame.columns
    return names, frame.rows


def check_numeric(fmt: str, columns: Sequence[str] | None, rows: list[list[Any]]) -> None:
    """Every value a number, a boolean or null (NaN); else an ``InputError`` naming the column."""
    for r, row in enumerate(rows):
        for c, v in enumerate(row):
            if v is None or (isinstance(v, int | float) and not isinstance(v, bool)):
                continue
            if isinstance(v, bool):
                continue
            name = repr(columns[c]) if columns is not None else f"#{c}"
            raise InputError(
                f"{fmt}: column {name} must be a number, but row {r} has {_kind(v)} {_show(v)}"
            )


def nan_columns(columns: Sequence[str] | None, rows: list[list[Any]]) -> list[str]:
    """Names of the columns holding a null (or NaN) value."""
    out: list[str] = []
    width = len(rows[0]) if rows else 0
    for c in range(width):
        if any(
            row[c] is None or (isinstance(row[c], float) and math.isnan(row[c])) for row in rows
        ):
            out.append(repr(columns[c]) if columns is not None else f"#{c}")
    return out


def _names(features: Sequence[str] | None) -> str:
    if not features:
        return "no named columns"
    shown = ", ".join(features[:12])
    return shown + (f", … ({len(features)} in all)" if len(features) > 12 else "")


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "…"
