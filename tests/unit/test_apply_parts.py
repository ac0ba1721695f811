"""The parts of an apply (engine/apply/), each without a provider: the schedule (ready order,
delete order, what a failure skips and what the skipped change says), gate judging with its
evidence, the release check, and what a failure leaves in state — on in-memory fakes and a
real SQLite state in ``tmp_path``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import networkx as nx
import pytest

from common.diagnostics import MlxError
from contract import Desired, Prior, Result
from engine.apply.failures import failed, skip_message
from engine.apply.gates import GateJudge
from engine.apply.memory import RunMemory
from engine.apply.outcomes import OutcomeStatus
from engine.apply.release_check import ReleaseCheck
from engine.apply.schedule import Blocked, ReadyQueue, blocked_by, delete_order, waits_for
from engine.load.resolve import Lookup
from engine.plan.model import Action, Reason, ResourceChange
from engine.policy import evidence
from state.evidence import EvidenceLog, Verdict
from state.store import Record, StateStore, StateWriter
from state.writes import RecordWrite


def change(address: str, action: Action = Action.CREATE, **kw: Any) -> ResourceChange:
    section, name = address.split(".", 1)
    return ResourceChange(
        address=address, section=section, name=name, provider="local", action=action, **kw
    )


def record(address: str, **kw: Any) -> Record:
    section, name = address.split(".", 1)
    values: dict[str, Any] = dict(
        address=address, section=section, name=name, provider="local", status="ok",
        spec_hash="s", meta_hash="m", content_hash="c", attributes={"v": 1},
        outputs={"version": 1}, dependencies=[], serial=1, updated_at=datetime.now(UTC),
    )  # fmt: skip
    values.update(kw)
    return Record(**values)


# -- the schedule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("depends_on", "order"),
    [
        # (what each deleted resource depends on) -> the order of the deletes
        ({"models.a": [], "models.b": []}, ["models.a", "models.b"]),
        ({"models.a": [], "endpoints.e": ["models.a"]}, ["endpoints.e", "models.a"]),
        (
            {"datasets.d": [], "models.m": ["datasets.d"], "endpoints.e": ["models.m"]},
            ["endpoints.e", "models.m", "datasets.d"],
        ),
        (  # two dependents of one model go first, in address order
            {"models.m": [], "endpoints.z": ["models.m"], "evals.a": ["models.m"]},
            ["endpoints.z", "evals.a", "models.m"],
        ),
    ],
)
def test_deletes_go_dependents_first(depends_on: dict[str, list[str]], order: list[str]) -> None:
    deletes = {a: change(a, Action.DELETE, depends_on=d) for a, d in depends_on.items()}
    assert delete_order(deletes) == order


def drain(queue: ReadyQueue) -> list[str]:
    """Run the queue one change at a time, each finishing before the next starts."""
    ran = []
    while queue:
        address = queue.pop()
        ran.append(address)
        queue.finished(address)
    return ran


@pytest.mark.parametrize(
    ("order", "waits", "ran"),
    [
        (["a", "b", "c"], {"a": set(), "b": set(), "c": set()}, ["a", "b", "c"]),
        # b waits for c: c goes first although the plan lists b before it
        (["a", "b", "c"], {"a": set(), "b": {"c"}, "c": set()}, ["a", "c", "b"]),
        # a diamond: d runs last, b (ready once a is done) before c (later in the plan)
        (
            ["a", "b", "c", "d"],
            {"a": set(), "b": {"a"}, "c": set(), "d": {"b", "c"}},
            ["a", "b", "c", "d"],
        ),
    ],
)
def test_the_ready_queue_runs_in_plan_order_once_waits_are_done(
    order: list[str], waits: dict[str, set[str]], ran: list[str]
) -> None:
    assert drain(ReadyQueue(order, waits)) == ran


def test_nothing_is_ready_before_what_it_waits_for_finished() -> None:
    queue = ReadyQueue(["a", "b"], {"a": set(), "b": {"a"}})
    assert queue.pop() == "a"
    assert not queue  # b waits for a, which has not finished
    queue.finished("a")
    assert queue.pop() == "b"


def test_what_became_ready_later_still_runs_in_plan_order() -> None:
    queue = ReadyQueue(["a", "b", "c", "d"], {"a": set(), "b": set(), "c": {"b"}, "d": {"a"}})
    assert [queue.pop(), queue.pop()] == ["a", "b"]  # both run at once
    queue.finished("a")  # d is ready first ...
    queue.finished("b")
    assert [queue.pop(), queue.pop()] == ["c", "d"]  # ... c comes first in the plan


def test_a_change_waits_for_changes_behind_a_no_op() -> None:
    graph = nx.DiGraph([("datasets.d", "models.m"), ("models.m", "evals.g")])
    # models.m does not change, yet the gate waits for the dataset it reads through it
    assert waits_for(graph, "evals.g", {"datasets.d", "evals.g"}) == {"datasets.d"}
    assert waits_for(graph, "evals.g", {"evals.g"}) == set()


def test_a_failure_skips_only_what_the_dependency_view_keeps() -> None:
    waits = {"endpoints.e": {"evals.g", "models.m"}}
    view = nx.DiGraph([("models.m", "endpoints.e")])  # e runs after g, but does not need it
    assert blocked_by(waits, None, {"evals.g", "models.m"}) == waits
    assert blocked_by(waits, view, {"evals.g", "models.m"}) == {"endpoints.e": {"models.m"}}


@dataclass
class SkipCase:
    failed: list[str]
    in_progress: list[str]
    #: (change, what it waits for that is blocked, what it says)
    skips: list[tuple[ResourceChange, list[str], str | None]]


NOT_M = "skipped: depends on models.m, which did not apply"
SKIPS = {
    "a failed model skips its endpoint": SkipCase(
        ["models.m"],
        [],
        [
            (
                change("endpoints.e"),
                ["models.m"],
                "skipped: depends on models.m, which did not apply",
            )
        ],
    ),
    "names every failure, sorted": SkipCase(
        ["models.m", "datasets.d"],
        [],
        [
            (
                change("evals.g", Action.RUN),
                ["models.m", "datasets.d"],
                "skipped: depends on datasets.d, models.m, which did not apply",
            )
        ],
    ),
    "a rollout in progress is waited for": SkipCase(
        [],
        ["rollouts.r"],
        [(change("endpoints.e", Action.UPDATE), ["rollouts.r"], "waits for rollouts.r to finish")],
    ),
    "in progress and failed: skipped": SkipCase(
        ["models.m"],
        ["rollouts.r"],
        [
            (
                change("endpoints.e"),
                ["rollouts.r", "models.m"],
                "skipped: depends on models.m, rollouts.r, which did not apply",
            )
        ],
    ),
    "a no-op in between passes the failure on": SkipCase(
        ["evals.g"],
        [],
        [
            (change("models.m", Action.NOOP), ["evals.g"], None),
            (
                change("endpoints.e"),
                ["models.m"],
                "skipped: depends on evals.g, which did not apply",
            ),
        ],
    ),
    "and blocks what waits for it": SkipCase(
        ["models.m"],
        [],
        [
            (
                change("endpoints.e"),
                ["models.m"],
                "skipped: depends on models.m, which did not apply",
            ),
            (
                change("rollouts.r"),
                ["endpoints.e"],
                "skipped: depends on endpoints.e, which did not apply",
            ),
        ],
    ),
}


@pytest.mark.parametrize("case", SKIPS.values(), ids=list(SKIPS))
def test_a_failed_change_blocks_its_dependents_and_they_say_why(case: SkipCase) -> None:
    blocked = Blocked()
    for address in case.failed:
        blocked.block(address)
    for address in case.in_progress:
        blocked.block(address, in_progress=True)
    for skipped, because, says in case.skips:
        assert blocked.among([*because, "models.unrelated"]) == because
        assert blocked.skip(skipped, because) == says
        assert blocked.among([skipped.address]) == [skipped.address]
    assert blocked.among(["models.unrelated"]) == []


def test_skip_message_waits_only_when_everything_is_in_progress() -> None:
    assert skip_message(["a.x"], {"a.x"}) == "waits for a.x to finish"
    assert skip_message(["a.x", "b.y"], {"a.x"}).startswith("skipped: depends on a.x, b.y")


# -- gate judging and the release check -------------------------------------------------------

GATE, SUBJECT, DATASET = "evals.g", "models.m", "datasets.d"
GATE_BODY = {"subject": SUBJECT, "dataset": DATASET}
SPEC_HASH, CONTENT_HASH = "sha:gate-spec", "sha:gate-files"


class Start:
    """Records as the run found them."""

    def __init__(self, *records: Record):
        self.by_address = {r.address: r for r in records}

    def record(self, address: str) -> Record | None:
        return self.by_address.get(address)


class NoResolver:
    def resolve(self, address: str, lookup: Lookup) -> dict[str, Any]:
        raise AssertionError(f"{address} should be known without resolving it")


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[StateWriter]:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    with store.writer("default", who="tester", operation="apply") as w:
        w.begin("apply", actor="tester")
        yield w
    store.close()


def memory(subject_fp: str = "sha:v2", *records: Record, declared: Any = ()) -> RunMemory:
    """A run that applied the subject (``subject_fp``) and the dataset, and knows the gate."""
    mem = RunMemory(Start(*records), {}, NoResolver(), declared)
    mem.remember(SUBJECT, {}, {"fingerprint": subject_fp, "version": 2})
    mem.remember(DATASET, {}, {"fingerprint": "sha:data"})
    mem.remember(GATE, dict(GATE_BODY), {})
    mem.applied_hashes(GATE, SPEC_HASH, CONTENT_HASH)
    return mem


def key_for(subject_fp: str) -> str:
    judged = evidence.judged(GATE, GATE_BODY, SPEC_HASH, CONTENT_HASH, {
        SUBJECT: subject_fp, DATASET: "sha:data"
    }.get)  # fmt: skip
    assert judged is not None
    return judged.key


def add_verdict(log: EvidenceLog, subject_fp: str, passed: bool, serial: int = 1) -> None:
    log.add(
        Verdict(
            key=key_for(subject_fp), gate=GATE, subject=SUBJECT,
            subject_fingerprint=subject_fp, subject_version="1", dataset=DATASET,
            dataset_fingerprint="sha:data", definition=f"{SPEC_HASH}+{CONTENT_HASH}",
            passed=passed, serial=serial, created_at=datetime.now(UTC), message=None,
            subject_outputs={}, outputs={"passed": passed, "from": "before"},
        )
    )  # fmt: skip


def desired() -> Desired:
    return Desired(GATE, "evals", "g", dict(GATE_BODY), CONTENT_HASH)


class Runs:
    """The gate's run (what its provider would do), counted."""

    def __init__(self, result: Result):
        self.result, self.calls = result, 0

    def __call__(self) -> Result:
        self.calls += 1
        return self.result


