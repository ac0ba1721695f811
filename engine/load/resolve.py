"""Substituting references: variables, environment (sensitive) and resource attributes.

Resource attributes come from a ``lookup`` the caller supplies (the planner
answers from the plan and prior state, the applier from what it just
applied), so this module never reads state itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from common.diagnostics import Diagnostic, MlxError
from engine.load.graph import SpecGraph
from engine.load.references import Ref
from engine.load.spec_set import SpecSet
from engine.plan.hashes import with_value
from engine.values import UNKNOWN, Secret, Unknown, contains
from state.status import VersionStatus

Lookup = Callable[[str, str], Any]


@dataclass
class Inputs:
    """Values of ``${var.*}`` and ``${env.*}`` for one run."""

    variables: dict[str, Any]
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    sensitive_vars: frozenset[str] = frozenset()


def variable_values(spec: SpecSet, env_name: str | None, environ: Mapping[str, str]) -> Inputs:
    """Defaults, then the environment's overrides, then ``MLX_VAR_<name>``.

    A default holding ``${…}`` is an error: variables cannot reference other values.
    """
    from engine.load.references import find_templates

    diags: list[Diagnostic] = []
    values: dict[str, Any] = {}
    overrides: dict[str, Any] = {}
    if env_name is not None:
        if env_name not in spec.environments:
            known = ", ".join(sorted(spec.environments)) or "none declared"
            raise MlxError(f'unknown environment "{env_name}" (environments: {known})')
        overrides = spec.environments[env_name].get("variables", {})
        for name in overrides:
            if name not in spec.variables:
                diags.append(
                    Diagnostic(
                        f'environment "{env_name}" sets undeclared variable "{name}"',
                        spec.source(f"environments.{env_name}", "variables", name),
                    )
                )
    for name, var in spec.variables.items():
        # A default is a value, not a template: "${var.x}" in it used to stay literal text.
        # Terraform says the same: "Variables may not be used here."
        for path, _text in find_templates(var.get("default")):
            diags.append(
                Diagnostic(
                    f"variables.{name}: a default cannot reference other values (${{…}}): "
                    "variables are inputs; set the value per environment "
                    f"(environments.<env>.variables.{name}) or with MLX_VAR_{name}",
                    spec.source(f"variables.{name}", "default", *path, key=False),
                )
            )
    sensitive = set()
    for name, var in spec.variables.items():
        if f"MLX_VAR_{name}" in environ:
            values[name] = environ[f"MLX_VAR_{name}"]
        elif name in overrides:
            values[name] = overrides[name]
        elif "default" in var:
            values[name] = var["default"]
        else:
            values[name] = None
        if var.get("sensitive"):
            sensitive.add(name)
    if diags:
        raise MlxError(diags)
    return Inputs(values, environ, frozenset(sensitive))


class Resolver:
    def __init__(self, spec: SpecSet, graph: SpecGraph, inputs: Inputs):
        self.spec, self.graph, self.inputs = spec, graph, inputs

    def resolve(self, address: str, lookup: Lookup) -> dict[str, Any]:
        """The body of ``address`` with every template substituted.

        Unset ``${env.X}`` raises ``MlxError`` with the place it was written.
        """
        return self.resolve_marked(address, lookup)[0]

    def resolve_marked(self, address: str, lookup: Lookup) -> tuple[dict[str, Any], bool]:
        """``resolve``, and whether any secret or unknown value went into the body."""
        decl = self.spec.decls[address]
        templates = self.graph.templates.get(address)
        if not templates:
            return decl.body, False
        marked = False
        body = decl.body  # shared: with_value copies only the containers along each path
        diags: list[Diagnostic] = []
        for path, parts in templates.items():
            try:
                value = self._render(parts, lookup)
            except _Unset as exc:
                diags.append(
                    Diagnostic(
                        f"{exc.ref} is not set: export {exc.ref.name} before running mlx",
                        self.spec.source(address, *path, key=False),
                    )
                )
                continue
            body = with_value(body, path, value)
            if not marked and (
                isinstance(value, Secret | Unknown)
                or contains(value, Secret)
                or contains(value, Unknown)
            ):
                marked = True
        if diags:
            raise MlxError(diags)
        return body, marked

    def env_refs(self, address: str) -> dict[str, str]:
        """The fields of ``address`` written as exactly one ``${env.NAME}``, by dotted path:
        NAME (``Desired.env_refs``: where a secret is found, never its value)."""
        templates = self.graph.templates.get(address)
        if not templates:
            return {}
        return {
            ".".join(str(p) for p in path): parts[0].name
            for path, parts in templates.items()
            if len(parts) == 1 and isinstance(parts[0], Ref) and parts[0].namespace == "env"
        }

    def _value(self, ref: Ref, lookup: Lookup) -> Any:
        if ref.namespace == "env":
            if ref.name not in self.inputs.environ:
                raise _Unset(ref)
            return Secret(self.inputs.environ[ref.name])
        if ref.namespace == "var":
            value = self.inputs.variables.get(ref.name)
            return Secret(value) if ref.name in self.inputs.sensitive_vars else value
        if ref.attr is None:
            return ref.address
        if ref.attr == "name":
            return ref.name
        if ref.attr == "address":
            return ref.address
        return lookup(ref.address, ref.attr)

    def _render(self, parts: list[Any], lookup: Lookup) -> Any:
        if len(parts) == 1 and isinstance(parts[0], Ref):
            return self._value(parts[0], lookup)  # keeps its type (int, dict, …)
        out: list[str] = []
        secret = False
        for part in parts:
            value = self._value(part, lookup) if isinstance(part, Ref) else part
            if isinstance(value, Unknown):
                return UNKNOWN
            if isinstance(value, Secret):
                secret = True
                value = value.value
            out.append(value if isinstance(value, str) else str(value))
        text = "".join(out)
        return Secret(text) if secret else text


class _Unset(Exception):
    def __init__(self, ref: Ref):
        super().__init__(str(ref))
        self.ref = ref


def resolve_provider_configs(
    session: Any, providers: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Provider configs with ``${var.*}``/``${env.*}`` substituted (secrets opened).

    ``providers``: raw configs other than the spec's (those a state version recorded).
    """
    from engine.load.references import RefSyntaxError, find_templates, parse_template

    spec, inputs = session.spec, session.inputs
    out: dict[str, dict[str, Any]] = {}
    diags = []
    for name, config in (spec.providers if providers is None else providers).items():
        resolved = dict(config)
        for path, text in find_templates(config):
            try:
                parts = parse_template(text)
            except RefSyntaxError as exc:
                diags.append(Diagnostic(str(exc), spec.source(f"providers.{name}", *path)))
                continue
            pieces = []
            for part in parts:
                if not isinstance(part, Ref):
                    pieces.append(part)
                elif part.namespace == "env":
                    if part.name not in inputs.environ:
                        diags.append(
                            Diagnostic(
                                f"{part} is not set: export {part.name} before running mlx",
                                spec.source(f"providers.{name}", *path, key=False),
                            )
                        )
                        pieces.append("")
                    else:
                        pieces.append(inputs.environ[part.name])
                elif part.namespace == "var":
                    value = inputs.variables.get(part.name)
                    pieces.append(value.value if isinstance(value, Secret) else str(value))
                else:
                    diags.append(
                        Diagnostic(
                            f"providers.{name}: provider settings may use ${{var.*}} and "
                            f"${{env.*}}, not {part}",
                            spec.source(f"providers.{name}", *path, key=False),
                        )
                    )
            node: Any = resolved
            for item in path[:-1]:
                node[item] = dict(node[item]) if isinstance(node[item], dict) else list(node[item])
                node = node[item]
            node[path[-1]] = "".join(pieces)
        out[name] = resolved
    if diags:
        raise MlxError(diags)
    return out


