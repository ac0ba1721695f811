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

import queue
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import networkx as nx

from contract import Provider
from engine.apply.failures import EXPECTED, failed
from engine.apply.gates import GateJudge
from engine.apply.heartbeat import Heartbeat
from engine.apply.memory import RunMemory
from engine.apply.outcomes import (
    ApplyReport,
    Outcome,
    OutcomeStatus,
    begin_line,
    outcome_line,
    still_doing,
)
from engine.apply.release_check import ReleaseCheck
from engine.apply.schedule import Blocked, Lanes, ReadyQueue, blocked_by, delete_order, waits_for
from engine.apply.steps import Steps, prior_provider
from engine.load.resolve import Resolver
from engine.plan.model import Action, Plan, ResourceChange
from engine.plugins import ProviderSet
from engine.session import Session
from state.status import VersionStatus
from state.store import StateWriter

__all__ = ["Applier", "ApplyReport", "Outcome", "OutcomeStatus", "prior_provider"]

Echo = Callable[[str], None]


class Applier:
    """One apply: deletes, then every other change in graph order, each through ``Steps``;
    the version's outcome recorded at the end (``ApplyReport``)."""

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
        self.outcomes: list[Outcome] = []
        self.blocked = Blocked()
        #: State as it was when the run started (for "previous version" lookups).
        self.start = session.reader()
        self.beat = Heartbeat(echo)

    # -- entry point ----------------------------------------------------------------
    def run(self) -> ApplyReport:
        serial = self._begin()
        status, message = VersionStatus.COMPLETE, None
        try:
            for address in delete_order(
                {a: c for a, c in self.changes.items() if c.action is Action.DELETE}
            ):
                self._settle(self._run_one(self.changes[address]))
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

    def _begin(self) -> int:
        """Read what this run starts from, begin its state version, and set up its steps."""
        salt = self.writer.salt
        assert salt is not None
        # "as recorded before this run" must not see what this run writes: read it now,
        # in one batch, for every change and everything the changes depend on
        wanted = set(self.changes)
        for address in self.changes:
            if address in self.graph:
                wanted |= set(nx.ancestors(self.graph, address))
        self.start.remember(wanted)
        records = {a: rec for a in self.changes if (rec := self.start.record(a)) is not None}
        self.serial = self.writer.begin(
            self.operation,
            actor=self.session.actor,
            spec=self.plan.resolved_spec,
            plan_hash=self.plan.digest(),
            spec_digest=self.plan.spec_digest,
            git_sha=self.session.git_sha,
        )
        decls = self.session.spec.decls
        self.memory = RunMemory(self.start, records, self.resolver, decls)
        log = self.writer.evidence()
        gates = GateJudge(self.memory, log, self.serial)
        self.steps = Steps(
            memory=self.memory,
            resolver=self.resolver,
            graph=self.graph,
            decls=decls,
            providers=self.providers,
            writer=self.writer,
            gates=gates,
            release=ReleaseCheck(gates, log, decls),
            salt=salt,
            rollback=self.plan.options.operation == "rollback",
            echo=self.echo,
        )
        return self.serial

    # -- creates, updates, replaces, gates: in graph order ---------------------------------
    def _forward(self) -> None:
        """Run every change once all it waits for is done: a ready queue, not a rescan."""
        order = [a for a in self.session.graph.order if a in self.changes]
        waits = {a: waits_for(self.graph, a, self.changes) for a in order}
        graph = self.session.graph
        view = graph.dependency_view() if graph.ordering else None
        blockers = blocked_by(waits, view, self.changes)
        ready = ReadyQueue(order, waits)
        running: dict[Future[_Finished], str] = {}
        #: finished futures, in the order they finish: waiting on the whole running set
        #: (``concurrent.futures.wait``) costs O(running) per wake-up, O(n²) for an apply
        #: of 10,000 resources, where a queue costs O(1)
        done: queue.SimpleQueue[Future[_Finished]] = queue.SimpleQueue()
        with ThreadPoolExecutor(
            max_workers=self.parallelism, thread_name_prefix="mlx-apply"
        ) as pool:
            lanes = Lanes(pool, self.parallelism)
            try:
                while ready or running:
                    while ready:
                        self._start(ready, blockers, lanes, running, done)
                    if not running:
                        continue
                    work = done.get()
                    address = running.pop(work)
                    self._settle(work.result())
                    ready.finished(address)
            except BaseException:
                # Ctrl-C (or a failure of mlx itself): what runs finishes and is recorded,
                # nothing queued starts, as Terraform stops on an interrupt
                lanes.cancel()
                raise
            finally:
                lanes.close()

    def _start(
        self,
        ready: ReadyQueue,
        blockers: dict[str, set[str]],
        lanes: Lanes,
        running: dict[Future[_Finished], str],
        done: queue.SimpleQueue[Future[_Finished]],
    ) -> None:
        """Start the next ready change — or skip it, or pass a no-op by."""
        address = ready.pop()
        change = self.changes[address]
        blocked = self.blocked.among(blockers[address])
        if blocked:
            self._skip(change, blocked)
            ready.finished(address)
        elif change.action is Action.NOOP:
            ready.finished(address)
        else:
            lane = lanes.lane(change.provider, self._provider_or_none(change))
            future = lane.submit(self._run_one, change)
            running[future] = address
            future.add_done_callback(lambda f: _once_recorded(f, done.put))

    def _provider_or_none(self, change: ResourceChange) -> Provider | None:
        """The change's provider, or ``None`` when it cannot be built (the change's own run
        reports why)."""
        try:
            return self.providers.get(change.provider, change.address)
        except Exception:
            return None

    def _skip(self, change: ResourceChange, because: list[str]) -> None:
        msg = self.blocked.skip(change, because)
        if msg is not None:
            self.outcomes.append(Outcome(change.address, change.action, OutcomeStatus.SKIPPED, msg))
            self.echo(f"{change.address}: {msg}")

    # -- one resource ------------------------------------------------------------------------
    def _run_one(self, change: ResourceChange) -> _Finished:
        """Run one change; its record may still be on its way to the state (``pending``)."""
        started = time.monotonic()
        self.echo(begin_line(change))
        try:
            with self.beat.watch(change.address, still_doing(change.action)):
                outcome = self.steps.take(change)
        except EXPECTED as exc:
            outcome = self._failed(change, exc)
        except Exception as exc:
            outcome = self._failed(change, exc, unexpected=True)
        return _Finished(change, outcome, started, self.steps.pending(change.address))

    def _failed(
        self, change: ResourceChange, exc: BaseException, unexpected: bool = False
    ) -> Outcome:
        recorded = change.address in self.memory.records
        return failed(self.writer, change, exc, recorded=recorded, unexpected=unexpected)

    def _settle(self, done: _Finished) -> None:
        """A change is over once its record is durable: count it, say so, and block what
        waits for it unless it applied."""
        outcome = done.outcome
        error = done.pending.exception() if done.pending is not None else None
        if error is not None:
            outcome = self._failed(done.change, error, unexpected=not isinstance(error, EXPECTED))
        if outcome.status in _BLOCKS:
            self.blocked.block(
                outcome.address, in_progress=outcome.status is OutcomeStatus.IN_PROGRESS
            )
        self.outcomes.append(outcome)
        self.echo(outcome_line(done.change, outcome, time.monotonic() - done.started))


#: outcomes whose dependents are skipped (an operation in progress: they wait for it)
_BLOCKS = (OutcomeStatus.FAILED, OutcomeStatus.ERROR, OutcomeStatus.IN_PROGRESS)


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
