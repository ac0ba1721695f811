"""The core operations behind the commands, callable from Python as well."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.load.resolve import resolve_provider_configs
from engine.plan.model import Plan, PlanOptions
from engine.plan.planner import Planner
from engine.plugins import ProviderSet
from engine.render.text import render_plan
from engine.session import Session
from state.status import DriftStatus

if TYPE_CHECKING:
    from engine.apply.applier import ApplyReport
    from engine.unpriced import UnpricedReader
    from engine.workflows.release import Delivery

Echo = Callable[[str], None]


@dataclass(frozen=True)
class ValidateResult:
    files: int
    resources: int
    edges: int


def validate(session: Session) -> ValidateResult:
    """Load, validate, resolve and build the graph; touch no state and no provider."""
    from common.diagnostics import MlxError
    from engine.load import availability
    from engine.load.resolve import Resolver
    from engine.load.secrets import check_statically
    from engine.values import UNKNOWN

    spec = session.spec
    # blocks mlx cannot act on yet are said together with every other problem found
    diags = availability.errors(spec)
    try:
        graph, inputs = session.graph, session.inputs
    except MlxError as exc:
        raise MlxError([*exc.diagnostics, *diags]) from None
    resolver = Resolver(spec, graph, inputs)
    for address in graph.order:
        try:
            resolver.resolve(address, lambda _a, _b: UNKNOWN)
        except MlxError as exc:
            diags.extend(exc.diagnostics)
    try:
        resolve_provider_configs(session)
    except MlxError as exc:
        diags.extend(exc.diagnostics)
    diags.extend(check_statically(spec, graph, inputs.sensitive_vars))
    if diags:
        raise MlxError(diags)
    return ValidateResult(len(spec.files), len(spec.decls), graph.graph.number_of_edges())


def plan(
    session: Session,
    options: PlanOptions | None = None,
    *,
    memo: bool = False,
    with_spec: bool = False,
    with_values: bool = False,
    live_refresh: bool = False,
    progress: Echo | None = None,
) -> Plan:
    """Plan; with ``memo``, record a converged result for ``engine.plan.memo``.

    ``live_refresh`` first reads every recorded object (``mlx plan --refresh``).
    ``with_values``: the records and declarations the JSON plan shows (``PlanValues``).
    """
    session.graph  # noqa: B018 - a broken spec is reported before state is opened
    reader = session.reader()
    providers = ProviderSet.for_session(session, reader.record)
    try:
        drift = None
        if live_refresh:
            from engine.apply.drift import detect

            found = detect(reader.records(), providers)
            drift = [d.as_dict() for d in found]
            statuses = {d.address: d.status for d in found if d.status != DriftStatus.UNREADABLE}
            options = (options or PlanOptions(environment=session.workspace)).model_copy(
                update={"drift": statuses}
            )
        the_plan = Planner(session, options, drift=drift, reader=reader, progress=progress).build(
            providers=providers, with_spec=with_spec, with_values=with_values
        )
        if memo and _memoizable(the_plan):
            files = providers.plan_inputs()
            if files is not None:
                _remember(session, the_plan, files)
        return the_plan
    finally:
        providers.close()


def _memoizable(the_plan: Plan) -> bool:
    opts = the_plan.options
    return not (the_plan.changes or the_plan.warnings or opts.targets or opts.replace)


def _remember(session: Session, the_plan: Plan, files: list[str]) -> None:
    from engine.load.references import Ref, find_templates, parse_template
    from engine.plan import memo as plancache

    env_names = {
        part.name
        for templates in session.graph.templates.values()
        for parts in templates.values()
        for part in parts
        if isinstance(part, Ref) and part.namespace == "env"
    }
    for config in session.spec.providers.values():
        for _path, text in find_templates(config):
            env_names |= {
                p.name for p in parse_template(text) if isinstance(p, Ref) and p.namespace == "env"
            }
    plancache.store(
        root=session.root,
        workspace=session.workspace,
        state_option=session.options.state_url,
        state_url=session.state_url(),
        environ=session.options.environ,
        env_names=env_names,
        files=files,
        output=render_plan(the_plan),
    )


@dataclass(frozen=True)
class RefreshResult:
    drift: list[Any]
    #: alert deliveries that failed (each was warned about)
    undelivered: int = 0
    #: the monitors run (``engine.monitors.run.MonitorRun``)
    monitors: list[Any] = field(default_factory=list)


def refresh(
    session: Session,
    *,
    echo: Echo,
    warn: Echo | None = None,
    monitors: Sequence[str] = (),
    unpriced_since: UnpricedReader | None = None,
) -> RefreshResult:
    """Read every recorded object; record what drifted and raise its alerts (one per
    resource, through the alert lifecycle and its outbox); run the monitors that are due
    (or ``monitors``, by name, now), each recorded as an event with its alerts; then deliver
    what is due.

    ``warn`` (stderr in the CLI) hears about alerts that could not be delivered (they stay
    in the outbox: a later run retries them, `mlx alerts` lists them). ``unpriced_since``
    reads the inference log's unpriced answers since a time (the CLI, which may open the log,
    passes it; the engine does not import the log): their alerts are observed when given.
    """
    from engine.alerting import Alerting
    from engine.apply import drift
    from engine.monitors import run as monitor_run
    from state.alerting import AlertStore

    say = warn or echo
    with session.writer("refresh") as writer:
        providers = ProviderSet.for_session(session, writer.record)
        try:
            known = drift.recorded(writer, writer.index())
            records = writer.records()
            found = drift.detect(records, providers)
            if any(d.status != DriftStatus.UNREADABLE for d in found):
                serial = drift.record(writer, found, session.actor, session.git_sha)
                echo(f"Recorded the drift in state version {serial}.")
            channels = list(session.spec.settings.get("drift_alerts") or [])
            owners = {a: r.attributes.get("owner") for a, r in records.items()}
            alerting = Alerting(
                AlertStore(writer.engine, session.workspace), providers.context.peers
            )
            drift.observe(alerting, known + found, channels, owners)
            now = time.time()
            if unpriced_since is not None:
                _observe_unpriced(session, alerting, unpriced_since, now)
            runs = monitor_run.run_all(
                writer, providers, alerting, monitor_run.select(records, monitors, now),
                now=now, actor=session.actor, git_sha=session.git_sha,
            )  # fmt: skip
            report = alerting.deliver()
            for row, why in report.retrying:
                say(f"Warning: could not alert {row.channel}: {why} (kept; a later run retries)")
            for row, why in report.failed:
                say(f"Warning: could not alert {row.channel}: {why} (final; `mlx alerts` lists it)")
        finally:
            providers.close()
    return RefreshResult(known + found, len(report.retrying) + len(report.failed), runs)


def _observe_unpriced(session: Session, alerting: Any, read: UnpricedReader, now: float) -> None:
    """The unpriced-model alerts (``engine.unpriced``) from the inference log's last day."""
    from engine import unpriced

    found = read(session, now - unpriced.WINDOW_S)
    channels = list(session.spec.settings.get("cost_alerts") or [])
    unpriced.observe(alerting, found, channels, now)


