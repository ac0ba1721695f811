"""One controller pass, whatever it controls: lock → read the record → the pure step →
carry it out → record.

A *controller* (a rollout's today; a monitor's and a budget's next) is a thing with a pure
step and a record: it observes the world, decides the next state without I/O (for a
rollout, ``controller.reconcile``), and carries the decision out through the providers'
capabilities (``Serving``, ``Registry``, ``Notifier``: the traffic router). This module
runs one pass of any such thing, and is the only code that decides when its record is
written:

* a step is recorded *before* it is taken (``Ledger.checkpoint``, status in progress),
  so a controller killed at any moment resumes from the recorded step, and every pass
  re-asserts what the record says (level-triggered);
* its outcome is recorded *after* (``Ledger.record``) — when the pass changed something,
  settled a record still in progress, or the record must be written anyway (an apply
  changed its spec; a person's request is recorded);
* a pass that only waits writes nothing.

The harness never imports the engine: the engine (and the CLI) hand it what it needs as
interfaces — a ``Ledger`` (this resource's record, read and written while the engine holds
the state lock: no ledger exists outside it) and the providers by capability (``World``).
A provider whose resources a controller drives says so with the ``Controlled`` capability:
the engine then hands it a ledger instead of writing the record itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from contract import AlertMessage, Prior, Provider, Result, Serving

OutcomeT = TypeVar("OutcomeT")


class Ledger(Protocol):
    """One resource's record, held for one pass under the state lock (the engine's)."""

    @property
    def in_progress(self) -> bool:
        """Whether the record says a step is in progress (a pass that settles it writes)."""
        ...

    @property
    def stale(self) -> bool:
        """Whether the record must be written whatever the pass decides (an apply changed
        the resource's spec; a person's request is to be recorded)."""
        ...

    def checkpoint(self, outputs: Mapping[str, Any], note: str) -> None:
        """Record ``outputs`` as a step about to be taken (in progress), with what it is."""
        ...

    def record(self, result: Result, events: Sequence[str]) -> None:
        """Record the pass's result (``result.touched``: objects it changed elsewhere)."""
        ...


class _Unrecorded:
    """The ledger of a provider used on its own, outside mlx (the conformance kit): a pass
    runs and returns its result; nothing is recorded."""

    in_progress = False
    stale = False

    def checkpoint(self, outputs: Mapping[str, Any], note: str) -> None:
        return None

    def record(self, result: Result, events: Sequence[str]) -> None:
        return None


UNRECORDED: Ledger = _Unrecorded()


class World(Protocol):
    """What a controller acts on: other resources, through their providers' capabilities
    (``contract.Peers`` is one; the engine implements it)."""

    def spec(self, address: str) -> Mapping[str, Any] | None: ...

    def serving(self, endpoint: str) -> tuple[Prior, Serving]: ...

    def set_alias(self, address: str, alias: str, outputs: Mapping[str, Any]) -> None: ...

    def notify(self, channel: str, message: AlertMessage) -> None: ...


@dataclass
class Decision(Generic[OutcomeT]):
    """What one pure step decided: the record once it is taken, and what to do."""

    #: the record's outputs once the step is taken (what a checkpoint records)
    outputs: dict[str, Any]
    #: what happened in this pass, for history (empty: nothing changed)
    events: list[str]
    #: settled: nothing left to do until something changes
    done: bool
    #: the step's own outcome, for ``carry_out`` (``controller.reconcile.Outcome``)
    outcome: OutcomeT


class Controller(Protocol[OutcomeT]):
    """A thing with a pure step and a record."""

    def decide(self) -> Decision[OutcomeT]:
        """Observe the world, then take the pure step (no change to anything)."""
        ...

    def carry_out(self, decision: Decision[OutcomeT]) -> list[str]:
        """Do what ``decision`` says; returns events for what could not be done."""
        ...

    def result(self, decision: Decision[OutcomeT]) -> Result:
        """The pass as a provider's result (what the engine reports and records)."""
        ...


def run_pass(controller: Controller[OutcomeT], ledger: Ledger) -> Result:
    """One pass of ``controller`` over the record ``ledger`` holds (the caller holds the
    state lock: a ledger exists only under it)."""
    decision = controller.decide()
    if decision.events:  # recorded before it is taken: a kill now resumes from here
        ledger.checkpoint(decision.outputs, "; ".join(decision.events))
    decision.events.extend(controller.carry_out(decision))
    result = controller.result(decision)
    # a pass that settles a record still in progress (a controller killed after recording
    # its last step) writes it, even when it had nothing new to say
    settles = decision.done and ledger.in_progress
    if decision.events or settles or ledger.stale:
        ledger.record(result, decision.events)
    return result


class Controlled(ABC):
    """The capability of a provider whose resources a controller drives (``rollouts``):
    each create or update is a pass of the harness, which records its own steps.

    The engine asks for it with ``isinstance`` (``contract.capability``) and hands the
    provider the resource's ``Ledger``; it does not write that record itself."""

    @abstractmethod
    def recording_to(self, ledger: Ledger) -> Provider:
        """This provider, its passes recorded through ``ledger`` (an apply's)."""

    @abstractmethod
    def resume(self, prior: Prior, ledger: Ledger) -> Result:
        """One pass over what is recorded (``mlx rollout run|promote|abort|retry``): the
        resource as it was applied, whatever the spec files say now. A person's request
        travels in ``prior.outputs["requested"]``."""
