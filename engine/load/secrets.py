"""Secrets only where a provider keeps them secret: one check for validate and plan.

A secret (``${env.X}``, a sensitive variable) may reach a provider only through a
field the provider declares secret (``Provider.secret_fields``); anywhere else —
a model's ``labels``, a registry tag — it could be published in clear. The planner
checks the resolved body (``engine.values.Secret`` markers); ``mlx validate`` checks
where the templates stand, reading no environment value, no state and creating no
provider (only its class is imported, for its ``secret_fields``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from common.diagnostics import Diagnostic
from engine.load.graph import SpecGraph
from engine.load.references import Ref
from engine.load.spec_set import SpecSet
from engine.values import path_allowed

FieldPath = tuple[str | int, ...]


def exposed(
    spec: SpecSet,
    address: str,
    paths: Iterable[FieldPath],
    key: str,
    allowed: tuple[str, ...],
) -> list[Diagnostic]:
    """An error for each secret at ``paths`` outside the ``allowed`` fields of provider ``key``."""
    out = []
    kept = "it keeps no field secret"
    if allowed:
        kept = f"fields it keeps secret: {', '.join(allowed)}"
    for path in paths:
        if path_allowed(path, allowed):
            continue
        dotted = ".".join(str(x) for x in path)
        out.append(
            Diagnostic(
                f"{address}.{dotted} holds a secret (${{env.…}} or a sensitive variable), "
                f"but provider {key.removeprefix('default:')!r} would not keep it secret "
                f"there ({kept}): it could be written in clear to state, files, registry "
                "tags or logs",
                spec.source(address, *path, key=False),
                detail="For a value that is not secret (a CI build number in a label), "
                "declare a variable and use ${var.NAME}, set with MLX_VAR_NAME=….",
            )
        )
    return out


def secret_templates(
    templates: Mapping[FieldPath, list[Any]], sensitive_vars: frozenset[str]
) -> list[FieldPath]:
    """Where a resource's templates put a secret: any part reading ``env`` or a sensitive var."""
    return [
        path
        for path, parts in templates.items()
        if any(
            isinstance(part, Ref)
            and (
                part.namespace == "env" or (part.namespace == "var" and part.name in sensitive_vars)
            )
            for part in parts
        )
    ]


def check_statically(
    spec: SpecSet, graph: SpecGraph, sensitive_vars: frozenset[str]
) -> list[Diagnostic]:
    """``mlx validate``'s check: the same errors the plan gives, from the templates alone."""
    from engine.plugins import provider_class, provider_key

    out: list[Diagnostic] = []
    for address, templates in graph.templates.items():
        paths = secret_templates(templates, sensitive_vars)
        if not paths:
            continue
        decl = spec.decls[address]
        key = provider_key(decl.section, decl.body)
        cls = provider_class(key, spec.providers)
        if cls is None:
            continue  # an unknown or broken provider: the plan reports it
        allowed = tuple(cls.secret_fields.get(decl.section, ()))
        out.extend(exposed(spec, address, paths, key, allowed))
    return out
