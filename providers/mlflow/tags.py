"""What mlx writes as MLflow tags: lineage on versions, metadata on registered models.

Every tag mlx manages starts with ``mlx.`` (labels excepted: they keep their own
keys, listed in ``mlx.labels`` so that a removed label can be removed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from contract import Desired

PREFIX = "mlx."
FINGERPRINT = "mlx.fingerprint"
ADDRESS = "mlx.address"
LABELS = "mlx.labels"
ALIAS = "mlx.alias."
#: On a registered model / prompt mlx deleted: it keeps every version, and a create adopts it.
RETIRED = "mlx.retired"
RETIRED_AT = "mlx.retired_at"
#: Tag values MLflow accepts on every store (the smallest limit of its stores).
_MAX_VALUE = 5000


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def lineage_tags(desired: Desired, fingerprint: str) -> dict[str, str]:
    """Version tags: the content fingerprint and how it was made (code, data, params, env)."""
    spec = desired.spec
    tags = {ADDRESS: desired.address, FINGERPRINT: fingerprint}
    for key in ("flavor", "owner"):
        if spec.get(key):
            tags[f"mlx.{key}"] = _text(spec[key])
    lineage = spec.get("lineage") or {}
    code = lineage.get("code") or {}
    for key in ("repo", "commit", "path"):
        if code.get(key):
            tags[f"mlx.code.{key}"] = _text(code[key])
    for key in ("params", "features", "environment", "seed"):
        if lineage.get(key) not in (None, {}, []):
            tags[f"mlx.{key}"] = _text(lineage[key])
    # the exact dataset snapshots this version was applied with (from the datasets' outputs)
    for address, outputs in sorted(desired.inputs.items()):
        if address.startswith("datasets."):
            keep = ("snapshot", "revision", "fingerprint", "uri_resolved")
            snap = {k: outputs[k] for k in keep if outputs.get(k) is not None}
            tags[f"mlx.data.{address.split('.', 1)[1]}"] = _text(snap)
    return tags


def object_tags(desired: Desired) -> dict[str, str]:
    """Registered-model / prompt tags: labels, owner and (models) the card."""
    spec = desired.spec
    labels: Mapping[str, Any] = spec.get("labels") or {}
    tags = {str(k): _text(v) for k, v in labels.items()}
    tags[ADDRESS] = desired.address
    tags[LABELS] = _text(sorted(labels))
    if spec.get("owner"):
        tags["mlx.owner"] = _text(spec["owner"])
    if spec.get("card"):
        tags["mlx.card"] = _text(spec["card"])
    if spec.get("description"):
        tags["mlx.description"] = _text(spec["description"])
    return tags


def stale(
    current: Mapping[str, str], wanted: Mapping[str, str], keep: tuple[str, ...]
) -> list[str]:
    """Tags mlx wrote earlier that the spec no longer asks for (aliases and ``keep`` stay)."""
    try:
        old_labels = set(json.loads(current.get(LABELS, "[]")))
    except ValueError:
        old_labels = set()
    managed = {k for k in current if k.startswith(PREFIX)} | old_labels
    return sorted(
        k for k in managed if k not in wanted and not k.startswith(ALIAS) and k not in keep
    )


def alias_tag(alias: str) -> str:
    return f"{ALIAS}{alias}"


def read_alias_tags(tags: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """``{alias: {"version": n, "fingerprint": …}}``: the aliases mlx set, as it set them."""
    out = {}
    for key, value in tags.items():
        if key.startswith(ALIAS):
            try:
                out[key.removeprefix(ALIAS)] = dict(json.loads(value))
            except (ValueError, TypeError):
                continue
    return out


def alias_value(version: int, fingerprint: str | None) -> str:
    return json.dumps({"version": version, "fingerprint": fingerprint}, sort_keys=True)


def alias_drift(
    tags: Mapping[str, str], version_of: Callable[[str], int | None]
) -> tuple[dict[str, int | None], list[str]]:
    """The aliases mlx set, as they are now (``version_of(alias)``), and a note for each
    one moved or removed outside mlx. Aliases mlx never set are not its business."""
    now: dict[str, int | None] = {}
    notes = []
    for alias, want in sorted(read_alias_tags(tags).items()):
        now[alias] = version_of(alias)
        wanted = want.get("version")
        if now[alias] is None:
            notes.append(
                f"alias {alias!r} was removed outside mlx (mlx set it to version {wanted})"
            )
        elif now[alias] != wanted:
            notes.append(f"alias {alias!r} moved outside mlx: version {wanted} -> {now[alias]}")
    return now, notes
