"""What a new model version's input schema changes for its callers (a pure function).

A schema is the recorded form ``common.model_inputs`` documents: ``{"source", "columns":
[{"name", "type", "nullable"}]}`` in the model's column order, names null for a model that
takes its columns by position. ``changes(old, new)`` lists, in words a reviewer reads in the
plan, every difference a caller would feel: a column removed or added, a type changed, nulls
no longer taken, the order moved (callers who send rows by position), names gained or lost.
Unknown schemas (``None``) change nothing that can be said.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

BREAKING = "input schema changed (breaking for callers)"
CHANGED = "input schema changed"


def _columns(schema: Mapping[str, Any] | None) -> list[Mapping[str, Any]] | None:
    if not isinstance(schema, Mapping):
        return None
    columns = schema.get("columns")
    if not isinstance(columns, list):
        return None
    return [c for c in columns if isinstance(c, Mapping)]


def _names(columns: Sequence[Mapping[str, Any]]) -> list[str] | None:
    names = [c.get("name") for c in columns]
    return [str(n) for n in names] if names and all(isinstance(n, str) for n in names) else None


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:8])
    return shown + (f", … ({len(names)} in all)" if len(names) > 8 else "")


def _type(column: Mapping[str, Any]) -> str:
    return str(column.get("type") or "any")


def changes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[str]:
    """One line per difference callers would feel (empty: none, or one side unknown)."""
    before, after = _columns(old), _columns(new)
    if before is None or after is None:
        return []
    old_names, new_names = _names(before), _names(after)
    if old_names is not None and new_names is not None:
        return _named(before, after, old_names, new_names)
    if old_names is None and new_names is None:
        return _positional(before, after)
    if new_names is None:
        return [
            f"{BREAKING}: the model no longer takes named columns (it takes {len(after)} by "
            f"position; it took {_listed(old_names or [])}): requests that send names get 400"
        ]
    return [
        f"{BREAKING}: the model now takes named columns ({_listed(new_names)}; it took "
        f"{len(before)} by position): requests that send other names get 400"
    ]


def _named(
    before: Sequence[Mapping[str, Any]],
    after: Sequence[Mapping[str, Any]],
    old_names: list[str],
    new_names: list[str],
) -> list[str]:
    out = [f"{BREAKING}: column {n!r} removed" for n in old_names if n not in new_names]
    out += [f"{BREAKING}: column {n!r} added" for n in new_names if n not in old_names]
    was = dict(zip(old_names, before, strict=True))
    for name, column in zip(new_names, after, strict=True):
        if name in was:
            out.extend(_column_changes(repr(name), was[name], column))
    kept_old = [n for n in old_names if n in new_names]
    kept_new = [n for n in new_names if n in old_names]
    if kept_old != kept_new:
        out.append(
            f"{BREAKING}: column order {_listed(kept_old)} -> {_listed(kept_new)} (callers "
            "who send rows by position, without names, get other answers)"
        )
    return out


def _positional(
    before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]
) -> list[str]:
    out = []
    if len(before) != len(after):
        out.append(f"{BREAKING}: {len(before)} columns by position -> {len(after)}")
    for i, (old, new) in enumerate(zip(before, after, strict=False)):
        out.extend(_column_changes(f"#{i}", old, new))
    return out


def _column_changes(label: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    out = []
    if _type(old) != _type(new):
        out.append(f"{BREAKING}: type of column {label} {_type(old)} -> {_type(new)}")
    if bool(old.get("nullable")) and not new.get("nullable"):
        out.append(f"{BREAKING}: column {label} no longer takes nulls")
    elif new.get("nullable") and not old.get("nullable"):
        out.append(f"{CHANGED}: column {label} now takes nulls")
    return out
