"""The release workflow: saved plans, rollback and promotion.

All three share one shape: take a lock, plan some desired state against the
current state, show the plan, then either save it, or ask and apply it. They
differ only in where the desired state comes from — the spec files (apply), a
state version of this environment (rollback), or what another environment has
applied (promotion) — and in the pins that fix content to recorded versions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from common.diagnostics import Diagnostic, MlxError
from engine.apply.applier import Applier, ApplyReport
from engine.load.spec_set import SpecSet
from engine.plan.model import Plan, PlanOptions
from engine.plan.planner import Planner
from engine.plugins import ProviderSet
from engine.render.text import render_plan
from engine.session import Session
from engine.workflows.stored_spec import pins_from, spec_from_state
from state.status import VersionStatus
from state.store import StateWriter

Echo = Callable[[str], None]
Confirm = Callable[[Plan], bool]
SAVED_FORMAT = 1


@dataclass(frozen=True)
class Delivery:
    """How a plan reaches the world: shown through ``echo``, then saved to ``out_file``, or
    applied with ``parallelism`` workers once ``confirm`` says yes (``None``: no question)."""

    echo: Echo
    confirm: Confirm | None = None
    #: ``None``: the spec's ``mlx.parallelism``, or 10
    parallelism: int | None = None
    out_file: Path | None = None


# -- saved plans ---------------------------------------------------------------------------
def save_plan(plan: Plan, path: Path) -> None:
    """Write a plan file. It holds digests of secrets, never their values."""
    import engine

    doc = {
        "mlx_saved_plan": SAVED_FORMAT,
        "mlx_version": engine.__version__,
        "plan": plan.model_dump(mode="json"),
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, sort_keys=True))
    tmp.replace(path)


def load_plan(path: Path) -> Plan:
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise MlxError(f"cannot read plan file {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise MlxError(f"{path} is not an mlx plan file (not JSON: {exc})") from exc
    if not isinstance(doc, dict) or doc.get("mlx_saved_plan") != SAVED_FORMAT:
        raise MlxError(f"{path} is not an mlx plan file (made with `mlx plan -o FILE`)")
    try:
        return Plan.model_validate(doc["plan"])
    except ValueError as exc:
        raise MlxError(f"{path} is damaged: {exc}") from exc


def _comparable(plan: Plan) -> list[dict[str, Any]]:
    return [
        c.model_dump(mode="json", exclude={"details", "warnings", "gate"}) for c in plan.changes
    ]


# -- the shared run --------------------------------------------------------------------------
def plan_and_apply(
    session: Session,
    writer: StateWriter,
    plan_session: Session,
    options: PlanOptions,
    delivery: Delivery,
    expected: Plan | None = None,
) -> ApplyReport | None:
    """Plan ``plan_session``'s spec against ``writer``'s state; save it, or ask and apply it.

    With ``expected`` (a saved plan), the fresh plan must match it exactly.
    """
    reader = session.reader()
    providers = ProviderSet.for_session(plan_session, reader.record)
    try:
        salt = expected.salt if expected is not None else None
        planner = Planner(plan_session, options, salt=salt, reader=reader, progress=delivery.echo)
        saving = delivery.out_file is not None  # a saved plan renders as JSON later
        plan = planner.build(providers=providers, with_spec=True, with_values=saving)
        if expected is not None:
            _same_plan(expected, plan)
            plan = expected.model_copy(update={"resolved_spec": plan.resolved_spec})
        echo, out_file = delivery.echo, delivery.out_file
        echo(render_plan(plan))
        if out_file is not None:
            save_plan(plan, out_file)
            env = "" if plan.workspace == "default" else f" --env {plan.workspace}"
            echo(
                f"Saved the plan to {out_file}. Apply exactly this plan with: "
                f"mlx apply {out_file}{env}"
            )
            return None
        if not plan.has_changes:
            return None
        if delivery.confirm is not None and not delivery.confirm(plan):
            raise MlxError("Apply cancelled.")
        return Applier(
            plan_session,
            plan,
            providers,
            writer,
            echo,
            operation=options.operation,
            parallelism=delivery.parallelism or plan_session.parallelism,
        ).run()
    finally:
        providers.close()


def _same_plan(saved: Plan, fresh: Plan) -> None:
    if _comparable(saved) == _comparable(fresh):
        return
    before = {c.address: c for c in saved.changes}
    after = {c.address: c for c in fresh.changes}
    differ = sorted(
        a
        for a in set(before) | set(after)
        if (a in before) != (a in after)
        or before[a].model_dump(exclude={"details", "warnings", "gate"})
        != after[a].model_dump(exclude={"details", "warnings", "gate"})
    )
    raise MlxError(
        Diagnostic(
            "this saved plan no longer matches what mlx would do now; plan again",
            detail="It differs for: "
            + ", ".join(differ)
            + "\n(a content file, an environment value or a provider changed since).",
        )
    )


# -- apply FILE -------------------------------------------------------------------------------
def apply_saved(session: Session, path: Path, delivery: Delivery) -> ApplyReport | None:
    """Apply exactly a saved plan, without asking; refuse it if anything moved since."""
    saved = load_plan(path)
    if saved.workspace != session.workspace:
        raise MlxError(
            f'this plan was made for environment "{saved.workspace}", '
            f'not "{session.workspace}": pass --env {saved.workspace}'
        )
    with session.writer(saved.options.operation) as writer:
        _check_position(saved, writer)
        if saved.options.operation == "apply":
            if session.spec.digest != saved.spec_digest:
                raise MlxError(
                    "the spec files changed since this plan was made; plan again (mlx plan -o FILE)"
                )
            plan_session = session
        else:
            label = f"saved {saved.options.operation} plan"
            plan_session = session.with_spec(
                spec_from_state(session.root, saved.resolved_spec, label)
            )
        delivery = replace(delivery, confirm=None, out_file=None)  # reviewed already
        return plan_and_apply(session, writer, plan_session, saved.options, delivery, saved)


def _check_position(saved: Plan, writer: StateWriter) -> None:
    lineage, serial = writer.lineage, writer.serial
    if saved.lineage is not None and lineage != saved.lineage:
        raise MlxError(
            f"this plan was made for another state (lineage {saved.lineage}, "
            f"this state is {lineage}); plan again"
        )
    if serial != saved.prior_serial:
        raise MlxError(
            f"state moved from serial {saved.prior_serial} to {serial} since this plan was "
            "made; plan again"
        )


def refuse_if_protected(session: Session, what: str) -> None:
    if session.protected:
        raise MlxError(
            Diagnostic(
                f'environment "{session.environment}" is protected: it only accepts a saved, '
                "reviewed plan",
                detail=f"Run `{what} -o plan.json`, review it, then `mlx apply plan.json "
                f"--env {session.environment}`.",
            )
        )


# -- rollback -----------------------------------------------------------------------------------
def rollback_target(writer: StateWriter, to: int | None) -> dict[str, Any]:
    versions = [
        v
        for v in writer.versions()
        if v["status"] == VersionStatus.COMPLETE
        and v["operation"] in ("apply", "rollback", "promote")
    ]
    if to is None:
        if len(versions) < 2:
            raise MlxError("nothing to roll back to: there is no earlier complete state version")
        to = versions[-2]["serial"]
    target = writer.version(int(to))
    if target is None:
        raise MlxError(f"no state version {to} (latest is {writer.serial})")
    if target["status"] != VersionStatus.COMPLETE:
        raise MlxError(f"state version {to} did not complete ({target['status']}): pick another")
    return target


def _replay(
    session: Session,
    writer: StateWriter,
    spec: SpecSet,
    options: PlanOptions,
    delivery: Delivery,
    banner: str,
) -> ApplyReport | None:
    """Plan a spec recorded in state (pinned to recorded versions) against ``writer``'s state."""
    delivery.echo(banner + "\n")
    return plan_and_apply(session, writer, session.with_spec(spec), options, delivery)


