"""The core operations behind the commands, callable from Python as well."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.applier import Applier, ApplyReport
from engine.plan import Plan, PlanOptions
from engine.planner import Planner, resolve_provider_configs
from engine.plugins import ProviderSet
from engine.render_text import render_plan
from engine.session import Session

Echo = Callable[[str], None]
Confirm = Callable[[Plan], bool]


@dataclass(frozen=True)
class ValidateResult:
    files: int
    resources: int
    edges: int


def validate(session: Session) -> ValidateResult:
    """Load, validate, resolve and build the graph; touch no state and no provider."""
    spec, graph = session.spec, session.graph
    inputs = session.inputs
    from engine.resolve import Resolver
    from engine.values import UNKNOWN

    resolver = Resolver(spec, graph, inputs)
    diags = []
    from engine.diagnostics import MlxError

    for address in graph.order:
        try:
            resolver.resolve(address, lambda _a, _b: UNKNOWN)
        except MlxError as exc:
            diags.extend(exc.diagnostics)
    try:
        resolve_provider_configs(session)
    except MlxError as exc:
        diags.extend(exc.diagnostics)
    if diags:
        raise MlxError(diags)
    return ValidateResult(len(spec.files), len(spec.decls), graph.graph.number_of_edges())


def plan(session: Session, options: PlanOptions | None = None) -> Plan:
    return Planner(session, options).build()


def apply(
    session: Session,
    *,
    options: PlanOptions | None = None,
    echo: Echo,
    confirm: Confirm,
    parallelism: int = 10,
    operation: str = "apply",
) -> ApplyReport | None:
    """Lock, plan against the locked state, show it, ask, apply. ``None`` if nothing to do."""
    with session.writer(operation) as writer:
        for warning in writer.lock.warnings:
            echo(f"Warning: {warning}")
        providers = ProviderSet(
            session.spec,
            resolve_provider_configs(session),
            session.provider_context(),
            session.reader().record,
        )
        try:
            the_plan = Planner(session, options).build(providers=providers, with_spec=True)
            echo(render_plan(the_plan))
            if not the_plan.has_changes:
                return None
            if not confirm(the_plan):
                from engine.diagnostics import MlxError

                raise MlxError("Apply cancelled.")
            applier = Applier(
                session,
                the_plan,
                providers,
                writer,
                echo,
                operation=operation,
                parallelism=parallelism,
            )
            return applier.run()
        finally:
            providers.close()
