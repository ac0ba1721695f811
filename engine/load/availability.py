"""Kinds mlx cannot act on yet: a block whose default provider is not installed.

Monitors and budgets are part of the spec language, but no provider of type
``monitor`` or ``budget`` ships with this version of mlx. Planning one as a create
that fails every apply after it helped nobody, nor did a "Success!" for a block
nothing acts on. So:

* ``mlx validate`` refuses each such block: an error at its file:line, reported
  with every other problem of the spec (the rest is validated as usual, the block's
  own fields included);
* ``mlx plan`` and ``mlx apply`` leave it out of the plan with the same message as a
  warning at its file:line, and plan and apply the rest of the spec: nothing else is
  blocked by it.

The rule is the provider's presence, not a list of kinds: a plugin that provides
``monitor`` makes monitors available at once. A provider that acts on some values of a
block's own ``type`` field only (``Provider.resource_types``: the built-in ``monitor``
provider runs ``type: data_drift``) leaves the other types refused the same way, the
message naming the type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from common.diagnostics import Diagnostic, Source
from engine.load.spec_set import SpecSet

#: What nobody gets from a block that is left out, by section (default: nothing acts on it).
_CONSEQUENCE = {
    "monitors": "nothing watches what it describes and nothing alerts",
    "budgets": "nothing counts or enforces its limit",
}


def missing(spec: SpecSet, addresses: Iterable[str] | None = None) -> list[str]:
    """The declared resources (of ``addresses``, default all) whose kind mlx cannot act on."""
    from engine.plugins import provider_key

    out = []
    for address in spec.decls if addresses is None else addresses:
        decl = spec.decls.get(address)
        if decl is not None and _unavailable(provider_key(decl.section, decl.body), decl.body):
            out.append(address)
    return out


def _unavailable(key: str, body: Mapping[str, Any]) -> bool:
    from engine.plugins import missing_default_type

    if missing_default_type(key):
        return True
    return _unbuilt_type(key, body) is not None


def _unbuilt_type(key: str, body: Mapping[str, Any]) -> str | None:
    """The block's ``type`` when its kind's default provider acts on other types only (a
    block whose ``type`` names its provider, like an alert channel's, is not such a block)."""
    from engine.plugins import provider_class

    kind = body.get("type")
    if not key.startswith("default:") or not isinstance(kind, str) or key == f"default:{kind}":
        return None
    types = getattr(provider_class(key, {}), "resource_types", None)
    if types is None or kind in types:
        return None
    return kind


def message(spec: SpecSet, address: str) -> str:
    from engine.plugins import provider_key

    decl = spec.decls[address]
    kind = _unbuilt_type(provider_key(decl.section, decl.body), decl.body)
    what = decl.section if kind is None else f"{decl.section} of type {kind}"
    return f"{address}: {what} are not available yet in this version of mlx"


def _consequence(section: str) -> str:
    return _CONSEQUENCE.get(section, "nothing acts on it")


def errors(spec: SpecSet) -> list[Diagnostic]:
    """``mlx validate``: one error per block mlx cannot act on yet."""
    return [
        Diagnostic(
            message(spec, address),
            _where(spec, address),
            detail="`mlx plan` and `mlx apply` leave this block out (saying so) and handle "
            "the rest of the spec; "
            f"until then {_consequence(spec.decls[address].section)}. Its fields are checked "
            "now, so it works unchanged once the kind is available.",
        )
        for address in missing(spec)
    ]


def warning(spec: SpecSet, address: str) -> str:
    """``mlx plan``: why a block is not in the plan, with its place."""
    section = spec.decls[address].section
    return (
        f"{message(spec, address)} ({_where(spec, address)}): left out of this plan, so "
        f"{_consequence(section)}"
    )


def _where(spec: SpecSet, address: str) -> Source:
    return spec.source(address)
