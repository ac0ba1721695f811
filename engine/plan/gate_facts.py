"""The facts of gates and releases the decision needs (``engine.plan.decide.Facts``).

A gate is due unless a passed verdict covers exactly what it would judge now; a release
is pending when what users get (its record) differs from its subject's version now. With
``--run-evals`` the plan judges each due gate itself (``run_gates``), changing nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import networkx as nx

from engine.apply.heartbeat import Heartbeat
from engine.plan.model import Action
from engine.plan.planned import Planned
from engine.policy import evidence
from state.status import Status
from state.store import IndexRow, Record

if TYPE_CHECKING:
    from state.evidence import Verdict


class VerdictLog(Protocol):
    """What gate facts read of the evidence (``state.evidence.EvidenceLog``)."""

    def passed(self, key: str) -> Verdict | None: ...

    def latest(self, key: str) -> Verdict | None: ...


def gate_facts(
    p: Planned,
    status: Status | None,
    log: VerdictLog,
    record: Callable[[str], Record | None],
    fingerprint_now: Callable[[str], str | None],
) -> dict[str, bool]:
    """``evidence_*`` facts of gate ``p``; sets ``p.judged`` and, if one covers it,
    ``p.reused`` (the passed verdict the plan reuses)."""
    p.judged = evidence.judged(p.address, p.body, p.spec_hash, p.content_hash, fingerprint_now)
    if p.judged is None:
        return {}
    passed = log.passed(p.judged.key)
    if passed is not None:
        p.reused = _reused(passed)
        rec = record(p.address) if status is not None else None
        recorded = (rec.outputs.get("judged") or {}).get("key") if rec else None
        return {"evidence_passed": True, "evidence_recorded": recorded == p.judged.key}
    latest = log.latest(p.judged.key)
    return {"evidence_failed": latest is not None and not latest.passed}


def _reused(passed: Verdict) -> dict[str, Any]:
    return {
        "key": passed.key,
        "serial": passed.serial,
        "at": passed.created_at.isoformat(timespec="seconds")
        if hasattr(passed.created_at, "isoformat")
        else str(passed.created_at),
        "version": passed.subject_version,
    }


def releases_through_rollout(decls: Mapping[str, Any], graph: nx.DiGraph, address: str) -> bool:
    """A release another release drives (an endpoint a rollout names) waits for it."""
    from engine.policy.released import driver_of

    return driver_of(decls, graph, address) is not None


def release_pending(
    p: Planned,
    prior: IndexRow | None,
    *,
    through_rollout: Callable[[], bool],
    record: Callable[[str], Record | None],
    fingerprint_now: Callable[[str], str | None],
    planned: Mapping[str, Planned],
) -> tuple[bool, str | None]:
    """Whether what users get (the record) differs from the subject's version now, and a
    plan warning when the user aborted exactly that version's release."""
    if prior is None or prior.status == Status.IN_PROGRESS:
        return False, None
    subject = evidence.released_subject(p.section, p.body)
    if subject is None or through_rollout():
        return False, None
    rec = record(p.address)
    recorded = rec.outputs.get("fingerprint") if rec else None
    now = fingerprint_now(subject)
    if rec is not None and now is not None and rec.outputs.get("aborted_fingerprint") == now:
        return False, (
            f"{p.address} aborted the release of {subject} ({now[:19]}…): "
            f"{rec.outputs.get('message') or 'see mlx rollout status'}; "
            f"`mlx rollout retry {p.name}` starts it again"
        )
    if now is None:
        sub = planned.get(subject)
        return bool(sub and sub.changes_behaviour), None
    return now != recorded, None


def run_gates(planned: Iterable[Planned], beat: Heartbeat | None) -> None:
    """``--run-evals``: judge each gate this plan would run, changing nothing."""
    from contract import Gate, ProviderError

    for p in planned:
        if p.action is not Action.RUN or not isinstance(p.provider, Gate):
            continue
        try:
            if beat is None:
                result = p.provider.evaluate(p.desired)
            else:
                with beat.watch(p.address, "Still running"):
                    result = p.provider.evaluate(p.desired)
        except ProviderError as exc:
            p.gate = {"passed": False, "message": str(exc), "report": str(exc)}
            continue
        p.gate = {
            "passed": not result.failed,
            "message": result.message,
            "report": result.outputs.get("report"),
            "evidence": result.outputs.get("evidence"),
        }
