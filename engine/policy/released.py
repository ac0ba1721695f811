"""What users get now: the version behind each subject's release (for ``baseline: previous``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contract import Released
from specs.introspect import kind_info
from state.evidence import Verdict
from state.status import Status
from state.store import Record, StateReader


def released_outputs(outputs: dict[str, Any]) -> dict[str, Any] | None:
    """The released version's outputs (version, fingerprint, uri) from a release's record."""
    if isinstance(outputs.get("released"), dict) and outputs["released"].get("fingerprint"):
        return dict(outputs["released"])
    fingerprint = outputs.get("fingerprint")
    if not fingerprint:
        return None
    version = outputs.get("released_version", outputs.get("stable_version"))
    return {"version": version, "fingerprint": fingerprint}


def released_finder(
    reader: StateReader, record: Callable[[str], Record | None]
) -> Callable[[str, str | None], Released | None]:
    """``(subject, gate) -> Released``: behind a recorded release, else the newest version
    ``gate`` passed that no gate rejected (:func:`last_accepted`).

    Records are read through ``record`` (the run's snapshot as it started), so a gate
    running in an apply compares with what users got before the apply.
    """
    releases: list[str] | None = None

    def find(subject: str, gate: str | None = None) -> Released | None:
        nonlocal releases
        if releases is None:
            releases = sorted(
                a for a, row in reader.index().items() if kind_info(row.section).release_field
            )
        for address in releases:
            rec = record(address)
            if rec is None or rec.status not in (Status.OK, Status.IN_PROGRESS):
                continue
            if rec.outputs.get("subject") != subject:
                continue
            outputs = released_outputs(dict(rec.outputs))
            if outputs is not None:
                via = rec.outputs.get("alias")
                how = f" (alias {via})" if via else ""
                return Released(outputs, f"released by {address}{how}")
        verdict = last_accepted(reader.evidence().history(subject=subject), gate)
        if verdict is not None:
            return Released(
                verdict.subject_outputs,
                f"the last version {verdict.gate} passed (state version {verdict.serial})",
            )
        return None

    return find


def passed_finder(reader: StateReader) -> Callable[[str, str], dict[str, Any] | None]:
    """``(gate, subject_fingerprint) -> verdict``: the gate's latest passed verdict on that
    subject version, from the release evidence (what a scheduled eval pins: the dataset it
    judged and the scores it recorded)."""

    def find(gate: str, subject_fingerprint: str) -> dict[str, Any] | None:
        for verdict in reversed(reader.evidence().history(gate=gate)):
            if verdict.passed and verdict.subject_fingerprint == subject_fingerprint:
                return {
                    "serial": verdict.serial,
                    "dataset": verdict.dataset,
                    "dataset_fingerprint": verdict.dataset_fingerprint,
                    "definition": verdict.definition,
                    "subject_outputs": dict(verdict.subject_outputs),
                    "outputs": dict(verdict.outputs),
                }
        return None

    return find


def last_accepted(history: list[Verdict], gate: str | None) -> Verdict | None:
    """The newest version ``gate`` (any gate: ``None``) passed that no gate rejected.

    ``history`` is a subject's verdicts, oldest first. Each gate's latest verdict on a
    fingerprint stands (a rerun that passed clears an earlier failure); a version whose
    latest verdict from any gate failed was rejected — never a baseline, even when the
    asking gate itself passed it.
    """
    latest = {(v.gate, v.subject_fingerprint): v for v in history}
    rejected = {fp for (_gate, fp), v in latest.items() if not v.passed}
    for verdict in reversed(history):
        if not verdict.passed or verdict.subject_fingerprint in rejected:
            continue
        if (gate is None or verdict.gate == gate) and verdict.subject_outputs:
            return verdict
    return None


def served_before(outputs: dict[str, Any], fingerprint: str | None) -> bool:
    """Whether a rollout's record says it made the version ``fingerprint`` stable before
    (releasing it again is a rollback: all traffic at once, ``controller.reconcile``)."""
    if not fingerprint:
        return False
    earlier = outputs.get("released_before") or []
    return any(isinstance(o, dict) and o.get("fingerprint") == fingerprint for o in earlier)


def served_serials(reader: StateReader, address: str, fingerprint: str) -> list[int]:
    """The state versions in which ``address`` released the version ``fingerprint``."""
    serials = []
    for event in reader.events(address=address):
        released = released_outputs(dict(event.get("outputs") or {}))
        if released is not None and released.get("fingerprint") == fingerprint:
            serials.append(int(event["serial"]))
    return sorted(set(serials))


def driver_of(decls: Any, graph: Any, address: str) -> str | None:
    """The release that drives ``address`` (a rollout naming an endpoint), if any.

    Such an endpoint serves what its rollout released last, not its subject's newest
    version: the rollout takes over the transition.
    """
    for dependent in graph.successors(address) if address in graph else ():
        decl = decls.get(dependent)
        if decl is None:
            continue
        info = kind_info(decl.section)
        if info.release_field and any(
            _ref(decl.body.get(field)) == address for field in info.ref_fields
        ):
            return str(dependent)
    return None


def _ref(value: Any) -> str | None:
    from engine.policy.evidence import address_in

    return address_in(value)
