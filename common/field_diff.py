"""Field-level differences of one resource (DeepDiff), as flat ``path: old -> new`` items.

What a plan shows of an update and what ``mlx diff`` shows between two state versions: the
same values (JSON, secrets as ``{"$sensitive": …}`` markers), the same items. Only called for
resources whose hashes differ: hashing every resource is cheap, deep-diffing all of them is
not (DESIGN.md: 4.5 s vs 0.085 s at 10k).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

_MISSING = object()


class FieldChange(BaseModel):
    """One field's difference; a plan's ``ResourceChange.fields`` holds these."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    before: Any = None
    after: Any = None
    #: "add", "remove" or "change"
    kind: str = "change"


def _fmt_path(items: list[Any]) -> str:
    out = ""
    for item in items:
        if isinstance(item, int):
            out += f"[{item}]"
        else:
            out += ("." if out else "") + str(item)
    return out


def _deepdiff() -> Any:
    """Import DeepDiff without letting it pull in numpy/pandas (0.4 s, 130 MB) for JSON data.

    DeepDiff imports numpy and pandas when they are installed, to support their
    types; spec values are plain JSON, so a plan that has changes need not pay
    for them. If numpy is already loaded (an eval gate ran), nothing is hidden.
    """
    import sys

    if "deepdiff" in sys.modules or "numpy" in sys.modules:
        from deepdiff import DeepDiff

        return DeepDiff
    hidden = ("numpy", "pandas", "polars", "torch")
    saved = {name: sys.modules.get(name) for name in hidden}
    try:
        for name in hidden:
            sys.modules[name] = None  # type: ignore[assignment]
        from deepdiff import DeepDiff
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return DeepDiff


def field_changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[FieldChange]:
    DeepDiff = _deepdiff()

    before = before or {}
    after = after or {}
    diff = DeepDiff(before, after, view="tree", ignore_order=False, threshold_to_diff_deeper=0)
    out: list[FieldChange] = []
    for kind, levels in diff.items():
        for level in levels:
            path = level.path(output_format="list")
            if kind in ("dictionary_item_added", "iterable_item_added", "attribute_added"):
                out.append(
                    FieldChange.model_construct(
                        path=_fmt_path(path), before=None, after=level.t2, kind="add"
                    )
                )
            elif kind in ("dictionary_item_removed", "iterable_item_removed", "attribute_removed"):
                out.append(
                    FieldChange.model_construct(
                        path=_fmt_path(path), before=level.t1, after=None, kind="remove"
                    )
                )
            else:
                out.append(
                    FieldChange.model_construct(
                        path=_fmt_path(path), before=level.t1, after=level.t2, kind="change"
                    )
                )
    out.sort(key=lambda f: f.path)
    return out


def flatten(value: dict[str, Any], prefix: list[Any] | None = None) -> list[tuple[str, Any]]:
    """Leaves of a nested mapping as (dotted path, value); scalar lists stay whole."""
    out: list[tuple[str, Any]] = []
    for key, item in value.items():
        path = [*(prefix or []), key]
        if isinstance(item, dict) and item and not _is_marker(item):
            out.extend(flatten(item, path))
        elif isinstance(item, list) and any(isinstance(x, dict) for x in item):
            for i, x in enumerate(item):
                if isinstance(x, dict) and not _is_marker(x):
                    out.extend(flatten(x, [*path, i]))
                else:
                    out.append((_fmt_path([*path, i]), x))
        else:
            out.append((_fmt_path(path), item))
    return out


def _is_marker(value: dict[str, Any]) -> bool:
    return len(value) == 1 and ("$sensitive" in value or "$unknown" in value)


def paths_differ(
    before: dict[str, Any], after: dict[str, Any], fields: frozenset[str]
) -> list[str]:
    """Top-level ``fields`` whose values differ (for replace-forcing fields)."""
    return sorted(f for f in fields if before.get(f, _MISSING) != after.get(f, _MISSING))
