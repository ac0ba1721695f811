"""Plan → provider calls in graph order, each result committed as it completes.

Independent resources run in parallel (``--parallelism``). A failure marks
its resource tainted, skips everything downstream of it, and lets unrelated
branches finish; a gate that does not pass is recorded with its evidence and
blocks its dependents the same way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any

import networkx as nx

from engine.diagnostics import MlxError
from engine.hashing import split_hashes
from engine.plan import Action, Change, Plan, Reason
from engine.plugins import ProviderSet
from engine.resolve import Resolver
from engine.session import Session
from engine.values import Unknown, contains, redact, reveal
from providers.contract import Change as ProviderChange
from providers.contract import Desired, Prior, ProviderError, Result
from state.store import Record, StateWriter

Echo = Callable[[str], None]

_ING = {
    Action.CREATE: ("Creating...", "Creation complete"),
    Action.UPDATE: ("Modifying...", "Modifications complete"),
    Action.REPLACE: ("Replacing...", "Replacement complete"),
    Action.DELETE: ("Destroying...", "Destruction complete"),
    Action.RUN: ("Running gate...", "Gate passed"),
}


@dataclass
class Outcome:
    address: str
    action: Action
    status: str  # ok | failed | error | skipped | unchanged
    message: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ApplyReport:
    serial: int | None
    outcomes: list[Outcome]

    def count(self, status: str, *actions: Action) -> int:
        return sum(
            1 for o in self.outcomes if o.status == status and (not actions or o.action in actions)
        )

    @property
    def ok(self) -> bool:
        return not any(o.status in ("failed", "error") for o in self.outcomes)

    def summary(self) -> dict[str, Any]:
        return {
            "added": self.count("ok", Action.CREATE, Action.REPLACE),
            "changed": self.count("ok", Action.UPDATE),
            "destroyed": self.count("ok", Action.DELETE, Action.REPLACE),
            "gates_passed": self.count("ok", Action.RUN),
            "gates_failed": self.count("failed"),
            "errors": self.count("error"),
            "skipped": self.count("skipped"),
            # which evaluation justified (or stopped) this version: shown by `mlx history`
            "gates": {
                o.address: "passed" if o.status == "ok" else o.status
                for o in self.outcomes
                if o.action is Action.RUN and o.status in ("ok", "failed", "error")
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
        self.blocked: set[str] = set()
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._records: dict[str, Record] = {}
        #: State as it was when the run started (for "previous version" lookups).
        self.start = session.reader()

    # -- entry point ----------------------------------------------------------------
    def run(self) -> ApplyReport:
        salt = self.writer.salt
        assert salt is not None
        self.salt = salt
        # "as recorded before this run" must not see what this run writes: read it now,
        # in one batch, for every change and everything the changes depend on
        self.start.remember(
            set(self.changes) | {p for a in self.changes for p in self.graph.predecessors(a)}
        )
        self._records = {
            a: rec
            for a, c in self.changes.items()
            if c.action is not Action.CREATE and (rec := self.start.record(a)) is not None
        }
        serial = self.writer.begin(
            self.operation,
            actor=self.session.actor,
            spec=self.plan.resolved_spec,
            plan_hash=self.plan.digest(),
            spec_digest=self.plan.spec_digest,
            git_sha=self.session.git_sha,
        )
        status, message = "complete", None
        try:
            self._deletes()
            self._forward()
        except KeyboardInterrupt:
            status, message = "interrupted", "interrupted by the user"
            raise
        finally:
            report = ApplyReport(serial, self.outcomes)
            if status == "complete" and not report.ok:
                status = "failed"
                message = "; ".join(
                    o.message or "" for o in self.outcomes if o.status in ("failed", "error")
                )
            self.writer.finish(status, report.summary(), message)
        return report

    # -- deletes: dependents first -------------------------------------------------------
    def _deletes(self) -> None:
        deletes = [c for c in self.changes.values() if c.action is Action.DELETE]
        pending = {c.address: c for c in deletes}
        while pending:
            # a resource is deleted once nothing still pending depends on it
            ready = [
                a for a in pending if not any(a in pending[o].depends_on for o in pending if o != a)
            ] or list(pending)
            for address in sorted(ready):
                change = pending.pop(address)
                self._run_one(change)

    # -- creates, updates, replaces, gates: in graph order ---------------------------------
    def _waits_for(self, address: str) -> list[str]:
        """Planned changes this one must wait for: its ancestors that change.

        Transitive, because a no-op in between (a model whose dataset failed to
        update) must not let a gate downstream run as if nothing happened.
        """
        return [a for a in nx.ancestors(self.graph, address) if a in self.changes]

    def _forward(self) -> None:
        order = [a for a in self.session.graph.order if a in self.changes]
        done: set[str] = set()
        running: dict[Future[None], str] = {}
        remaining = list(order)
        waits = {a: self._waits_for(a) for a in order}
        with ThreadPoolExecutor(
            max_workers=self.parallelism, thread_name_prefix="mlx-apply"
        ) as pool:
            while remaining or running:
                progressed = False
                for address in list(remaining):
                    preds = waits[address]
                    if any(p not in done for p in preds):
                        continue
                    remaining.remove(address)
                    progressed = True
                    change = self.changes[address]
                    if any(p in self.blocked for p in preds):
                        self._skip(change, [p for p in preds if p in self.blocked])
                        done.add(address)
                        continue
                    if change.action is Action.NOOP:
                        done.add(address)
                        continue
                    running[pool.submit(self._run_one, change)] = address
                if not running:
                    if not progressed and remaining:  # pragma: no cover - graph is a DAG
                        raise RuntimeError(f"apply is stuck on {remaining}")
                    continue
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in finished:
                    address = running.pop(fut)
                    fut.result()
                    done.add(address)

    def _skip(self, change: Change, because: list[str]) -> None:
        with self._lock:
            self.blocked.add(change.address)
        if change.action is not Action.NOOP:
            msg = f"skipped: depends on {', '.join(sorted(because))}, which did not apply"
            self._outcome(Outcome(change.address, change.action, "skipped", msg))
            self.echo(f"{change.address}: {msg}")

    # -- one resource ------------------------------------------------------------------------
    def _run_one(self, change: Change) -> None:
        started = time.monotonic()
        begin, _ = _ING.get(change.action, ("", ""))
        self.echo(f"{change.address}: {begin}")
        try:
            outcome = self._apply(change)
        except (
            ProviderError,
            MlxError,
            OSError,
            ValueError,
            KeyError,
            TypeError,
            RuntimeError,
        ) as exc:
            outcome = self._failed(change, exc)
        except Exception as exc:
            outcome = self._failed(change, exc, unexpected=True)
        self._outcome(outcome)
        elapsed = time.monotonic() - started
        if outcome.status == "ok":
            done = _ING[change.action][1]
            self.echo(f"{change.address}: {done} after {elapsed:.1f}s{_brief(outcome.outputs)}")
        elif outcome.status == "unchanged":
            self.echo(
                f"{change.address}: no changes after all (its inputs resolved to the same values)"
            )
        elif outcome.status == "failed":
            self.echo(f"{change.address}: Gate FAILED after {elapsed:.1f}s: {outcome.message}")
        else:
            self.echo(f"{change.address}: Error after {elapsed:.1f}s: {outcome.message}")

    def _apply(self, change: Change) -> Outcome:
        key = change.provider
        provider = self.providers.get(key, change.address)
        prior_rec = self._records.get(change.address)
        prior = _prior(prior_rec) if prior_rec else None
        if change.action is Action.DELETE:
            assert prior is not None
            provider.delete(prior)
            self.writer.remove(change.address)
            return Outcome(change.address, change.action, "ok")

        body = self.resolver.resolve(change.address, self._lookup)
        if contains(body, Unknown):
            raise MlxError(
                f"{change.address}: a referenced value is still unknown "
                "after its dependencies applied"
            )
        deps = list(self.graph.predecessors(change.address))
        desired = Desired(
            change.address,
            change.section,
            change.name,
            reveal(body),
            None,
            {d: self.outputs.get(d) or self._recorded_outputs(d) for d in deps},
            {d: self._recorded_outputs(d) for d in deps},
            restore=change.restore,
        )
        fingerprint = change.content_hash if change.restore else provider.fingerprint(desired)
        desired = replace(desired, fingerprint=fingerprint)
        self.providers.specs[change.address] = desired.spec
        redacted = redact(body, self.salt)
        spec_hash, meta_hash = split_hashes(change.section, redacted)
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
                change.address, change.action, "unchanged", outputs=dict(prior_rec.outputs)
            )

        result: Result
        if change.action is Action.CREATE or (change.action is Action.RUN and prior is None):
            result = provider.create(desired)
        elif change.action is Action.REPLACE:
            if prior is not None:
                provider.delete(prior)
            result = provider.create(desired)
        else:
            assert prior is not None
            pc = ProviderChange(
                behaviour=prior_rec is not None and prior_rec.spec_hash != spec_hash,
                metadata=prior_rec is not None and prior_rec.meta_hash != meta_hash,
                content=prior_rec is not None and prior_rec.content_hash != desired.fingerprint,
                fields=tuple(f.path for f in change.fields),
            )
            if change.action is Action.RUN or Reason.DRIFTED in change.reasons:
                # a gate always runs; a drifted object is restored whatever its hashes say
                pc = ProviderChange(True, pc.metadata, True, pc.fields)
            result = provider.update(prior, desired, pc)

        status = "failed" if result.failed else "ok"
        self.writer.put(
            address=change.address,
            section=change.section,
            name=change.name,
            provider=key,
            action=change.action.value,
            status=status,
            spec_hash=spec_hash,
            meta_hash=meta_hash,
            content_hash=desired.fingerprint,
            attributes=redacted,
            outputs=result.outputs,
            dependencies=sorted(self.graph.predecessors(change.address)),
            error=result.message if result.failed else None,
        )
        if result.failed:
            with self._lock:
                self.blocked.add(change.address)
            return Outcome(change.address, change.action, "failed", result.message, result.outputs)
        self._remember(change.address, body, result.outputs)
        return Outcome(change.address, change.action, "ok", None, result.outputs)

    def _failed(self, change: Change, exc: BaseException, unexpected: bool = False) -> Outcome:
        with self._lock:
            self.blocked.add(change.address)
        message = str(exc) if not unexpected else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, MlxError):
            message = "; ".join(d.summary for d in exc.diagnostics)
        try:
            if change.action in (Action.CREATE, Action.REPLACE) or (
                change.action is Action.RUN and change.address not in self._records
            ):
                self.writer.put(
                    address=change.address,
                    section=change.section,
                    name=change.name,
                    provider=change.provider,
                    action=change.action.value,
                    status="tainted",
                    spec_hash=None,
                    meta_hash=None,
                    content_hash=None,
                    attributes=change.after or {},
                    outputs={},
                    dependencies=change.depends_on,
                    error=message,
                )
            elif change.action is not Action.DELETE:
                self.writer.taint(change.address, message, change.action.value)
        except Exception as state_exc:
            message += f" (and recording the failure failed: {state_exc})"
        return Outcome(change.address, change.action, "error", message)

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
        from specs.introspect import kind_info

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


def _prior(rec: Record) -> Prior:
    return Prior(rec.address, rec.section, rec.name, rec.attributes, rec.outputs, rec.content_hash)


def _brief(outputs: dict[str, Any]) -> str:
    shown = [f"{k}={outputs[k]}" for k in ("version", "revision", "passed") if k in outputs]
    return f" [{', '.join(shown)}]" if shown else ""