def recorded_provider_configs(session: Any) -> Callable[[str], dict[str, Any] | None]:
    """``name -> config`` of providers the last applied state version had but the spec lost.

    Deleting a resource whose provider block was removed in the same change (a model and
    its ``providers:`` entry) still needs that provider: as recorded, secrets re-read
    from the environment.
    """
    found: dict[str, dict[str, Any]] | None = None

    def lookup(name: str) -> dict[str, Any] | None:
        nonlocal found
        if found is None:
            found = {}
            reader = session.reader()
            applied = [v for v in reader.versions() if v.get("status") == VersionStatus.COMPLETE]
            for version in reversed(applied):
                stored = reader.version(version["serial"]) or {}
                raw = (stored.get("spec") or {}).get("providers") or {}
                if raw:
                    missing = {k: v for k, v in raw.items() if k not in session.spec.providers}
                    found = resolve_provider_configs(session, missing)
                    break
        return found.get(name)

    return lookup


def declared_specs(session: Any, record: Callable[[str], Any]) -> Callable[[str], Any]:
    """``address -> resolved spec`` (secrets opened) for any declared resource, on demand.

    Attributes of other resources come from their records: this is for providers that
    need another resource's settings outside a plan (an alert sent by ``mlx refresh``).
    """
    from engine.values import reveal

    resolver = Resolver(session.spec, session.graph, session.inputs)

    def lookup(address: str, attr: str) -> Any:
        rec = record(address)
        if rec is None:
            return UNKNOWN
        return rec.outputs.get(attr, rec.attributes.get(attr))

    def spec(address: str) -> Any:
        if address not in session.spec.decls:
            return None
        return reveal(resolver.resolve(address, lookup))

    return spec