@dataclass
class JudgeCase:
    reasons: list[Reason]
    before: list[tuple[str, bool]]  # verdicts already recorded: (subject fingerprint, passed)
    result: Result
    runs: bool
    passed_now: bool  # a passed verdict for exactly what is judged now, afterwards
    reused: bool = False


JUDGE = {
    "runs and passes": JudgeCase([Reason.NEW], [], Result({"passed": True}), True, True),
    "runs and fails": JudgeCase(
        [Reason.NEW], [], Result({"passed": False}, failed=True), True, False
    ),
    "a passed verdict still true is reused": JudgeCase(
        [Reason.EVIDENCE_REUSED], [("sha:v2", True)], Result({"passed": False}), False, True, True
    ),
    "a verdict for a stale fingerprint is not reused": JudgeCase(
        [Reason.EVIDENCE_REUSED], [("sha:v1", True)], Result({"passed": True}), True, True
    ),
    "a stale verdict does not pass a failing run": JudgeCase(
        [Reason.EVIDENCE_REUSED],
        [("sha:v1", True)],
        Result({"passed": False}, failed=True),
        True,
        False,
    ),
}


@pytest.mark.parametrize("case", JUDGE.values(), ids=list(JUDGE))
def test_judging_a_gate_binds_its_verdict_to_the_fingerprints(
    writer: StateWriter, case: JudgeCase
) -> None:
    log = writer.evidence()
    for subject_fp, passed in case.before:
        add_verdict(log, subject_fp, passed)
    run = Runs(case.result)
    judge = GateJudge(memory(), log, serial=7)
    result = judge.judge(
        change(GATE, Action.RUN, reasons=case.reasons), None, desired(), SPEC_HASH, run
    )
    assert run.calls == (1 if case.runs else 0)
    assert result.outputs["judged"]["subject_fingerprint"] == "sha:v2"
    assert result.outputs.get("reused", False) is case.reused
    assert (log.passed(key_for("sha:v2")) is not None) is case.passed_now
    if case.runs:  # the run's verdict is recorded, in this version, for what it judged
        latest = log.latest(key_for("sha:v2"))
        assert latest is not None and latest.serial == 7
        assert latest.passed is not case.result.failed and latest.subject_version == "2"
        assert latest.subject_outputs == {"fingerprint": "sha:v2", "version": 2}


