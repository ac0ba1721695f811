"""Gate verdicts bound to fingerprints: judging a gate in an apply, and what a gate judges
now (``engine.policy.evidence.Judged``) for the release check.

A verdict the plan reused is reused only if it is still true at apply time; a gate whose
metadata alone changed keeps its verdict; any other run of a gate adds its verdict to the
evidence, keyed by exactly the definition, subject and dataset fingerprints it judged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from contract import Desired, Prior, Result, VersionRef, version_outputs
from engine.apply.memory import RunMemory
from engine.plan.model import Action, Reason, ResourceChange
from engine.policy import evidence
from state.evidence import EvidenceLog, Verdict, now


class GateJudge:
    """Judges the gates of one apply (state version ``serial``) into ``log``."""

    def __init__(self, memory: RunMemory, log: EvidenceLog, serial: int):
        self.memory, self.log, self.serial = memory, log, serial

    def judge(
        self,
        change: ResourceChange,
        prior: Prior | None,
        desired: Desired,
        spec_hash: str | None,
        run: Callable[[], Result],
    ) -> Result:
        """The gate's result: a verdict reused or kept, else ``run()`` and its verdict."""
        judged = evidence.judged(
            change.address, dict(desired.spec), spec_hash, desired.fingerprint, self.fingerprint
        )
        if Reason.EVIDENCE_REUSED in change.reasons and judged is not None:
            verdict = self.log.passed(judged.key)
            if verdict is not None:  # still true at apply time: record it, run nothing
                return Result({**verdict.outputs, "judged": judged.as_dict(), "reused": True})
        if Reason.METADATA_CHANGED in change.reasons and change.action is Action.UPDATE:
            assert prior is not None
            return Result(dict(prior.outputs), failed=not prior.outputs.get("passed", False))
        result = run()
        outputs = dict(result.outputs)
        if judged is not None:
            outputs["judged"] = judged.as_dict()
            self.log.add(self._verdict(change.address, judged, result, outputs))
        return replace(result, outputs=outputs)

    def _verdict(
        self, gate: str, judged: evidence.Judged, result: Result, outputs: Mapping[str, Any]
    ) -> Verdict:
        subject_outputs = self.memory.outputs_of(judged.subject)
        return Verdict(
            key=judged.key,
            gate=gate,
            subject=judged.subject,
            subject_fingerprint=judged.subject_fingerprint,
            subject_version=_text(VersionRef.of(subject_outputs).version),
            dataset=judged.dataset,
            dataset_fingerprint=judged.dataset_fingerprint,
            definition=judged.definition,
            passed=not result.failed,
            serial=self.serial,
            created_at=now(),
            message=result.message,
            subject_outputs=version_outputs(subject_outputs),
            outputs={k: v for k, v in outputs.items() if k != "judged"},
        )

    def judged_now(self, gate: str) -> evidence.Judged | None:
        """What ``gate`` judges with the spec and the fingerprints of this run."""
        gate_body = self.memory.body_of(gate)
        if gate_body is None:
            return None
        spec_hash, content_hash = self.identity(gate)
        return evidence.judged(gate, gate_body, spec_hash, content_hash, self.fingerprint)

    def identity(self, gate: str) -> tuple[str | None, str | None]:
        """The gate's definition (spec and content hashes): as applied in this run, else as
        recorded when it started."""
        if gate in self.memory.hashes:
            return self.memory.hashes[gate]
        rec = self.memory.recorded(gate)
        return (rec.spec_hash, rec.content_hash) if rec else (None, None)

    def fingerprint(self, address: str) -> str | None:
        return self.memory.fingerprint(address)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
