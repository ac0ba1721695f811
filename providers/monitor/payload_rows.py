"""A logged request body (``inputs``) and answer (``outputs``) read as rows, in Python: the
performance monitor reads a few labelled requests this way (their segment column and their
prediction). The layouts are those ``inference.drift_counts`` counts in SQL:

* ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}``
* ``{"dataframe_records" | "instances" | "inputs": [{...}, ...]}``, a bare list of objects
* ``{"inputs": {"a": [...], "b": [...]}}`` (columns), ``{"inputs": {"a": 1, "b": 2}}`` (one
  row); any other object is one record

Rows sent by position carry no names: they are rows without columns (``{}``). A payload the log
truncated (``{"$truncated": true, ...}``) or did not sample (None) has no rows (None).
"""

from __future__ import annotations

from typing import Any

_ROW_LISTS = ("dataframe_records", "instances", "inputs")


def input_rows(inputs: Any) -> list[dict[str, Any]] | None:
    """The data rows of a logged request body, each a {column: value}; None if not kept."""
    if inputs is None or (isinstance(inputs, dict) and inputs.get("$truncated") is True):
        return None
    if isinstance(inputs, list):
        return [r if isinstance(r, dict) else {} for r in inputs]
    if not isinstance(inputs, dict):
        return None
    split = inputs.get("dataframe_split")
    if isinstance(split, dict):
        columns = split.get("columns")
        data = split.get("data") or []
        if not isinstance(columns, list):
            return [{} for _ in data] if isinstance(data, list) else None
        return [dict(zip(columns, r, strict=False)) if isinstance(r, list) else {} for r in data]
    for key in _ROW_LISTS:
        value = inputs.get(key)
        if isinstance(value, list):
            return [r if isinstance(r, dict) else {} for r in value]
    value = inputs.get("inputs")
    if isinstance(value, dict):
        if value and all(isinstance(v, list) for v in value.values()):
            n = max(len(v) for v in value.values())
            return [{k: v[i] for k, v in value.items() if i < len(v)} for i in range(n)]
        return [value]
    return [inputs]


def predictions(outputs: Any) -> list[Any] | None:
    """The predictions of a logged answer: ``{"predictions": [...]}`` (MLflow's scoring
    server) or a bare list; None when the answer was not kept or has another shape."""
    if isinstance(outputs, dict) and outputs.get("$truncated") is not True:
        value = outputs.get("predictions")
        return value if isinstance(value, list) else None
    return outputs if isinstance(outputs, list) else None
