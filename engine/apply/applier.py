"""Plan → provider calls in graph order, each result committed as it completes.

Independent resources run in parallel (``--parallelism``). A failure skips
everything downstream of it and lets unrelated branches finish; a gate that
does not pass is recorded with its evidence and blocks its dependents the same
way. What a failure leaves behind depends on what failed: a failed *create*
leaves a tainted record (the next apply creates again; a registry adopts what
it finds), a failed *update* leaves the record as it was (the next apply tries
the update again) — so one network error never turns into a replacement.

Before anything is released to users (an alias moved, endpoint traffic given)
the applier checks the evidence itself: every gate the release requires must
have a passed verdict for exactly the subject's, the dataset's and the gate
definition's fingerprints (``engine.policy.evidence``), whatever the plan said.
"""

from __future__ import annotations

import heapq
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import networkx as nx

from common.diagnostics import MlxError
from contract import Change as ProviderChange
from contract import Completion, Desired, Prior, Provider, ProviderError, Result
from controller.harness import Controlled
from engine.apply.heartbeat import Heartbeat
from engine.apply.recording import StepLedger, record_touched
from engine.load.resolve import Resolver
from engine.plan.hashes import split_hashes
from engine.plan.model import Action, Plan, Reason, ResourceChange
from engine.plugins import ProviderSet, prior_of
from engine.policy import evidence
from engine.session import Session
from engine.values import Unknown, contains, redact, reveal
from specs.introspect import kind_info
from state.evidence import Verdict, now
from state.status import Status, VersionStatus
from state.store import Record, StateWriter
from state.writes import RecordWrite

Echo = Callable[[str], None]

#: What a heartbeat says while a resource's action runs long (Terraform's words).
_STILL = {
    Action.CREATE: "Still creating",
    Action.UPDATE: "Still modifying",
    Action.REPLACE: "Still replacing",
    Action.DELETE: "Still destroying",
    Action.RUN: "Still running",
}

_ING = {
    Action.CREATE: ("Creating...", "Creation complete"),
    Action.UPDATE: ("Modifying...", "Modifications complete"),
    Action.REPLACE: ("Replacing...", "Replacement complete"),
    Action.DELETE: ("Destroying...", "Destruction complete"),
    Action.RUN: ("Running gate...", "Gate passed"),
}


class OutcomeStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"  # a gate that ran and did not pass
    ERROR = "error"
    SKIPPED = "skipped"
    UNCHANGED = "unchanged"
    IN_PROGRESS = "in_progress"  # an operation that finishes later (a rollout step)


@dataclass
class Outcome:
    address: str
    action: Action
    status: OutcomeStatus
    message: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ApplyReport:
    serial: int | None
    outcomes: list[Outcome]

    def count(self, status: OutcomeStatus, *actions: Action) -> int:
        return sum(
            1 for o in self.outcomes if o.status == status and (not actions or o.action in actions)
        )

    @property
    def ok(self) -> bool:
        return not any(
            o.status in (OutcomeStatus.FAILED, OutcomeStatus.ERROR) for o in self.outcomes
        )

    def summary(self) -> dict[str, Any]:
        ok = OutcomeStatus.OK
        return {
            "added": self.count(ok, Action.CREATE, Action.REPLACE),
            "changed": self.count(ok, Action.UPDATE),
            "destroyed": self.count(ok, Action.DELETE)
            + sum(
                1
                for o in self.outcomes
                if o.status == ok
                and o.action is Action.REPLACE
                and not kind_info(o.address.split(".", 1)[0]).keeps_history
            ),
            "gates_passed": self.count(ok, Action.RUN),
            "gates_failed": self.count(OutcomeStatus.FAILED),
            "errors": self.count(OutcomeStatus.ERROR),
            "skipped": self.count(OutcomeStatus.SKIPPED),
            "in_progress": self.count(OutcomeStatus.IN_PROGRESS),
            # which evaluation justified (or stopped) this version: shown by `mlx history`
            "gates": {
                o.address: "passed" if o.status == ok else str(o.status)
                for o in self.outcomes
                if o.action is Action.RUN
                and o.status in (ok, OutcomeStatus.FAILED, OutcomeStatus.ERROR)
            },
        }