def test_a_gate_whose_metadata_changed_keeps_its_verdict(writer: StateWriter) -> None:
    prior = Prior(GATE, "evals", "g", dict(GATE_BODY), {"passed": False, "score": 0.4})
    run = Runs(Result({"passed": True}))
    gate = change(GATE, Action.UPDATE, reasons=[Reason.METADATA_CHANGED])
    result = GateJudge(memory(), writer.evidence(), 3).judge(gate, prior, desired(), SPEC_HASH, run)
    assert run.calls == 0 and result.failed and result.outputs == {"passed": False, "score": 0.4}
    assert writer.evidence().latest(key_for("sha:v2")) is None


def test_what_a_gate_judges_now_uses_the_definition_recorded_when_not_applied(
    writer: StateWriter,
) -> None:
    mem = RunMemory(Start(record(GATE, spec_hash="s1", content_hash="c1")), {}, NoResolver(), ())
    mem.remember(GATE, dict(GATE_BODY), {})
    mem.remember(SUBJECT, {}, {"fingerprint": "sha:v2"})
    mem.remember(DATASET, {}, {"fingerprint": "sha:data"})
    judged = GateJudge(mem, writer.evidence(), 1).judged_now(GATE)
    assert judged is not None and judged.definition == "s1+c1"
    mem.applied_hashes(GATE, SPEC_HASH, CONTENT_HASH)  # applied in this run: that one
    judged = GateJudge(mem, writer.evidence(), 1).judged_now(GATE)
    assert judged is not None and judged.key == key_for("sha:v2")


