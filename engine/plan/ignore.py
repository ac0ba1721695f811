"""``lifecycle.ignore_changes``: the listed fields (dotted paths) keep their recorded values."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def at(value: Any, dotted: str) -> tuple[bool, Any]:
    """``(found, value)`` at a dotted path of nested dicts."""
    node = value
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False, None
    return True, node


def put(value: dict[str, Any], dotted: str, new: Any) -> None:
    """Set a dotted path, making the dicts on the way (a non-dict on the way: nothing)."""
    parts = dotted.split(".")
    node = value
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            return
    node[parts[-1]] = new


def keep_recorded(
    body: dict[str, Any], recorded: dict[str, Any], paths: Iterable[str]
) -> dict[str, Any]:
    """A copy of ``body`` whose ``paths`` hold their values in ``recorded`` (where it has them)."""
    out = dict(body)
    for path in paths:
        found, old = at(recorded, path)
        if found:
            put(out, path, old)
    return out
