"""Which model the candidate is compared with, and where its content comes from.

* ``previous``: the version users get now — behind the subject's release (a
  rollout's alias or an endpoint) as recorded when this run started; with no
  release yet, the last version this gate passed. Never a candidate a gate
  rejected. Nothing released or passed: a first release, judged on absolute
  thresholds only. The same fingerprint as the candidate: the previous version
  *is* the candidate.
* ``{alias: X}``: the version behind registry alias X (unset: no baseline).
* ``{model: ${models.y}}``: another model's declared content.
* ``{heuristic: …}``: a model-free baseline (``predict.heuristic``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from contract import Desired, Peers, ProviderError, VersionRef
from specs.evals import AliasBaseline, Baseline, HeuristicBaseline, ModelBaseline


@dataclass(frozen=True)
class BaselinePlan:
    kind: str  # previous | alias | model | heuristic | none
    status: str  # compare | same | absent | none
    name: str  # human label: "previous (models.x v1)"
    note: str = ""  # why there is nothing to compare with
    address: str | None = None
    outputs: Mapping[str, Any] | None = None  # a registered version to materialize
    declared: bool = False  # materialize the declared content of ``address``
    heuristic: str | None = None
    value: Any = None
    #: Where the version came from ("released by rollouts.x (alias production)").
    source: str = ""

    @property
    def short(self) -> str:
        """A compact label for one-line reasons: "previous v1", "production v3"."""
        label = VersionRef.of(self.outputs).label
        suffix = f" {label}" if label is not None else ""
        if self.kind == "heuristic":
            return f"{self.heuristic} baseline"
        if self.kind == "alias":
            return f"{self.value}{suffix}"
        if self.kind == "model":
            return f"{self.address}{suffix}"
        return f"{self.kind}{suffix}"

    def evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "status": self.status, "name": self.name}
        if self.note:
            out["note"] = self.note
        if self.address:
            out["address"] = self.address
        out.update(VersionRef.of(self.outputs).known_fields())
        if self.heuristic:
            out["heuristic"] = self.heuristic
        if self.source:
            out["source"] = self.source
        return out


def _version_name(address: str, outputs: Mapping[str, Any]) -> str:
    label = VersionRef.of(outputs).label
    return f"{address} {label}" if label is not None else address


def plan_baseline(
    baseline: Baseline,
    desired: Desired,
    subject: str,
    candidate_fingerprint: str | None,
    peers: Peers | None,
) -> BaselinePlan:
    if baseline == "none":
        return BaselinePlan("none", "none", "none", "baseline: none")
    if isinstance(baseline, HeuristicBaseline):
        name = f"heuristic {baseline.heuristic}"
        if baseline.value is not None:
            name += f" ({baseline.value})"
        return BaselinePlan(
            "heuristic", "compare", name, heuristic=baseline.heuristic, value=baseline.value
        )
    if isinstance(baseline, ModelBaseline):
        address = baseline.model.removeprefix("${").removesuffix("}")
        if not address.startswith("models."):
            raise ProviderError(f'baseline model must be a model reference, got "{baseline.model}"')
        outputs = desired.inputs.get(address) or None
        name = _version_name(address, outputs or {})
        return BaselinePlan(
            "model", "compare", name, address=address, outputs=outputs, declared=True
        )
    if isinstance(baseline, AliasBaseline):
        if peers is None:
            raise ProviderError("baseline {alias: …} needs the registry (no peers in this context)")
        outputs = peers.get_alias(subject, baseline.alias)
        if not outputs:
            note = f"alias {baseline.alias!r} of {subject} is not set: no baseline to compare"
            return BaselinePlan("alias", "absent", f"alias {baseline.alias}", note)
        name = f"alias {baseline.alias} ({_version_name(subject, outputs)})"
        plan = _registered("alias", name, subject, outputs, candidate_fingerprint)
        return replace(plan, value=baseline.alias)
    if peers is None:  # outside mlx (a provider on its own): the version recorded before
        previous = dict(desired.prior_inputs.get(subject) or {})
        source = "recorded before this run"
    else:
        released = peers.released(subject, desired.address)
        previous = dict(released.outputs) if released is not None else {}
        source = released.source if released is not None else ""
    if not previous.get("fingerprint") and not VersionRef.of(previous).known:
        note = (
            f"first release of {subject}: no version has been released or passed this gate; "
            "absolute thresholds only"
        )
        return BaselinePlan("previous", "absent", "previous", note)
    name = f"previous ({_version_name(subject, previous)})"
    plan = _registered("previous", name, subject, previous, candidate_fingerprint)
    return replace(plan, source=f"the version users get now: {source}")


def _registered(
    kind: str,
    name: str,
    subject: str,
    outputs: Mapping[str, Any],
    candidate_fingerprint: str | None,
) -> BaselinePlan:
    same = candidate_fingerprint is not None and outputs.get("fingerprint") == candidate_fingerprint
    if same:
        note = "same fingerprint as the candidate: the subject did not change"
        return BaselinePlan(kind, "same", name, note, subject, outputs)
    return BaselinePlan(kind, "compare", name, address=subject, outputs=outputs)