@pytest.mark.parametrize(
    ("outputs", "applied", "fingerprint"),
    [
        ({"fingerprint": "sha:recorded-output"}, None, "sha:recorded-output"),
        ({}, None, "c"),  # a record whose outputs do not say: its content hash
        ({}, {"fingerprint": "sha:applied"}, "sha:applied"),
        ({"fingerprint": "sha:recorded-output"}, {"version": 3}, None),  # applied: no fallback
    ],
)
def test_a_fingerprint_is_what_this_run_applied_else_what_was_recorded(
    outputs: dict[str, Any], applied: dict[str, Any] | None, fingerprint: str | None
) -> None:
    mem = RunMemory(Start(record(SUBJECT, outputs=outputs)), {}, NoResolver(), ())
    if applied is not None:
        mem.remember(SUBJECT, {}, applied)
    assert mem.fingerprint(SUBJECT) == fingerprint
    assert mem.fingerprint("models.unknown") is None


@dataclass
class Decl:
    section: str
    body: dict[str, Any]


ENDPOINT = "endpoints.e"
DECLS = {GATE: Decl("evals", dict(GATE_BODY)), SUBJECT: Decl("models", {})}
REFUSALS: dict[str, tuple[list[tuple[str, bool]], dict[str, Any], str | None]] = {
    # verdicts recorded, the endpoint's body (beyond serves), the refusal (None: released)
    "passed for exactly this version": ([("sha:v2", True)], {}, None),
    "no verdict": (
        [],
        {},
        "refusing to release models.m v2: evals.g has not passed for exactly models.m v2 "
        "(sha:v2) on datasets.d (sha:data); run `mlx apply` (the gate is due) or `mlx eval g`",
    ),
    "passed for a stale fingerprint": (
        [("sha:v1", True)],
        {},
        "refusing to release models.m v2: evals.g has not passed for exactly",
    ),
    "failed for it": ([("sha:v2", False)], {}, "evals.g has not passed for exactly"),
    "requires [] leaves the gate out": ([], {"requires": []}, None),
    "a left-out gate that failed for it": (
        [("sha:v2", False)],
        {"requires": []},
        "evals.g failed for exactly models.m v2 (sha:v2) on datasets.d (sha:data) "
        "(state version 1); endpoints.e's requires does not wait",
    ),
    "a left-out gate that failed for another version": (
        [("sha:v1", False)],
        {"requires": []},
        None,
    ),
}


@pytest.mark.parametrize("case", REFUSALS.values(), ids=list(REFUSALS))
def test_a_release_is_refused_without_a_passed_verdict_for_exactly_it(
    writer: StateWriter, case: tuple[list[tuple[str, bool]], dict[str, Any], str | None]
) -> None:
    verdicts, extra, refusal = case
    log = writer.evidence()
    for subject_fp, passed in verdicts:
        add_verdict(log, subject_fp, passed)
    mem = memory(declared=DECLS)
    check = ReleaseCheck(GateJudge(mem, log, 2), log, DECLS)
    body = {"serves": SUBJECT, **extra}
    if refusal is None:
        check.check(ENDPOINT, "endpoints", body)
        return
    with pytest.raises(evidence.ReleaseRefused, match=re.escape(refusal)):
        check.check(ENDPOINT, "endpoints", body)


