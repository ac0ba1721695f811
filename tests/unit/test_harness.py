"""The pass harness (controller/harness.py), on a controller and a ledger in memory: a step
is recorded before it is taken and after, a pass that only waits writes nothing, and a
pass killed while it carries a step out leaves the step recorded for the next one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from contract import Completion, Result
from controller.harness import UNRECORDED, Decision, run_pass


@dataclass
class Ledger:
    """Writes in order: ``("checkpoint", outputs, note)`` and ``("record", outputs, events)``."""

    in_progress: bool = False
    stale: bool = False
    writes: list[tuple[str, Any, Any]] = field(default_factory=list)

    def checkpoint(self, outputs: Mapping[str, Any], note: str) -> None:
        self.writes.append(("checkpoint", dict(outputs), note))

    def record(self, result: Result, events: Sequence[str]) -> None:
        self.writes.append(("record", dict(result.outputs), list(events)))


@dataclass
class Counter:
    """A controller whose pure step counts up to ``until``; carrying a step out sets the
    world's value to the count (``world``), or fails (``fail``)."""

    count: int
    until: int = 3
    world: dict[str, int] = field(default_factory=dict)
    fail: str | None = None
    could_not: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)

    def decide(self) -> Decision[int]:
        self.order.append("decide")
        done = self.count >= self.until
        nxt = self.count if done else self.count + 1
        events = [] if done else [f"count {nxt}"]
        return Decision({"count": nxt}, events, nxt >= self.until, nxt)

    def carry_out(self, decision: Decision[int]) -> list[str]:
        self.order.append("carry_out")
        if self.fail:
            raise RuntimeError(self.fail)
        self.world["value"] = decision.outcome
        return list(self.could_not)

    def result(self, decision: Decision[int]) -> Result:
        completion = Completion.DONE if decision.done else Completion.IN_PROGRESS
        return Result(dict(decision.outputs), completion=completion)


def test_a_step_is_recorded_before_it_is_taken_and_after() -> None:
    ledger, counter = Ledger(), Counter(1)
    result = run_pass(counter, ledger)
    assert ledger.writes == [
        ("checkpoint", {"count": 2}, "count 2"),
        ("record", {"count": 2}, ["count 2"]),
    ]
    assert counter.world == {"value": 2} and result.completion is Completion.IN_PROGRESS


def test_what_could_not_be_done_is_recorded_after_the_step() -> None:
    ledger = Ledger()
    run_pass(Counter(0, could_not=["could not retire v1"]), ledger)
    assert ledger.writes[0] == ("checkpoint", {"count": 1}, "count 1")
    assert ledger.writes[1] == ("record", {"count": 1}, ["count 1", "could not retire v1"])


# (in progress on record, must be written anyway, writes)
WAITS = [
    (False, False, []),  # nothing happened: nothing written
    (True, False, ["record"]),  # settles a record a killed controller left in progress
    (False, True, ["record"]),  # an apply changed its spec; a person's request
]


@pytest.mark.parametrize(("in_progress", "stale", "writes"), WAITS)
def test_a_pass_that_only_waits_writes_nothing(
    in_progress: bool, stale: bool, writes: list[str]
) -> None:
    ledger = Ledger(in_progress=in_progress, stale=stale)
    counter = Counter(3)
    run_pass(counter, ledger)
    assert [w[0] for w in ledger.writes] == writes
    assert counter.order == ["decide", "carry_out"], "every pass re-asserts the world"


def test_a_pass_killed_while_carrying_out_resumes_from_the_checkpoint() -> None:
    ledger = Ledger()
    killed = Counter(1, fail="killed")
    with pytest.raises(RuntimeError, match="killed"):
        run_pass(killed, ledger)
    assert ledger.writes == [("checkpoint", {"count": 2}, "count 2")]
    assert killed.world == {}, "the step was recorded, not taken"
    # the next pass starts from what was recorded, and carries it out
    recorded = ledger.writes[-1][1]["count"]
    resumed = Counter(recorded, until=2)
    run_pass(resumed, Ledger(in_progress=True))
    assert resumed.world == {"value": 2}


def test_outside_mlx_nothing_is_recorded() -> None:
    counter = Counter(0)
    result = run_pass(counter, UNRECORDED)
    assert counter.world == {"value": 1} and result.outputs == {"count": 1}