def rollback(
    session: Session, to: int | None, delivery: Delivery, *, rerun_gates: bool = False
) -> ApplyReport | None:
    """Plan and apply the spec of an earlier state version, content pinned to its versions.

    Gates are not re-run where a passed verdict covers exactly the restored
    fingerprints (an emergency rollback must not wait on a flaky LLM endpoint);
    ``rerun_gates`` runs them anyway.
    """
    if delivery.out_file is None:
        refuse_if_protected(session, "mlx rollback")
    with session.writer("rollback") as writer:
        target = rollback_target(writer, to)
        serial = target["serial"]
        spec = spec_from_state(session.root, target["spec"], f"state version {serial}")
        snapshot = writer.snapshot(serial)
        records = {a: r for a, r in snapshot.items() if a in spec.decls}
        options = PlanOptions(
            environment=session.workspace,
            operation="rollback",
            source={"serial": serial},
            pins=pins_from(records),
            rerun_gates=rerun_gates,
        )
        banner = (
            f"Rolling back to state version {serial} ({target['operation']} by "
            f"{target['actor']} at {target['created_at']})."
        )
        return _replay(session, writer, spec, options, delivery, banner)


# -- promotion ---------------------------------------------------------------------------------
def promote(
    session: Session, source: str, delivery: Delivery, *, rerun_gates: bool = False
) -> ApplyReport | None:
    """Plan ``session``'s environment with exactly what ``source`` has applied."""
    if source == session.workspace:
        raise MlxError("--from and --to name the same environment")
    if delivery.out_file is None:
        refuse_if_protected(session, f"mlx promote --from {source} --to {session.workspace}")
    src_reader = session.store.reader(source)
    versions = src_reader.versions()
    if not versions:
        raise MlxError(f'environment "{source}" has no applied state to promote')
    last = versions[-1]
    if last["status"] != VersionStatus.COMPLETE:
        raise MlxError(
            f'refusing to promote: the last {last["operation"]} in "{source}" (serial '
            f"{last['serial']}) {last['status']}"
            + (f": {last['message']}" if last.get("message") else "")
        )
    applied = [v for v in versions if v["operation"] in ("apply", "rollback", "promote")]
    stored = src_reader.version(applied[-1]["serial"])
    assert stored is not None
    spec = spec_from_state(session.root, stored["spec"], f"{source} serial {stored['serial']}")
    records = {
        a: {"content_hash": r.content_hash, "outputs": r.outputs, "status": r.status}
        for a, r in src_reader.records().items()
        if a in spec.decls
    }
    options = PlanOptions(
        environment=session.workspace,
        operation="promote",
        source={"environment": source, "serial": stored["serial"]},
        pins=pins_from(records),
        rerun_gates=rerun_gates,
    )
    with session.writer("promote") as writer:
        banner = (
            f'Promoting what "{source}" applied at serial {stored["serial"]} to '
            f'"{session.workspace}".'
        )
        return _replay(session, writer, spec, options, delivery, banner)