def test_a_subject_without_a_version_is_not_released(writer: StateWriter) -> None:
    mem = RunMemory(Start(), {}, NoResolver(), DECLS)
    check = ReleaseCheck(GateJudge(mem, writer.evidence(), 1), writer.evidence(), DECLS)
    with pytest.raises(evidence.ReleaseRefused, match="it has no registered version yet"):
        check.check(ENDPOINT, "endpoints", {"serves": SUBJECT})


@pytest.mark.parametrize(("prior_fp", "new"), [(None, True), ("sha:v1", True), ("sha:v2", False)])
def test_only_another_version_than_users_get_is_a_release(
    writer: StateWriter, prior_fp: str | None, new: bool
) -> None:
    check = ReleaseCheck(GateJudge(memory(), writer.evidence(), 1), writer.evidence(), DECLS)
    prior = None
    if prior_fp is not None:
        prior = Prior(ENDPOINT, "endpoints", "e", {}, {"fingerprint": prior_fp})
    assert check.releases_new("endpoints", {"serves": SUBJECT}, prior) is new
    assert check.releases_new("models", {}, prior) is False  # a model releases nothing


# -- failures ---------------------------------------------------------------------------------


def put(writer: StateWriter, address: str) -> None:
    section, name = address.split(".", 1)
    writer.put(
        RecordWrite(
            address=address, section=section, name=name, provider="local", action="create",
            spec_hash="s", meta_hash="m", content_hash="c", attributes={"v": 1},
            outputs={"version": 1}, dependencies=[],
        )
    )  # fmt: skip


@dataclass
class FailureCase:
    address: str
    action: Action
    recorded: bool
    status: str | None  # the record's status afterwards (None: no record)
    outputs: dict[str, Any] | None  # the record's outputs afterwards


FAILURES = {
    "a failed create leaves a tainted record": FailureCase(
        "models.m", Action.CREATE, False, "tainted", {}
    ),
    "a failed gate run leaves a tainted record": FailureCase(
        "evals.g", Action.RUN, False, "tainted", {}
    ),
    "a failed update keeps the record": FailureCase(
        "models.m", Action.UPDATE, True, "ok", {"version": 1}
    ),
    "a failed delete keeps the record": FailureCase(
        "alerts.a", Action.DELETE, True, "ok", {"version": 1}
    ),
    "a failed replace of a plain kind taints its record": FailureCase(
        "alerts.a", Action.REPLACE, True, "tainted", {"version": 1}
    ),
    "a failed replace of an endpoint keeps it (the old one serves)": FailureCase(
        "endpoints.e", Action.REPLACE, True, "ok", {"version": 1}
    ),
    "a failed replace of a registry kind keeps it": FailureCase(
        "models.m", Action.REPLACE, True, "ok", {"version": 1}
    ),
}


@pytest.mark.parametrize("case", FAILURES.values(), ids=list(FAILURES))
def test_what_a_failure_leaves_in_state(writer: StateWriter, case: FailureCase) -> None:
    if case.recorded:
        put(writer, case.address)
    failing = change(case.address, case.action, after={"v": 2})
    outcome = failed(writer, failing, OSError("disk full"), recorded=case.recorded)
    assert outcome.status is OutcomeStatus.ERROR and outcome.message == "disk full"
    rec = writer.records([case.address]).get(case.address)
    assert (rec.status if rec else None) == case.status
    assert (dict(rec.outputs) if rec else None) == case.outputs
    if rec is not None and case.status == "tainted" and not case.recorded:
        assert rec.attributes == {"v": 2}  # what the create was asked for
    events = writer.events(address=case.address)
    assert events[-1]["error"] == "disk full" and events[-1]["action"] == case.action.value


@pytest.mark.parametrize(
    ("exc", "unexpected", "message"),
    [
        (OSError("disk full"), False, "disk full"),
        (ZeroDivisionError("division by zero"), True, "ZeroDivisionError: division by zero"),
        (MlxError("models.m: no such file"), False, "models.m: no such file"),
    ],
)
def test_a_failure_says_what_failed(
    writer: StateWriter, exc: BaseException, unexpected: bool, message: str
) -> None:
    outcome = failed(writer, change("models.m"), exc, recorded=False, unexpected=unexpected)
    assert outcome.message == message


class BrokenWriter:
    def put(self, write: RecordWrite, **_: Any) -> None:
        raise RuntimeError("database is locked")


def test_a_failure_that_cannot_be_recorded_says_so() -> None:
    broken = cast(StateWriter, BrokenWriter())
    outcome = failed(broken, change("models.m"), OSError("boom"), recorded=False)
    assert outcome.message == "boom (and recording the failure failed: database is locked)"
