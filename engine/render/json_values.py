"""The parts of the JSON plan around ``resource_changes``: ``prior_state``, ``planned_values``
and ``configuration``, shaped as ``terraform show -json`` writes them (one root module, no
child modules, no outputs), and the three views of a value Terraform keeps apart.

A value inside a plan marks a secret ``{"$sensitive": digest}`` and a value known only after
apply ``{"$unknown": true}``; :func:`split` turns one value into Terraform's three views.
"""

from __future__ import annotations

from typing import Any

from engine.load.references import RefSyntaxError, parse_template
from engine.plan.model import PlanValues

STATE_FORMAT_VERSION = "1.0"


def split(value: Any) -> tuple[Any, Any, Any]:
    """(value without markers, unknown mask, sensitive mask) — Terraform's three views."""
    if isinstance(value, dict):
        if len(value) == 1 and "$unknown" in value:
            return None, True, False
        if len(value) == 1 and "$sensitive" in value:
            return None, False, True
        plain, unknown, sensitive = {}, {}, {}
        for k, v in value.items():
            p, u, s = split(v)
            plain[k] = p
            if u:
                unknown[k] = u
            if s:
                sensitive[k] = s
        return plain, unknown or False, sensitive or False
    if isinstance(value, list):
        parts = [split(v) for v in value]
        unknown_list = [u or False for _, u, _ in parts]
        sensitive_list = [s or False for _, _, s in parts]
        return (
            [p for p, _, _ in parts],
            unknown_list if any(unknown_list) else False,
            sensitive_list if any(sensitive_list) else False,
        )
    return value, False, False


def known(value: Any) -> Any:
    """``value`` without what is known only after apply: planned_values omits it, as
    Terraform's does (a list keeps its length: an unknown item is null)."""
    if isinstance(value, dict):
        return {k: known(v) for k, v in value.items() if not _is_unknown(v)}
    if isinstance(value, list):
        return [None if _is_unknown(v) else known(v) for v in value]
    return value


def _is_unknown(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "$unknown" in value


def recorded_object(prior: dict[str, Any]) -> dict[str, Any]:
    """A recorded resource as one object: its attributes, and its outputs where no
    attribute has the same name (what ``before`` and a no-op's ``after`` show)."""
    return {**prior["outputs"], **prior["attributes"]}


def _resource(address: str, provider: str | None, value: dict[str, Any]) -> dict[str, Any]:
    section, name = address.split(".", 1)
    plain, _unknown, sensitive = split(known(value))
    return {
        "address": address,
        "mode": "managed",
        "type": section,
        "name": name,
        "provider_name": provider,
        "schema_version": 0,
        "values": plain,
        "sensitive_values": sensitive or {},
    }


def prior_state(values: PlanValues, version: str, serial: int) -> dict[str, Any]:
    """The state the plan was made against (``terraform show -json``'s state shape)."""
    resources = []
    for address, prior in sorted(values.prior.items()):
        entry = _resource(address, prior["provider"], recorded_object(prior))
        if prior["dependencies"]:
            entry["depends_on"] = sorted(prior["dependencies"])
        if prior["status"] == "tainted":
            entry["tainted"] = True
        resources.append(entry)
    return {
        "format_version": STATE_FORMAT_VERSION,
        "mlx_version": version,
        "serial": serial,
        "values": {"outputs": {}, "root_module": {"resources": resources}},
    }


def planned_values(
    after: dict[str, tuple[str | None, dict[str, Any]]],
) -> dict[str, Any]:
    """Every resource as it will be once the plan is applied: ``after`` maps an address
    to (provider, its value with markers); a deleted resource is not in it."""
    resources = [_resource(a, provider, value) for a, (provider, value) in sorted(after.items())]
    return {"outputs": {}, "root_module": {"resources": resources}}


def references(value: Any) -> list[str]:
    """The references in ``value`` as Terraform writes them: ``${models.fraud.version}`` is
    ``["models.fraud.version", "models.fraud"]``, ``${var.x}`` is ``["var.x"]``."""
    out: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            for item in v.values():
                walk(item)
        elif isinstance(v, list):
            for item in v:
                walk(item)
        elif isinstance(v, str) and "${" in v:
            try:
                parts = parse_template(v)
            except RefSyntaxError:  # a validated spec has none; never fail a render on one
                return
            for part in parts:
                if isinstance(part, str):
                    continue
                names = [f"{part.address}.{part.attr}"] if part.attr else []
                for ref in [*names, part.address]:
                    if ref not in out:
                        out.append(ref)

    walk(value)
    return out


def expression(value: Any) -> dict[str, Any]:
    refs = references(value)
    return {"references": refs} if refs else {"constant_value": value}


def configuration(values: PlanValues) -> dict[str, Any]:
    """The spec as written: each field a constant or the references it is made of."""
    resources = []
    providers: dict[str, dict[str, str]] = {}
    for address, decl in sorted(values.configuration.items()):
        section, name = address.split(".", 1)
        body = decl["body"]
        key = decl["provider"]
        if key is not None:
            providers[key] = {"name": key, "full_name": key}
        entry: dict[str, Any] = {
            "address": address,
            "mode": "managed",
            "type": section,
            "name": name,
            "provider_config_key": key,
            "expressions": {k: expression(v) for k, v in body.items() if k != "depends_on"},
            "schema_version": 0,
        }
        if body.get("depends_on"):
            entry["depends_on"] = list(body["depends_on"])
        resources.append(entry)
    return {"provider_config": providers, "root_module": {"resources": resources}}
