"""Per-resource hashes: behaviour and metadata hashed apart (SQLMesh's data vs metadata hash).

A change to a metadata field (description, labels, owner, a model card) moves
only the metadata hash, so it is an in-place update that never re-runs a gate
or creates a registry version. Which fields are metadata is read from the
spec models (``specs.base.metadata_field``).
"""

from __future__ import annotations

from typing import Any

from common.canonical import digest
from engine.load.references import Ref, RefSyntaxError, parse_template
from specs.introspect import kind_info


def split_hashes(
    section: str, redacted: dict[str, Any], maybe_unknown: bool = True
) -> tuple[str | None, str]:
    """(behaviour hash, metadata hash); behaviour is ``None`` while values are unknown.

    ``maybe_unknown=False`` skips looking for unknown values (the resolver knows).
    """
    info = kind_info(section)
    behaviour = {k: v for k, v in redacted.items() if k not in info.metadata_fields}
    meta = {k: v for k, v in redacted.items() if k in info.metadata_fields}
    spec_hash = None if maybe_unknown and has_unknown(behaviour) else digest(behaviour)
    return spec_hash, digest(meta)


def has_unknown(value: Any) -> bool:
    if isinstance(value, dict):
        return value.get("$unknown") is True or any(has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(has_unknown(v) for v in value)
    return False


def static_hashes(
    section: str, body: dict[str, Any], refs: list[tuple[tuple[str | int, ...], str]]
) -> tuple[str, str] | None:
    """Hashes of a body whose references are all whole-resource (``${models.x}``).

    Such a body resolves the same way in every run (each reference becomes its
    address), so its hashes can be computed once and cached with the parsed file.
    ``None`` when a reference reads a variable, the environment or an attribute.
    """
    resolved = body
    for path, text in refs:
        try:
            parts = parse_template(text)
        except RefSyntaxError:
            return None
        if len(parts) != 1 or not isinstance(parts[0], Ref):
            return None
        ref = parts[0]
        if not ref.is_resource or ref.attr is not None:
            return None
        resolved = with_value(resolved, path, ref.address)
    spec_hash, meta_hash = split_hashes(section, resolved)
    assert spec_hash is not None
    return spec_hash, meta_hash


def with_value(node: Any, path: tuple[str | int, ...], value: Any) -> Any:
    """A copy of ``node`` with ``value`` at ``path``; untouched branches are shared."""
    new = dict(node) if isinstance(node, dict) else list(node)
    key = path[0]
    new[key] = value if len(path) == 1 else with_value(node[key], path[1:], value)  # type: ignore[index]
    return new