class Applier:
    def __init__(
        self,
        session: Session,
        plan: Plan,
        providers: ProviderSet,
        writer: StateWriter,
        echo: Echo,
        *,
        operation: str = "apply",
        parallelism: int = 10,
    ):
        self.session, self.plan, self.providers = session, plan, providers
        self.writer, self.echo, self.operation = writer, echo, operation
        self.parallelism = max(1, parallelism)
        self.graph = session.graph.graph
        self.resolver = Resolver(session.spec, session.graph, session.inputs)
        self.changes = {c.address: c for c in plan.changes}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.bodies: dict[str, dict[str, Any]] = {}
        #: hashes applied in this run, by address (a gate's definition for the release check)
        self.hashes: dict[str, tuple[str | None, str | None]] = {}
        self.blocked: set[str] = set()
        #: a no-op change skipped for its dependencies: what it was skipped for
        self._passed_through: dict[str, list[str]] = {}
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._records: dict[str, Record] = {}
        #: records handed to the state writer and not yet known durable, by address
        self._pending: dict[str, Future[None]] = {}
        #: State as it was when the run started (for "previous version" lookups).
        self.start = session.reader()
        self.beat = Heartbeat(echo)

    # -- entry point ----------------------------------------------------------------
    def run(self) -> ApplyReport:
        salt = self.writer.salt
        assert salt is not None
        self.salt = salt
        # "as recorded before this run" must not see what this run writes: read it now,
        # in one batch, for every change and everything the changes depend on
        wanted = set(self.changes)
        for address in self.changes:
            if address in self.graph:
                wanted |= set(nx.ancestors(self.graph, address))
        self.start.remember(wanted)
        self._records = {a: rec for a in self.changes if (rec := self.start.record(a)) is not None}
        serial = self.writer.begin(
            self.operation,
            actor=self.session.actor,
            spec=self.plan.resolved_spec,
            plan_hash=self.plan.digest(),
            spec_digest=self.plan.spec_digest,
            git_sha=self.session.git_sha,
        )
        self.serial = serial
        status, message = VersionStatus.COMPLETE, None
        try:
            self._deletes()
            self._forward()
        except KeyboardInterrupt:
            status, message = VersionStatus.INTERRUPTED, "interrupted by the user"
            raise
        finally:
            report = ApplyReport(serial, self.outcomes)
            if status is VersionStatus.COMPLETE and not report.ok:
                status = VersionStatus.FAILED
                message = "; ".join(
                    o.message or ""
                    for o in self.outcomes
                    if o.status in (OutcomeStatus.FAILED, OutcomeStatus.ERROR)
                )
            self.beat.close()
            self.writer.finish(status, report.summary(), message)
        return report

    # -- deletes: dependents first -------------------------------------------------------
    def _deletes(self) -> None:
        pending = {c.address: c for c in self.changes.values() if c.action is Action.DELETE}
        while pending:
            # a resource is deleted once nothing still pending depends on it
            ready = [
                a for a in pending if not any(a in pending[o].depends_on for o in pending if o != a)
            ] or list(pending)
            for address in sorted(ready):
                self._settle(self._run_one(pending.pop(address)))

    # -- creates, updates, replaces, gates: in graph order ---------------------------------
    def _waits_for(self, address: str, graph: nx.DiGraph | None = None) -> set[str]:
        """Planned changes this one must wait for: its ancestors that change.

        Transitive, because a no-op in between (a model whose dataset failed to
        update) must not let a gate downstream run as if nothing happened.
        """
        return {a for a in nx.ancestors(graph or self.graph, address) if a in self.changes}

    def _blocked_by(self, waits: dict[str, set[str]]) -> dict[str, set[str]]:
        """What a failure of which skips each change: its waits, less those it only runs
        after (``SpecGraph.ordering``: a gate a release's ``requires`` leaves out)."""
        if not self.session.graph.ordering:
            return waits
        view = self.session.graph.dependency_view()
        return {a: self._waits_for(a, view) for a in waits}

    def _forward(self) -> None:
        """Run every change once all it waits for is done: a ready queue, not a rescan."""
        order = [a for a in self.session.graph.order if a in self.changes]
        position = {a: i for i, a in enumerate(order)}
        waits = {a: self._waits_for(a) for a in order}
        blockers = self._blocked_by(waits)
        pending = {a: len(w) for a, w in waits.items()}
        dependents: dict[str, list[str]] = {a: [] for a in order}
        for address, before in waits.items():
            for b in before:
                dependents[b].append(address)
        ready = [(position[a], a) for a in order if not pending[a]]  # a heap, in plan order
        heapq.heapify(ready)
        running: dict[Future[_Finished], str] = {}
        #: finished futures, in the order they finish: waiting on the whole running set
        #: (``concurrent.futures.wait``) costs O(running) per wake-up, O(n²) for an apply
        #: of 10,000 resources, where a queue costs O(1)
        done: queue.SimpleQueue[Future[_Finished]] = queue.SimpleQueue()

        def finished(address: str) -> None:
            for d in dependents[address]:
                pending[d] -= 1
                if not pending[d]:
                    heapq.heappush(ready, (position[d], d))

        with ThreadPoolExecutor(
            max_workers=self.parallelism, thread_name_prefix="mlx-apply"
        ) as pool:
            lanes = _Lanes(pool, self.parallelism)
            try:
                while ready or running:
                    while ready:
                        _, address = heapq.heappop(ready)
                        change = self.changes[address]
                        blocked = [p for p in blockers[address] if p in self.blocked]
                        if blocked:
                            self._skip(change, blocked)
                            finished(address)
                        elif change.action is Action.NOOP:
                            finished(address)
                        else:
                            lane = lanes.lane(change.provider, self._provider_or_none(change))
                            future = lane.submit(self._run_one, change)
                            running[future] = address
                            future.add_done_callback(lambda f: _once_recorded(f, done.put))
                    if not running:
                        continue
                    work = done.get()
                    address = running.pop(work)
                    self._settle(work.result())
                    finished(address)
            except BaseException:
                # Ctrl-C (or a failure of mlx itself): what runs finishes and is recorded,
                # nothing queued starts, as Terraform stops on an interrupt
                lanes.cancel()
                raise
            finally:
                lanes.close()

    def _provider_or_none(self, change: ResourceChange) -> Provider | None:
        """The change's provider, or ``None`` when it cannot be built (the change's own run
        reports why)."""
        try:
            return self.providers.get(change.provider, change.address)
        except Exception:
            return None

    def _skip(self, change: ResourceChange, because: list[str]) -> None:
        with self._lock:
            self.blocked.add(change.address)
            # a dependency that had nothing to do was only passed through: name what it
            # waited on instead (the failed gate, not the unchanged endpoint in between)
            because = sorted({c for a in because for c in self._passed_through.get(a, [a])})
            if change.action is Action.NOOP:
                self._passed_through[change.address] = because
        if change.action is not Action.NOOP:
            waiting = [a for a in because if self._in_progress(a)]
            if waiting and len(waiting) == len(because):
                msg = f"waits for {', '.join(sorted(waiting))} to finish"
            else:
                msg = f"skipped: depends on {', '.join(sorted(because))}, which did not apply"
            self._outcome(Outcome(change.address, change.action, OutcomeStatus.SKIPPED, msg))
            self.echo(f"{change.address}: {msg}")

    def _in_progress(self, address: str) -> bool:
        return any(
            o.address == address and o.status is OutcomeStatus.IN_PROGRESS for o in self.outcomes
        )

    # -- one resource ------------------------------------------------------------------------
    def _run_one(self, change: ResourceChange) -> _Finished:
        """Run one change; its record may still be on its way to the state (``pending``)."""
        started = time.monotonic()
        begin, _ = _ING.get(change.action, ("", ""))
        self.echo(f"{change.address}: {begin}")
        try:
            with self.beat.watch(change.address, _STILL.get(change.action)):
                outcome = self._apply(change)
        except _EXPECTED as exc:
            outcome = self._failed(change, exc)
        except Exception as exc:
            outcome = self._failed(change, exc, unexpected=True)
        with self._lock:
            pending = self._pending.pop(change.address, None)
        return _Finished(change, outcome, started, pending)

    def _settle(self, done: _Finished) -> None:
        """A change is over once its record is durable: count it and say so."""
        outcome = done.outcome
        error = done.pending.exception() if done.pending is not None else None
        if error is not None:
            outcome = self._failed(done.change, error, unexpected=not isinstance(error, _EXPECTED))
        self._outcome(outcome)
        self.echo(self._line(done.change, outcome, time.monotonic() - done.started))

    @staticmethod
    def _line(change: ResourceChange, outcome: Outcome, elapsed: float) -> str:
        at = f"{change.address}:"
        if outcome.status is OutcomeStatus.OK:
            done = _ING[change.action][1]
            if Reason.EVIDENCE_REUSED in change.reasons:
                done = "Verdict reused"
            said = f": {outcome.message}" if outcome.message else ""
            return f"{at} {done} after {elapsed:.1f}s{_brief(outcome.outputs)}{said}"
        if outcome.status is OutcomeStatus.UNCHANGED:
            return f"{at} no changes after all (its inputs resolved to the same values)"
        if outcome.status is OutcomeStatus.IN_PROGRESS:
            return f"{at} In progress after {elapsed:.1f}s: {outcome.message}"
        if outcome.status is OutcomeStatus.FAILED:
            return f"{at} Gate FAILED after {elapsed:.1f}s: {outcome.message}"
        return f"{at} Error after {elapsed:.1f}s: {outcome.message}"

    def _apply(self, change: ResourceChange) -> Outcome:
        key = change.provider
        provider = self.providers.get(key, change.address)
        prior_rec = self._records.get(change.address)
        prior = _prior(prior_rec) if prior_rec else None
        if change.action is Action.DELETE:
            return self._delete(change, provider, prior)

        body = self.resolver.resolve(change.address, self._lookup)
        if contains(body, Unknown):
            raise MlxError(
                f"{change.address}: a referenced value is still unknown "
                "after its dependencies applied"
            )
        deps = list(self.graph.predecessors(change.address))
        inputs = {d: self.outputs.get(d) or self._recorded_outputs(d) for d in deps}
        driven = self._driven_version(change.address, change.section, body)
        if driven is not None:
            inputs[driven[0]] = driven[1]
        desired = Desired(
            change.address,
            change.section,
            change.name,
            reveal(body),
            None,
            inputs,
            {d: self._recorded_outputs(d) for d in deps},
            restore=change.restore,
            env_refs=self.resolver.env_refs(change.address),
        )
        fingerprint = change.content_hash if change.restore else provider.fingerprint(desired)
        desired = replace(desired, fingerprint=fingerprint)
        self.providers.specs[change.address] = desired.spec
        redacted = redact(body, self.salt)
        # nothing in the body is unknown any more (refused above): no need to look for it
        spec_hash, meta_hash = split_hashes(change.section, redacted, maybe_unknown=False)
        with self._lock:
            self.hashes[change.address] = (spec_hash, fingerprint)
        if (
            change.action is Action.UPDATE
            and change.reasons == [Reason.UNKNOWN_INPUTS]
            and prior_rec is not None
            and prior_rec.spec_hash == spec_hash
            and prior_rec.meta_hash == meta_hash
            and prior_rec.content_hash == desired.fingerprint
        ):
            self._remember(change.address, body, dict(prior_rec.outputs))
            return Outcome(
                change.address,
                change.action,
                OutcomeStatus.UNCHANGED,
                outputs=dict(prior_rec.outputs),
            )

        info = kind_info(change.section)
        if (
            info.release_field
            and driven is None  # what a rollout drives was checked when the rollout released it
            and self._releases_new(change.section, body, prior)
        ):
            self._check_release(change.address, change.section, body)
        base = RecordWrite(
            address=change.address,
            section=change.section,
            name=change.name,
            provider=key,
            action=change.action.value,
            spec_hash=spec_hash,
            meta_hash=meta_hash,
            content_hash=desired.fingerprint,
            attributes=redacted,
            outputs={},
            dependencies=sorted(self.graph.predecessors(change.address)),
        )
        ledger = None
        if isinstance(provider, Controlled):  # a controller's pass records its own steps
            ledger = StepLedger.for_apply(self.writer, self.providers, base)
            provider = provider.recording_to(ledger)
        if info.is_gate:
            result = self._judge(change, provider, prior, desired, spec_hash)
        else:
            result = self._call(change, provider, prior, prior_rec, desired, spec_hash, meta_hash)

        if result.completion is Completion.IN_PROGRESS:
            status = Status.IN_PROGRESS
        else:
            status = Status.FAILED if result.failed else Status.OK
        # a controller's pass recorded itself (``controller.harness``): its ledger's write
        recorded = ledger.written if ledger is not None else None
        if recorded is None:
            recorded = self.writer.put(
                replace(
                    base,
                    status=status,
                    outputs=result.outputs,
                    error=result.message if result.failed else None,
                ),
                wait=False,  # dependents start once it is durable (``_settle``); others go on now
            )
        with self._lock:
            self._pending[change.address] = recorded
        if result.touched and ledger is None:
            record_touched(self.writer, self.providers, result.touched)
        if result.failed:
            with self._lock:
                self.blocked.add(change.address)
            return Outcome(
                change.address, change.action, OutcomeStatus.FAILED, result.message, result.outputs
            )
        self._remember(change.address, body, result.outputs)
        if result.completion is Completion.IN_PROGRESS:
            with self._lock:
                self.blocked.add(change.address)  # dependents wait until it finishes
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
        spec_hash: str | None,
        meta_hash: str,
    ) -> Result:
        """Create, update or replace one (non-gate) resource through its provider."""
        if change.action is Action.CREATE or prior is None:
            return provider.create(desired)
        if change.action is Action.REPLACE:
            return self._replace(change, provider, prior, desired)
        pc = ProviderChange(
            behaviour=prior_rec is not None and prior_rec.spec_hash != spec_hash,
            metadata=prior_rec is not None and prior_rec.meta_hash != meta_hash,
            content=prior_rec is not None and prior_rec.content_hash != desired.fingerprint,
            fields=tuple(f.path for f in change.fields),
            resume=prior.status == Status.IN_PROGRESS,
            rollback=self.plan.options.operation == "rollback",
        )
        if Reason.DRIFTED in change.reasons or Reason.RELEASE_PENDING in change.reasons:
            # a drifted object is restored, a pending release made, whatever the hashes say
            pc = replace(pc, behaviour=True, content=True)
        return provider.update(prior, desired, pc)

    def _replace(
        self, change: ResourceChange, provider: Provider, prior: Prior, desired: Desired
    ) -> Result:
        info = kind_info(change.section)
        old = self.providers.get(prior_provider(self._records, change), change.address)
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

    # -- gates: verdicts bound to fingerprints ------------------------------------------------
    def _judge(
        self,
        change: ResourceChange,
        provider: Provider,
        prior: Prior | None,
        desired: Desired,
        spec_hash: str | None,
    ) -> Result:
        body = desired.spec
        judged = evidence.judged(
            change.address, dict(body), spec_hash, desired.fingerprint, self._fingerprint
        )
        log = self.writer.evidence()
        if Reason.EVIDENCE_REUSED in change.reasons and judged is not None:
            verdict = log.passed(judged.key)
            if verdict is not None:  # still true at apply time: record it, run nothing
                return Result({**verdict.outputs, "judged": judged.as_dict(), "reused": True})
        if Reason.METADATA_CHANGED in change.reasons and change.action is Action.UPDATE:
            assert prior is not None
            return Result(dict(prior.outputs), failed=not prior.outputs.get("passed", False))
        if prior is None:
            result = provider.create(desired)
        else:
            result = provider.update(prior, desired, ProviderChange(True, True, True))
        outputs = dict(result.outputs)
        if judged is not None:
            outputs["judged"] = judged.as_dict()
            subject_outputs = self._outputs_of(judged.subject)
            log.add(
                Verdict(
                    key=judged.key,
                    gate=change.address,
                    subject=judged.subject,
                    subject_fingerprint=judged.subject_fingerprint,
                    subject_version=_text(evidence.version_of(subject_outputs)),
                    dataset=judged.dataset,
                    dataset_fingerprint=judged.dataset_fingerprint,
                    definition=judged.definition,
                    passed=not result.failed,
                    serial=self.serial,
                    created_at=now(),
                    message=result.message,
                    subject_outputs={
                        k: subject_outputs[k]
                        for k in ("version", "revision", "fingerprint", "uri")
                        if k in subject_outputs
                    },
                    outputs={k: v for k, v in outputs.items() if k != "judged"},
                )
            )
        return replace(result, outputs=outputs)

    def _driven_version(
        self, address: str, section: str, body: dict[str, Any]
    ) -> tuple[str, dict[str, Any]] | None:
        """An endpoint a rollout drives serves what that rollout released last (its subject's
        newest version reaches it only through the rollout)."""
        from engine.policy.released import driver_of, released_outputs

        subject = evidence.released_subject(section, body)
        driver = driver_of(self.session.spec.decls, self.graph, address) if subject else None
        if driver is None or subject is None:
            return None
        rec = self.start.record(driver)
        released = released_outputs(dict(rec.outputs)) if rec else None
        return (subject, released) if released else None

    def _releases_new(self, section: str, body: dict[str, Any], prior: Prior | None) -> bool:
        """Whether applying this would give users another version than they get now."""
        subject = evidence.released_subject(section, body)
        if subject is None:
            return False
        return prior is None or prior.outputs.get("fingerprint") != self._fingerprint(subject)

    def _check_release(self, address: str, section: str, body: dict[str, Any]) -> None:
        """Refuse to release a version that any required gate has not passed for exactly."""
        subject = evidence.released_subject(section, body)
        if subject is None:
            return
        fingerprint = self._fingerprint(subject)
        version = evidence.version_of(self._outputs_of(subject))
        label = f"{subject} v{version}" if version is not None else subject
        if fingerprint is None:
            raise evidence.ReleaseRefused(
                f"refusing to release {label}: it has no registered version yet"
            )
        log = self.writer.evidence()
        decls = self.session.spec.decls
        for gate in evidence.required_gates(decls, address, body):
            judged = self._judged_now(gate)
            if judged is None or log.passed(judged.key) is None:
                what = judged.describe(version) if judged else label
                raise evidence.ReleaseRefused(
                    f"refusing to release {label}: {gate} has not passed for exactly {what}; "
                    f"run `mlx apply` (the gate is due) or `mlx eval {gate.split('.', 1)[1]}`"
                )
        for gate in evidence.skipped_gates(decls, address, body):
            judged = self._judged_now(gate)
            latest = log.latest(judged.key) if judged is not None else None
            if judged is not None and latest is not None and not latest.passed:
                raise evidence.ReleaseRefused(
                    f"refusing to release {label}: {gate} failed for exactly "
                    f"{judged.describe(version)} (state version {latest.serial}); "
                    f"{address}'s requires does not wait for {gate} to pass, but never "
                    "releases a version it rejected"
                )

    def _judged_now(self, gate: str) -> evidence.Judged | None:
        """What ``gate`` judges with the spec and the fingerprints of this run."""
        gate_body = self._body_of(gate)
        if gate_body is None:
            return None
        spec_hash, content_hash = self._gate_identity(gate)
        return evidence.judged(gate, gate_body, spec_hash, content_hash, self._fingerprint)

    def _gate_identity(self, gate: str) -> tuple[str | None, str | None]:
        if gate in self.hashes:
            return self.hashes[gate]
        rec = self._records.get(gate) or self.start.record(gate)
        return (rec.spec_hash, rec.content_hash) if rec else (None, None)

    def _body_of(self, address: str) -> dict[str, Any] | None:
        if address in self.bodies:
            return self.bodies[address]
        if address in self.session.spec.decls:
            return self.resolver.resolve(address, self._lookup)
        return None

    def _fingerprint(self, address: str) -> str | None:
        outputs = self._outputs_of(address)
        value = outputs.get("fingerprint")
        if value is None and address not in self.outputs:
            rec = self._records.get(address) or self.start.record(address)
            value = rec.content_hash if rec else None
        return value if isinstance(value, str) else None

    def _outputs_of(self, address: str) -> dict[str, Any]:
        return self.outputs.get(address) or self._recorded_outputs(address)

    # -- failures ------------------------------------------------------------------------------
    def _failed(
        self, change: ResourceChange, exc: BaseException, unexpected: bool = False
    ) -> Outcome:
        with self._lock:
            self.blocked.add(change.address)
        message = str(exc) if not unexpected else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, MlxError):
            message = "; ".join(d.summary for d in exc.diagnostics)
        try:
            self._record_failure(change, message)
        except Exception as state_exc:
            message += f" (and recording the failure failed: {state_exc})"
        return Outcome(change.address, change.action, OutcomeStatus.ERROR, message)

    def _record_failure(self, change: ResourceChange, message: str) -> None:
        """What a failure leaves in state: a tainted record only where a create failed."""
        recorded = change.address in self._records
        if not recorded and change.action in (Action.CREATE, Action.REPLACE, Action.RUN):
            self.writer.put(
                RecordWrite(
                    address=change.address,
                    section=change.section,
                    name=change.name,
                    provider=change.provider,
                    action=change.action.value,
                    status=Status.TAINTED,
                    spec_hash=None,
                    meta_hash=None,
                    content_hash=None,
                    attributes=change.after or {},
                    outputs={},
                    dependencies=change.depends_on,
                    error=message,
                )
            )
        elif change.action is Action.REPLACE and not (
            kind_info(change.section).keeps_history
            or kind_info(change.section).create_before_destroy
        ):
            # the old object was deleted before the create failed
            self.writer.taint(change.address, message, change.action.value)
        else:
            # a failed update, delete or re-create keeps the record: the next apply retries
            self.writer.note(change.address, change.action.value, message)

    # -- lookups ---------------------------------------------------------------------------
    def _remember(self, address: str, body: dict[str, Any], outputs: dict[str, Any]) -> None:
        with self._lock:
            self.bodies[address] = body
            self.outputs[address] = outputs

    def _recorded_outputs(self, address: str) -> dict[str, Any]:
        """Outputs as recorded when this run started."""
        rec = self._records.get(address) or self.start.record(address)
        return dict(rec.outputs) if rec else {}

    def _lookup(self, address: str, attr: str) -> Any:
        section = address.split(".", 1)[0]
        if attr in kind_info(section).field_names:
            body = self.bodies.get(address)
            if body is None:
                body = self.resolver.resolve(address, self._lookup)
            return body.get(attr)
        if address in self.outputs:
            return self.outputs[address].get(attr)
        return self._recorded_outputs(address).get(attr)

    def _outcome(self, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)