def apply(
    session: Session, delivery: Delivery, options: PlanOptions | None = None
) -> ApplyReport | None:
    """Lock, plan against the locked state, show it, ask, apply. ``None`` if nothing to do."""
    from engine.workflows.release import plan_and_apply, refuse_if_protected

    refuse_if_protected(session, "mlx plan")
    session.inputs  # noqa: B018 - a broken spec is reported before the lock is taken
    options = options or PlanOptions(environment=session.workspace)
    with session.writer(options.operation) as writer:
        for warning in writer.lock.warnings:
            delivery.echo(f"Warning: {warning}")
        return plan_and_apply(session, writer, session, options, delivery)


def evaluate(session: Session, name: str, progress: Echo | None = None) -> Any:
    """Run one gate now, applying nothing (``mlx eval NAME``). Returns the gate's Result."""
    from common.diagnostics import MlxError, did_you_mean
    from contract import Gate

    address = name if name.startswith("evals.") else f"evals.{name}"
    if address not in session.spec.decls:
        gates = [a for a in session.spec.decls if a.startswith("evals.")]
        raise MlxError(f"no gate {address}{did_you_mean(address, gates)}")
    reader = session.reader()
    providers = ProviderSet.for_session(session, reader.record)
    try:
        options = PlanOptions(targets=[address], environment=session.workspace)
        planner = Planner(session, options, reader=reader)
        planner.build(providers=providers)
        planned = planner.planned[address]
        if not isinstance(planned.provider, Gate):
            raise MlxError(f"{address}: its provider ({planned.provider_key}) cannot run gates")
        from engine.apply.heartbeat import heartbeat

        with heartbeat(progress or (lambda _line: None), address):
            return planned.provider.evaluate(planned.desired)
    finally:
        providers.close()
