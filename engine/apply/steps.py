"""The steps carried out for one change, in order: resolve its body, judge a gate or check
a release, call its provider (a replacement of a ``create_before_destroy`` kind creates the
new object first), and hand its record to the state writer.

A change's record goes to the group commit without waiting (``pending``): the coordinator
(``engine.apply.applier``) starts its dependents once it is durable.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

import networkx as nx

from common.diagnostics import MlxError
from contract import Change as ProviderChange
from contract import Completion, Desired, Prior, Provider, ProviderError, Result
from controller.harness import Controlled
from engine.apply.gates import GateJudge
from engine.apply.memory import RunMemory
from engine.apply.outcomes import Outcome, OutcomeStatus
from engine.apply.recording import StepLedger, record_touched
from engine.apply.release_check import ReleaseCheck, driven_version
from engine.load.resolve import Resolver
from engine.plan.hashes import split_hashes
from engine.plan.model import Action, Reason, ResourceChange
from engine.plugins import ProviderSet, prior_of
from engine.values import Unknown, contains, redact, reveal
from specs.introspect import kind_info
from state.status import Status
from state.store import Record, StateWriter
from state.writes import RecordWrite

Echo = Callable[[str], None]


class Steps:
    """What applying one change does; safe across the apply's threads."""

    def __init__(
        self,
        *,
        memory: RunMemory,
        resolver: Resolver,
        graph: nx.DiGraph,
        decls: Mapping[str, Any],
        providers: ProviderSet,
        writer: StateWriter,
        gates: GateJudge,
        release: ReleaseCheck,
        salt: str,
        rollback: bool,
        echo: Echo,
    ):
        self.memory, self.resolver, self.graph, self.decls = memory, resolver, graph, decls
        self.providers, self.writer, self.gates, self.release = providers, writer, gates, release
        self.salt, self.rollback, self.echo = salt, rollback, echo
        self._lock = threading.Lock()
        #: records handed to the state writer and not yet known durable, by address
        self._pending: dict[str, Future[None]] = {}

    def pending(self, address: str) -> Future[None] | None:
        """The write of ``address``'s record, once (``None``: nothing was written)."""
        with self._lock:
            return self._pending.pop(address, None)

    def take(self, change: ResourceChange) -> Outcome:
        """Apply ``change``; raises what its provider or the engine raised."""
        provider = self.providers.get(change.provider, change.address)
        prior_rec = self.memory.records.get(change.address)
        prior = prior_of(prior_rec) if prior_rec else None
        if change.action is Action.DELETE:
            return self._delete(change, provider, prior)
        body = self._resolved(change)
        driven = driven_version(
            self.decls, self.graph, self.memory.start, change.address, change.section, body
        )
        desired = self._desired(change, provider, body, driven)
        base = self._base(change, body, desired)
        self.memory.applied_hashes(change.address, base.spec_hash, desired.fingerprint)
        if _unchanged_after_all(change, prior_rec, base):
            assert prior_rec is not None
            self.memory.remember(change.address, body, dict(prior_rec.outputs))
            return Outcome(
                change.address,
                change.action,
                OutcomeStatus.UNCHANGED,
                outputs=dict(prior_rec.outputs),
            )
        if (
            kind_info(change.section).release_field
            and driven is None  # what a rollout drives was checked when the rollout released it
            and self.release.releases_new(change.section, body, prior)
        ):
            self.release.check(change.address, change.section, body)
        result = self._carry_out(change, provider, prior, prior_rec, desired, base)
        return self._ended(change, body, result)

    def _resolved(self, change: ResourceChange) -> dict[str, Any]:
        body = self.resolver.resolve(change.address, self.memory.lookup)
        if contains(body, Unknown):
            raise MlxError(
                f"{change.address}: a referenced value is still unknown "
                "after its dependencies applied"
            )
        return body

    def _desired(
        self,
        change: ResourceChange,
        provider: Provider,
        body: dict[str, Any],
        driven: tuple[str, dict[str, Any]] | None,
    ) -> Desired:
        deps = list(self.graph.predecessors(change.address))
        inputs = {d: self.memory.outputs_of(d) for d in deps}
        if driven is not None:
            inputs[driven[0]] = driven[1]
        desired = Desired(
            change.address,
            change.section,
            change.name,
            reveal(body),
            None,
            inputs,
            {d: self.memory.recorded_outputs(d) for d in deps},
            restore=change.restore,
            env_refs=self.resolver.env_refs(change.address),
        )
        fingerprint = change.content_hash if change.restore else provider.fingerprint(desired)
        desired = replace(desired, fingerprint=fingerprint)
        self.providers.specs[change.address] = desired.spec
        return desired

    def _base(self, change: ResourceChange, body: dict[str, Any], desired: Desired) -> RecordWrite:
        """The change's record but what its result says (status, outputs, error)."""
        redacted = redact(body, self.salt)
        # nothing in the body is unknown any more (refused above): no need to look for it
        spec_hash, meta_hash = split_hashes(change.section, redacted, maybe_unknown=False)
        return RecordWrite(
            address=change.address,
            section=change.section,
            name=change.name,
            provider=change.provider,
            action=change.action.value,
            spec_hash=spec_hash,
            meta_hash=meta_hash,
            content_hash=desired.fingerprint,
            attributes=redacted,
            outputs={},
            dependencies=sorted(self.graph.predecessors(change.address)),
        )

    def _carry_out(
        self,
        change: ResourceChange,
        provider: Provider,
        prior: Prior | None,
        prior_rec: Record | None,
        desired: Desired,
        base: RecordWrite,
    ) -> Result:
        """Judge the gate or call the provider, and hand the record to the state writer."""
        ledger = None
        if isinstance(provider, Controlled):  # a controller's pass records its own steps
            ledger = StepLedger.for_apply(self.writer, self.providers, base)
            provider = provider.recording_to(ledger)
        if kind_info(change.section).is_gate:
            run = _gate_run(provider, prior, desired)
            result = self.gates.judge(change, prior, desired, base.spec_hash, run)
        else:
            result = self._call(change, provider, prior, prior_rec, desired, base)
        # a controller's pass recorded itself (``controller.harness``): its ledger's write
        recorded = ledger.written if ledger is not None else None
        if recorded is None:
            recorded = self.writer.put(
                replace(
                    base,
                    status=_status(result),
                    outputs=result.outputs,
                    error=result.message if result.failed else None,
                ),
                wait=False,  # dependents start once it is durable (``_settle``); others go on now
            )
        with self._lock:
            self._pending[change.address] = recorded
        if result.touched and ledger is None:
            record_touched(self.writer, self.providers, result.touched)
        return result

    def _ended(self, change: ResourceChange, body: dict[str, Any], result: Result) -> Outcome:
        if result.failed:
            return Outcome(
                change.address, change.action, OutcomeStatus.FAILED, result.message, result.outputs
            )
        self.memory.remember(change.address, body, result.outputs)
        if result.completion is Completion.IN_PROGRESS:  # dependents wait until it finishes
            return Outcome(
                change.address,
                change.action,
                OutcomeStatus.IN_PROGRESS,
                result.next_step or "continues later",
                result.outputs,
            )
        # an operation that finished in this apply says how (a rollout: "completed: …")
        done = result.next_step
        return Outcome(change.address, change.action, OutcomeStatus.OK, done, result.outputs)

    def _delete(self, change: ResourceChange, provider: Provider, prior: Prior | None) -> Outcome:
        if prior is not None:  # a record someone removed meanwhile: nothing left to delete
            provider.delete(prior)
        self.writer.remove(change.address)
        return Outcome(change.address, change.action, OutcomeStatus.OK)

    def _call(
        self,
        change: ResourceChange,
        provider: Provider,
        prior: Prior | None,
        prior_rec: Record | None,
        desired: Desired,
        base: RecordWrite,
    ) -> Result:
        """Create, update or replace one (non-gate) resource through its provider."""
        if change.action is Action.CREATE or prior is None:
            return provider.create(desired)
        if change.action is Action.REPLACE:
            return self._replace(change, provider, prior, desired)
        pc = ProviderChange(
            behaviour=prior_rec is not None and prior_rec.spec_hash != base.spec_hash,
            metadata=prior_rec is not None and prior_rec.meta_hash != base.meta_hash,
            content=prior_rec is not None and prior_rec.content_hash != desired.fingerprint,
            fields=tuple(f.path for f in change.fields),
            resume=prior.status == Status.IN_PROGRESS,
            rollback=self.rollback,
        )
        if Reason.DRIFTED in change.reasons or Reason.RELEASE_PENDING in change.reasons:
            # a drifted object is restored, a pending release made, whatever the hashes say
            pc = replace(pc, behaviour=True, content=True)
        return provider.update(prior, desired, pc)

    def _replace(
        self, change: ResourceChange, provider: Provider, prior: Prior, desired: Desired
    ) -> Result:
        info = kind_info(change.section)
        old = self.providers.get(prior_provider(self.memory.records, change), change.address)
        if info.keeps_history:
            # a registry adopts its object and registers the version: nothing is deleted
            return provider.create(desired)
        if info.create_before_destroy:
            result = provider.create(desired)
            if result.failed or result.completion is not Completion.DONE:
                return result
            try:
                old.delete(prior)
            except ProviderError as exc:  # the new object serves; the old one is left over
                self.echo(f"Warning: {change.address}: the replaced object was kept: {exc}")
            return result
        old.delete(prior)
        return provider.create(desired)


def prior_provider(records: Mapping[str, Record], change: ResourceChange) -> str:
    """The provider that holds the old object of a replacement (it may have changed)."""
    rec = records.get(change.address)
    return rec.provider if rec else change.provider


def _unchanged_after_all(
    change: ResourceChange, prior_rec: Record | None, base: RecordWrite
) -> bool:
    """An update planned only for inputs unknown at plan time that resolved to what is
    recorded: nothing to do."""
    return (
        change.action is Action.UPDATE
        and change.reasons == [Reason.UNKNOWN_INPUTS]
        and prior_rec is not None
        and prior_rec.spec_hash == base.spec_hash
        and prior_rec.meta_hash == base.meta_hash
        and prior_rec.content_hash == base.content_hash
    )


def _gate_run(provider: Provider, prior: Prior | None, desired: Desired) -> Callable[[], Result]:
    """Running a gate: its provider evaluates it again (a create the first time)."""
    if prior is None:
        return lambda: provider.create(desired)
    return lambda: provider.update(prior, desired, ProviderChange(True, True, True))


def _status(result: Result) -> Status:
    if result.completion is Completion.IN_PROGRESS:
        return Status.IN_PROGRESS
    return Status.FAILED if result.failed else Status.OK
