"""The applier's own release check: before anything is released to users (an alias moved,
endpoint traffic given), every gate the release requires must have a passed verdict for
exactly the subject's, the dataset's and the gate definition's fingerprints
(``engine.policy.evidence``), whatever the plan said; a gate the release skips must not
have failed for exactly that version."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import networkx as nx

from contract import Prior, VersionRef
from engine.apply.gates import GateJudge
from engine.apply.memory import Records
from engine.policy import evidence
from state.evidence import EvidenceLog


class ReleaseCheck:
    def __init__(self, gates: GateJudge, log: EvidenceLog, decls: Mapping[str, Any]):
        self.gates, self.log, self.decls = gates, log, decls
        self.memory = gates.memory

    def releases_new(self, section: str, body: dict[str, Any], prior: Prior | None) -> bool:
        """Whether applying this would give users another version than they get now."""
        subject = evidence.released_subject(section, body)
        if subject is None:
            return False
        return prior is None or prior.outputs.get("fingerprint") != self.memory.fingerprint(subject)

    def check(self, address: str, section: str, body: dict[str, Any]) -> None:
        """Refuse (``ReleaseRefused``) to release a version that any required gate has not
        passed for exactly, or that a gate it skips failed for."""
        subject = evidence.released_subject(section, body)
        if subject is None:
            return
        version = VersionRef.of(self.memory.outputs_of(subject)).version
        label = f"{subject} v{version}" if version is not None else subject
        if self.memory.fingerprint(subject) is None:
            raise evidence.ReleaseRefused(
                f"refusing to release {label}: it has no registered version yet"
            )
        for gate in evidence.required_gates(self.decls, address, body):
            self._required(gate, version, label)
        for gate in evidence.skipped_gates(self.decls, address, body):
            self._skipped(gate, address, version, label)

    def _required(self, gate: str, version: Any, label: str) -> None:
        judged = self.gates.judged_now(gate)
        if judged is None or self.log.passed(judged.key) is None:
            what = judged.describe(version) if judged else label
            raise evidence.ReleaseRefused(
                f"refusing to release {label}: {gate} has not passed for exactly {what}; "
                f"run `mlx apply` (the gate is due) or `mlx eval {gate.split('.', 1)[1]}`"
            )

    def _skipped(self, gate: str, address: str, version: Any, label: str) -> None:
        judged = self.gates.judged_now(gate)
        latest = self.log.latest(judged.key) if judged is not None else None
        if judged is not None and latest is not None and not latest.passed:
            raise evidence.ReleaseRefused(
                f"refusing to release {label}: {gate} failed for exactly "
                f"{judged.describe(version)} (state version {latest.serial}); "
                f"{address}'s requires does not wait for {gate} to pass, but never "
                "releases a version it rejected"
            )


def driven_version(
    decls: Mapping[str, Any],
    graph: nx.DiGraph,
    start: Records,
    address: str,
    section: str,
    body: dict[str, Any],
) -> tuple[str, dict[str, Any]] | None:
    """An endpoint a rollout drives serves what that rollout released last (its subject's
    newest version reaches it only through the rollout)."""
    from engine.policy.released import driver_of, released_outputs

    subject = evidence.released_subject(section, body)
    driver = driver_of(decls, graph, address) if subject else None
    if driver is None or subject is None:
        return None
    rec = start.record(driver)
    released = released_outputs(dict(rec.outputs)) if rec else None
    return (subject, released) if released else None
