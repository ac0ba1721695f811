"""What a reviewer reads next to a change's reasons: which bytes moved, which version a
gate has not judged, what a release releases, which verdict is reused.

One small function per reason (``_BY_REASON``), each given the planner's read-only
view; the planner decides (``engine.plan.decide``), this only explains.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from contract import VersionRef
from engine.plan.model import Action, Reason
from engine.policy import evidence
from engine.policy.released import served_before, served_serials
from specs.introspect import kind_info

if TYPE_CHECKING:
    from engine.plan.planner import Planned, Planner
    from state.store import IndexRow

KEEPS_HISTORY = "a registry keeps its history: the version is registered again, nothing is deleted"


def version_label(outputs: Mapping[str, Any]) -> str:
    """The version ``outputs`` record, as plans show it (``3``; ``?`` when none is)."""
    ref = VersionRef.of(outputs)
    return str(ref.version) if ref.known else "?"


class Explainer:
    def __init__(self, planner: Planner):
        self.planner = planner

    def explain(self, p: Planned, prior: IndexRow | None, upstream: tuple[str, ...]) -> list[str]:
        out: list[str] = []
        for reason in p.reasons:
            detail = _BY_REASON.get(reason)
            if detail is not None:
                out.extend(detail(self, p, prior, upstream))
        if p.action is Action.REPLACE and kind_info(p.section).keeps_history:
            out.append(KEEPS_HISTORY)
        if kind_info(p.section).release_field and p.action is not Action.NOOP:
            pending = self._gates_pending(p)
            if pending:
                verb = "passes" if len(pending) == 1 else "pass"
                out.append(f"released only if {', '.join(pending)} {verb} first")
            vetoing = self._gates_running(p, evidence.skipped_gates)
            if vetoing:
                verb = "rejects" if len(vetoing) == 1 else "reject"
                out.append(f"released unless {', '.join(vetoing)} {verb} it")
        return out

    # -- one per reason ----------------------------------------------------------------
    def _provider(self, p: Planned, prior: IndexRow | None, _u: tuple[str, ...]) -> list[str]:
        if prior is None:
            return []
        out = [f"provider: {prior.provider} -> {p.provider_key}"]
        if kind_info(p.section).keeps_history:
            out.append(
                f"the object in {prior.provider} is kept with its versions "
                "(mlx never deletes a registry's history)"
            )
        return out

    def _restored(self, p: Planned, _prior: IndexRow | None, _u: tuple[str, ...]) -> list[str]:
        if p.desired.restore is None:
            return []
        return [f"back to version {version_label(p.desired.restore)} ({p.content_hash})"]

    def _content(self, p: Planned, prior: IndexRow | None, _u: tuple[str, ...]) -> list[str]:
        if prior is None:
            return []
        field_name = kind_info(p.section).content_field
        value: Any = p.body
        for part in (field_name or "").split("."):
            value = value.get(part) if isinstance(value, dict) else None
        where = f" {value}:" if field_name and isinstance(value, str) else ""
        old = (prior.content_hash or "none")[:19]
        new = (p.content_hash or "none")[:19]
        return [f"bytes changed under an unchanged spec —{where} {old}… -> {new}…"]

    def _upstream(
        self, p: Planned, _prior: IndexRow | None, upstream: tuple[str, ...]
    ) -> list[str]:
        label = "changed inputs" if p.action is Action.RUN else "changed dependencies"
        return [f"{label}: " + ", ".join(upstream)]

    def _metadata(self, p: Planned, _prior: IndexRow | None, _u: tuple[str, ...]) -> list[str]:
        if p.reasons != [Reason.METADATA_CHANGED]:
            return []
        if kind_info(p.section).is_gate:
            return ["metadata only: the recorded verdict still holds"]
        return ["metadata only: updated in place, no new version, no gate re-run"]

    def _reused(self, p: Planned, _prior: IndexRow | None, _u: tuple[str, ...]) -> list[str]:
        if not (p.reused and p.judged):
            return []
        return [
            f"passed for exactly {p.judged.describe(p.reused.get('version'))} at state "
            f"version {p.reused['serial']} ({p.reused['at']}); --rerun-gates runs it again"
        ]

    def _unjudged(self, p: Planned, _prior: IndexRow | None, _u: tuple[str, ...]) -> list[str]:
        subject = evidence.address_in(p.body.get("subject")) or "its subject"
        if p.judged is None:
            return [f"{p.address} has not judged the version of {subject} this plan releases"]
        what = p.judged.describe(self.planner.version_now(subject))
        if Reason.GATE_NOT_PASSED in p.reasons:
            return [f"{p.address} did not pass for exactly {what}: it runs again"]
        return [f"{p.address} has not judged {what}"]

    def _release(self, p: Planned, _prior: IndexRow | None, _u: tuple[str, ...]) -> list[str]:
        subject = evidence.released_subject(p.section, p.body) or "its subject"
        rec = self.planner.recorded(p.address)
        now = self.planner.version_now(subject)
        was = (
            rec.outputs.get("released_version", rec.outputs.get("stable_version")) if rec else None
        )
        fp = self.planner.fingerprint_now(subject)
        shown = f"v{now}" if now is not None else "a new version" + (f" ({fp[:19]}…)" if fp else "")
        back = self.planner.options.operation == "rollback"
        if back and rec is not None and served_before(dict(rec.outputs), fp):
            assert fp is not None
            serials = served_serials(self.planner.reader, p.address, fp)
            when = ""
            if serials:
                first, last = serials[0], serials[-1]
                when = f" (serial {first})" if first == last else f" (serials {first}-{last})"
            return [
                f"rolls back to {shown}: all traffic at once, {shown} served before{when} "
                f"(users get v{was} now)"
            ]
        return [f"releases {subject} {shown} (users get v{was} now)"]

    def _in_progress(self, p: Planned, _prior: IndexRow | None, _u: tuple[str, ...]) -> list[str]:
        rec = self.planner.recorded(p.address)
        message = (rec.outputs.get("message") if rec else None) or "in progress"
        return [f"{message}; the next apply or `mlx rollout run` continues it"]

    def _tainted(self, p: Planned, prior: IndexRow | None, _u: tuple[str, ...]) -> list[str]:
        if p.action is Action.CREATE and prior is not None:
            return ["a create that failed is retried; a registry adopts what it left"]
        return []

    def _gates_pending(self, p: Planned) -> list[str]:
        return self._gates_running(p, evidence.required_gates)

    def _gates_running(self, p: Planned, which: GateList) -> list[str]:
        """Those of the release's gates (required, or skipped) that run in this plan."""
        planned = self.planner.planned
        gates = which(self.planner.spec.decls, p.address, p.body)
        return [g for g in gates if g in planned and planned[g].action is Action.RUN]


GateList = Callable[[Mapping[str, Any], str, Mapping[str, Any]], list[str]]
Detail = Callable[[Explainer, "Planned", "IndexRow | None", tuple[str, ...]], list[str]]

_BY_REASON: dict[Reason, Detail] = {
    Reason.PROVIDER_CHANGED: Explainer._provider,
    Reason.RESTORED: Explainer._restored,
    Reason.CONTENT_CHANGED: Explainer._content,
    Reason.UPSTREAM_CHANGED: Explainer._upstream,
    Reason.GATE_INPUTS_CHANGED: Explainer._upstream,
    Reason.METADATA_CHANGED: Explainer._metadata,
    Reason.EVIDENCE_REUSED: Explainer._reused,
    Reason.NOT_JUDGED: Explainer._unjudged,
    Reason.GATE_NOT_PASSED: Explainer._unjudged,
    Reason.RELEASE_PENDING: Explainer._release,
    Reason.IN_PROGRESS: Explainer._in_progress,
    Reason.TAINTED: Explainer._tainted,
}
