"""Writing what an operation that finishes later did, step by step: the engine's side of
the controller's ``Ledger`` (``controller.harness``), shared by the applier (a rollout's
pass in an apply) and the rollout workflow (every pass after it)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

from contract import Completion, ProviderError, Result
from engine.plugins import ProviderSet, prior_of
from state.status import Status
from state.store import Record, StateWriter
from state.writes import RecordWrite


def checkpoint(
    writer: StateWriter, base: RecordWrite, outputs: Mapping[str, Any], note: str
) -> None:
    """Record a step about to be taken (status in progress), with what it is."""
    writer.put(
        replace(base, action="step", status=Status.IN_PROGRESS, outputs=dict(outputs), error=note)
    )


def record_touched(writer: StateWriter, providers: ProviderSet, addresses: Iterable[str]) -> None:
    """Read again the objects another resource's operation changed; record what they are.

    (A rollout moved an endpoint's traffic: the endpoint's record must say so, or the next
    refresh would call the rollout's own split drift.)
    """
    for address in addresses:
        rec = writer.records([address]).get(address)
        if rec is None:
            continue
        provider = providers.get(rec.provider, address)
        prior = prior_of(rec)
        try:
            observed = provider.read(prior)
        except (ProviderError, OSError):
            continue  # the next refresh reports it
        if observed is None:
            continue
        outputs = {**rec.outputs, **observed.outputs}
        if outputs == rec.outputs:
            continue
        again = RecordWrite.of(rec, "observed")
        writer.put(
            replace(again, outputs=outputs, error="re-read after a change another resource made")
        )


class StepLedger:
    """A controlled resource's record, held for one pass while this process holds the state
    lock (``controller.harness.Ledger``): the one writer of a rollout's record.

    The harness decides when to write (a step before it is taken, its outcome after);
    this says how, in the two places a pass runs:

    * in an apply (``for_apply``) the rollout is one resource of the apply's state version:
      its record is the provider's result as it is (outputs, the apply's action), handed
      to the group commit without waiting (the applier waits for ``written``);
    * in a controller pass (``for_pass``: ``mlx rollout run|promote|abort|retry``) the pass
      is a state version of its own, begun at the first write (``opening``), and the
      record's note is what happened — a person's request first (``preface``).
    """

    def __init__(
        self,
        writer: StateWriter,
        providers: ProviderSet,
        base: RecordWrite,
        *,
        in_progress: bool,
        stale: bool,
        in_apply: bool,
        opening: Callable[[], None] = lambda: None,
        preface: Sequence[str] = (),
    ):
        #: the record as this pass writes it, under its action (each write sets the rest)
        self.writer, self.providers, self.base = writer, providers, base
        self._in_progress, self._stale, self._in_apply = in_progress, stale, in_apply
        self._opening, self._preface = opening, list(preface)
        #: the record's write, once the pass recorded its outcome
        self.written: Future[None] | None = None

    @classmethod
    def for_apply(
        cls, writer: StateWriter, providers: ProviderSet, base: RecordWrite
    ) -> StepLedger:
        # an apply records the resource whatever the pass decides: its spec changed
        return cls(writer, providers, base, in_progress=False, stale=True, in_apply=True)

    @classmethod
    def for_pass(
        cls,
        writer: StateWriter,
        providers: ProviderSet,
        rec: Record,
        action: str,
        *,
        opening: Callable[[], None],
        request: str | None = None,
    ) -> StepLedger:
        """``request``: a person's request as history says it (``aborted by bob``): recorded
        first among the pass's notes, and recorded even when the pass changed nothing."""
        return cls(
            writer,
            providers,
            RecordWrite.of(rec, action),
            in_progress=rec.status == Status.IN_PROGRESS,
            stale=request is not None,
            in_apply=False,
            opening=opening,
            preface=[request] if request is not None else [],
        )

    @property
    def in_progress(self) -> bool:
        return self._in_progress

    @property
    def stale(self) -> bool:
        return self._stale

    def lines(self, events: Sequence[str]) -> list[str]:
        """A pass's events as recorded: a person's request first."""
        return [*self._preface, *events]

    def checkpoint(self, outputs: Mapping[str, Any], note: str) -> None:
        self._opening()  # a request's reason is durable from its first record on
        checkpoint(self.writer, self.base, outputs, "; ".join(self.lines([note])))

    def record(self, result: Result, events: Sequence[str]) -> None:
        self._opening()
        if result.completion is Completion.IN_PROGRESS:
            status = Status.IN_PROGRESS
        else:
            status = Status.FAILED if result.failed else Status.OK
        if self._in_apply:
            outputs, note = dict(result.outputs), result.message if result.failed else None
        else:
            outputs = {k: v for k, v in result.outputs.items() if k != "events"}
            note = "; ".join(self.lines(events)) or None
        self.written = self.writer.put(
            replace(self.base, status=status, outputs=outputs, error=note),
            wait=not self._in_apply,  # an apply's dependents start once it is durable
        )
        if result.touched:
            record_touched(self.writer, self.providers, result.touched)