def prior_provider(records: dict[str, Record], change: ResourceChange) -> str:
    """The provider that holds the old object of a replacement (it may have changed)."""
    rec = records.get(change.address)
    return rec.provider if rec else change.provider


def _prior(rec: Record) -> Prior:
    return prior_of(rec)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _brief(outputs: dict[str, Any]) -> str:
    shown = [f"{k}={outputs[k]}" for k in ("version", "revision", "passed") if k in outputs]
    return f" [{', '.join(shown)}]" if shown else ""


#: What a provider or the engine raises for a resource that did not apply (reported as
#: its error); anything else is reported with its type, as unexpected.
_EXPECTED = (ProviderError, MlxError, OSError, ValueError, KeyError, TypeError, RuntimeError)


@dataclass
class _Finished:
    change: ResourceChange
    outcome: Outcome
    started: float
    #: the resource's record on its way to the state; ``None`` when nothing was written
    pending: Future[None] | None


def _once_recorded(work: Future[_Finished], then: Callable[[Future[_Finished]], None]) -> None:
    """Call ``then(work)`` once the change has run and its record is durable too."""
    if work.cancelled():  # an interrupted apply dropped it before it started
        return
    done = None if work.exception() else work.result()
    if done is not None and done.pending is not None:
        done.pending.add_done_callback(lambda _: then(work))
    else:
        then(work)


class _Lanes:
    """Where a change runs: the shared pool, or a narrower lane of its provider's.

    A provider says how many of its calls gain from running at once (``max_parallel``):
    the local registry's calls are Python and small local writes, and under the GIL more
    threads only contend (an apply of 10,000 local resources spent more time in futex
    calls than in its work). The rest share ``--parallelism`` threads.
    """

    def __init__(self, pool: ThreadPoolExecutor, parallelism: int):
        self.pool, self.parallelism = pool, parallelism
        self._lanes: dict[str, ThreadPoolExecutor] = {}

    def lane(self, key: str, provider: Provider | None) -> ThreadPoolExecutor:
        limit = getattr(provider, "max_parallel", None)
        if limit is None or limit >= self.parallelism:
            return self.pool
        if key not in self._lanes:
            self._lanes[key] = ThreadPoolExecutor(
                max_workers=max(1, limit), thread_name_prefix=f"mlx-apply-{key}"
            )
        return self._lanes[key]

    def cancel(self) -> None:
        """Drop every change queued and not started, in the pool and in every lane."""
        for executor in (self.pool, *self._lanes.values()):
            executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        for lane in self._lanes.values():
            lane.shutdown(wait=True)
