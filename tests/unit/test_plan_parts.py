"""The planner's parts that stand alone, from tables, with no provider and no state database:
deletes and ``prevent_destroy``, gate facts and release pending, review warnings and the
protected environment's review, ``ignore_changes`` and ``--target`` scope."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import networkx as nx
import pytest

from common.diagnostics import MlxError, Source
from contract import Desired
from engine.plan.deletes import check_prevent_destroy, deletes
from engine.plan.gate_facts import gate_facts, release_pending
from engine.plan.ignore import keep_recorded
from engine.plan.model import Action, Reason
from engine.plan.planned import Planned
from engine.plan.reviews import check_reviews, review_warnings
from engine.plan.scope import scope
from engine.policy import evidence
from state.evidence import Verdict
from state.status import Status
from state.store import IndexRow, Record

AT = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def row(address: str, serial: int = 1, status: str = "ok", provider: str = "local") -> IndexRow:
    section = address.split(".", 1)[0]
    return IndexRow(address, section, provider, status, "s", "m", None, serial)


def record(
    address: str,
    attributes: dict[str, Any] | None = None,
    outputs: dict[str, Any] | None = None,
    dependencies: list[str] | None = None,
) -> Record:
    section, name = address.split(".", 1)
    return Record(
        address,
        section,
        name,
        "local",
        "ok",
        "s",
        "m",
        None,
        attributes or {},
        outputs or {},
        dependencies or [],
        1,
        AT,
    )


def planned(
    address: str,
    body: dict[str, Any] | None = None,
    action: Action = Action.NOOP,
    reasons: list[Reason] | None = None,
    spec_hash: str | None = "spec",
) -> Planned:
    section, name = address.split(".", 1)
    body = body or {}
    desired = Desired(address, section, name, body)
    p = Planned(address, section, name, "local", None, body, desired, body, spec_hash, "m", None)  # type: ignore[arg-type]
    p.action, p.reasons = action, list(reasons or [])
    return p


def source(address: str, *path: str | int, key: bool = True) -> Source:
    return Source(f"{address}:{'.'.join(map(str, path))}")


# -- deletes ---------------------------------------------------------------------------------
def test_deletes_are_the_recorded_resources_the_spec_no_longer_declares() -> None:
    index = {a: row(a, serial=n) for n, a in enumerate(["models.b", "models.a", "datasets.d"], 1)}
    records = {
        "models.b": record("models.b", {"path": "b.pkl"}, dependencies=["datasets.d"]),
    }
    fetched: list[list[str]] = []
    out = deletes(
        index,
        {"datasets.d": object()},
        None,
        records.get,
        lambda addresses: fetched.append(list(addresses)),
    )
    # in the state's order (the plan sorts every change later), each read in one batch first
    assert [c.address for c in out] == ["models.b", "models.a"]
    assert fetched == [["models.b", "models.a"]]
    b, a = out
    assert (b.action, b.reasons, b.section, b.name) == (
        Action.DELETE,
        [Reason.REMOVED],
        "models",
        "b",
    )
    assert (b.before, b.depends_on, b.prior_serial) == ({"path": "b.pkl"}, ["datasets.d"], 1)
    assert (a.before, a.depends_on, a.prior_serial) == (None, [], 2)


@pytest.mark.parametrize(
    ("scoped", "expected"),
    [
        (None, ["models.a", "models.b"]),
        ({"models.b"}, ["models.b"]),
        ({"datasets.d"}, []),
    ],
)
def test_deletes_stay_within_the_target_scope(scoped: set[str] | None, expected: list[str]) -> None:
    index = {a: row(a) for a in ["models.a", "models.b", "datasets.d"]}
    out = deletes(index, {"datasets.d": object()}, scoped, lambda _a: None)
    assert [c.address for c in out] == expected


def _removed(before: dict[str, Any] | None) -> Any:
    index = {"models.gone": row("models.gone")}
    rec = record("models.gone", before) if before is not None else None
    return deletes(index, {}, None, lambda _a: rec)


@pytest.mark.parametrize(
    ("before", "p", "refused"),
    [
        # removed from the spec
        ({"lifecycle": {"prevent_destroy": True}}, None, ["models.gone"]),
        ({"lifecycle": {"prevent_destroy": False}}, None, []),
        ({}, None, []),
        (None, None, []),  # no record: nothing to protect
        # replaced in place of an update
        (None, ("models.m", Action.REPLACE, True), ["models.m"]),
        (None, ("models.m", Action.UPDATE, True), []),
        (None, ("models.m", Action.REPLACE, False), []),
        # both at once: one refusal naming each
        (
            {"lifecycle": {"prevent_destroy": True}},
            ("models.m", Action.REPLACE, True),
            ["models.gone", "models.m"],
        ),
    ],
)
def test_prevent_destroy_refuses_a_destroy_or_a_replace(
    before: dict[str, Any] | None, p: tuple[str, Action, bool] | None, refused: list[str]
) -> None:
    plans = []
    if p is not None:
        address, action, prevent = p
        body = {"lifecycle": {"prevent_destroy": prevent}}
        plans.append(planned(address, body, action, [Reason.REPLACE_FIELD]))
    if not refused:
        check_prevent_destroy(_removed(before), plans, source)
        return
    with pytest.raises(MlxError) as caught:
        check_prevent_destroy(_removed(before), plans, source)
    diags = caught.value.diagnostics
    assert [d.summary.split(" ", 1)[0] for d in diags] == refused
    for d in diags:
        assert "lifecycle.prevent_destroy set" in d.summary
        if d.summary.startswith("models.m"):
            assert f"must replace it ({Reason.REPLACE_FIELD.value})" in d.summary
            assert d.source == Source("models.m:lifecycle.prevent_destroy")
        else:
            assert "removed from the spec" in d.summary and d.detail


# -- gate facts ------------------------------------------------------------------------------
class FakeLog:
    def __init__(self, *verdicts: Verdict):
        self.verdicts = list(verdicts)

    def passed(self, key: str) -> Verdict | None:
        found = [v for v in self.verdicts if v.key == key and v.passed]
        return found[-1] if found else None

    def latest(self, key: str) -> Verdict | None:
        found = [v for v in self.verdicts if v.key == key]
        return found[-1] if found else None


GATE = {"subject": "${models.m}", "dataset": "${datasets.d}"}
FINGERPRINTS = {"models.m": "sha256:model-v2", "datasets.d": "sha256:data"}


def _judged_key() -> str:
    judged = evidence.judged("evals.g", GATE, "spec", None, FINGERPRINTS.get)
    assert judged is not None
    return judged.key


def verdict(passed: bool, key: str | None = None) -> Verdict:
    return Verdict(
        key=key or _judged_key(),
        gate="evals.g",
        subject="models.m",
        subject_fingerprint="sha256:model-v2",
        subject_version="2",
        dataset="datasets.d",
        dataset_fingerprint="sha256:data",
        definition="spec+-",
        passed=passed,
        serial=7,
        created_at=AT,
        message=None,
        subject_outputs={},
        outputs={},
    )


@pytest.mark.parametrize(
    ("verdicts", "status", "recorded_key", "expected"),
    [
        ([], Status.OK, None, {"evidence_failed": False}),
        ([verdict(False)], Status.OK, None, {"evidence_failed": True}),
        ([verdict(True, key="sha256:other")], Status.OK, None, {"evidence_failed": False}),
        (
            [verdict(True)],
            Status.OK,
            "SAME",
            {"evidence_passed": True, "evidence_recorded": True},
        ),
        (
            [verdict(True)],
            Status.OK,
            "sha256:older",
            {"evidence_passed": True, "evidence_recorded": False},
        ),
        # not recorded at all: its record is not even read
        ([verdict(True)], None, "SAME", {"evidence_passed": True, "evidence_recorded": False}),
        # a passed verdict covers it even when a later run of the same binding failed
        (
            [verdict(True), verdict(False)],
            Status.OK,
            None,
            {"evidence_passed": True, "evidence_recorded": False},
        ),
    ],
)
def test_gate_facts_follow_the_evidence_for_exactly_what_the_gate_judges(
    verdicts: list[Verdict],
    status: Status | None,
    recorded_key: str | None,
    expected: dict[str, bool],
) -> None:
    key = _judged_key()
    judged = {"key": key if recorded_key == "SAME" else recorded_key}
    rec = record("evals.g", outputs={"judged": judged} if recorded_key else {})
    read: list[str] = []

    def records(address: str) -> Record | None:
        read.append(address)
        return rec

    p = planned("evals.g", GATE)
    assert gate_facts(p, status, FakeLog(*verdicts), records, FINGERPRINTS.get) == expected
    assert p.judged is not None and p.judged.key == key
    if expected.get("evidence_passed"):
        assert p.reused == {
            "key": key,
            "serial": 7,
            "at": "2024-05-01T12:00:00+00:00",
            "version": "2",
        }
    else:
        assert p.reused is None
    assert read == (["evals.g"] if status is not None and "evidence_passed" in expected else [])


@pytest.mark.parametrize(
    ("spec_hash", "fingerprints"),
    [
        (None, FINGERPRINTS),  # its own definition not known before apply
        ("spec", {"datasets.d": "sha256:data"}),  # the subject's fingerprint not known
        ("spec", {"models.m": "sha256:model-v2"}),  # the dataset's not known
    ],
)
def test_gate_facts_are_empty_until_what_the_gate_judges_is_known(
    spec_hash: str | None, fingerprints: dict[str, str]
) -> None:
    p = planned("evals.g", GATE, spec_hash=spec_hash)
    assert gate_facts(p, Status.OK, FakeLog(verdict(True)), lambda _a: None, fingerprints.get) == {}
    assert p.judged is None and p.reused is None


# -- release pending -------------------------------------------------------------------------
ROLLOUT = {"subject": "${models.m}"}


@pytest.mark.parametrize(
    ("prior", "through", "outputs", "now", "subject_changes", "expected"),
    [
        (None, False, {"fingerprint": "a"}, "b", False, False),  # nothing released yet
        (row("rollouts.r", status="in_progress"), False, {"fingerprint": "a"}, "b", False, False),
        (row("rollouts.r"), True, {"fingerprint": "a"}, "b", False, False),  # another drives it
        (row("rollouts.r"), False, {"fingerprint": "a"}, "b", False, True),
        (row("rollouts.r"), False, {"fingerprint": "b"}, "b", False, False),
        (row("rollouts.r"), False, {}, "b", False, True),  # released nothing yet
        # the subject's fingerprint is not known before apply: pending if it changes
        (row("rollouts.r"), False, {"fingerprint": "a"}, None, True, True),
        (row("rollouts.r"), False, {"fingerprint": "a"}, None, False, False),
    ],
)
def test_a_release_is_pending_when_users_get_another_version_than_the_subject_now(
    prior: IndexRow | None,
    through: bool,
    outputs: dict[str, Any],
    now: str | None,
    subject_changes: bool,
    expected: bool,
) -> None:
    subject = planned("models.m", action=Action.UPDATE if subject_changes else Action.NOOP)
    subject.behaviour_changed = subject_changes
    pending, warning = release_pending(
        planned("rollouts.r", ROLLOUT),
        prior,
        through_rollout=lambda: through,
        record=lambda _a: record("rollouts.r", outputs=outputs),
        fingerprint_now={"models.m": now}.get,
        planned={"models.m": subject},
    )
    assert (pending, warning) == (expected, None)


def test_an_aborted_release_of_exactly_this_version_waits_for_a_retry() -> None:
    outputs = {"fingerprint": "a", "aborted_fingerprint": "sha256:" + "b" * 64, "message": "SRM"}
    pending, warning = release_pending(
        planned("rollouts.r", ROLLOUT),
        row("rollouts.r"),
        through_rollout=lambda: False,
        record=lambda _a: record("rollouts.r", outputs=outputs),
        fingerprint_now=lambda _a: "sha256:" + "b" * 64,
        planned={},
    )
    assert not pending
    assert warning == (
        "rollouts.r aborted the release of models.m (sha256:bbbbbbbbbbbb…): SRM; "
        "`mlx rollout retry r` starts it again"
    )


# -- reviews ---------------------------------------------------------------------------------
HIGH = {"card": {"risk": "high"}}
APPROVED = {"card": {"risk": "high", "review": {"approved_by": "ana", "approved_at": "2024-05-01"}}}
NAMED = {"card": {"risk": "high", "review": {"approved_by": "ana"}}}


@pytest.mark.parametrize(
    ("address", "body", "reasons", "expected"),
    [
        ("models.m", {}, [], []),
        ("models.m", HIGH, [], ["card.risk is high and card.review names no approver"]),
        ("models.m", NAMED, [], []),
        ("prompts.p", HIGH, [], []),  # only reviewed kinds carry a card's risk
        (
            "models.m",
            {"lifecycle": {"prevent_destroy": True}},
            [],
            ["has lifecycle.prevent_destroy: it changes here, but is never destroyed"],
        ),
        (
            "datasets.d",
            {},
            [Reason.CONTENT_CHANGED],
            ["its bytes changed while its spec did not: everything built on it is flagged"],
        ),
        ("models.m", {}, [Reason.CONTENT_CHANGED], []),  # only data flags what is built on it
    ],
)
def test_review_warnings(
    address: str, body: dict[str, Any], reasons: list[Reason], expected: list[str]
) -> None:
    assert review_warnings(planned(address, body, Action.UPDATE, reasons)) == expected


@pytest.mark.parametrize(
    ("address", "body", "action", "refused"),
    [
        ("models.m", HIGH, Action.UPDATE, True),
        ("models.m", NAMED, Action.CREATE, True),  # approved_at missing
        ("models.m", APPROVED, Action.UPDATE, False),
        ("models.m", HIGH, Action.NOOP, False),  # ships nothing
        ("models.m", {"card": {"risk": "low"}}, Action.UPDATE, False),
        ("prompts.p", HIGH, Action.UPDATE, False),
    ],
)
def test_a_protected_environment_needs_a_recorded_review_of_a_high_risk_model(
    address: str, body: dict[str, Any], action: Action, refused: bool
) -> None:
    plans = [planned(address, body, action)]
    if not refused:
        check_reviews(plans, "prod", source)
        return
    with pytest.raises(MlxError) as caught:
        check_reviews(plans, "prod", source)
    (diag,) = caught.value.diagnostics
    assert diag.summary.startswith(f'{address} has card.risk: high; environment "prod"')
    assert diag.source == Source(f"{address}:card.risk")


# -- ignore_changes and --target -------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "recorded", "paths", "expected"),
    [
        ({"a": 1}, {"a": 2}, ["a"], {"a": 2}),
        ({"a": 1}, {}, ["a"], {"a": 1}),  # nothing recorded there: the spec's value
        ({"x": {"y": 1, "z": 3}}, {"x": {"y": 2}}, ["x.y"], {"x": {"y": 2, "z": 3}}),
        ({}, {"x": {"y": 2}}, ["x.y"], {"x": {"y": 2}}),
        ({"a": 1, "b": 1}, {"a": 2, "b": 2}, ["b"], {"a": 1, "b": 2}),
    ],
)
def test_ignore_changes_keeps_recorded_values(
    body: dict[str, Any], recorded: dict[str, Any], paths: list[str], expected: dict[str, Any]
) -> None:
    assert keep_recorded(body, recorded, paths) == expected


GRAPH = nx.DiGraph([("datasets.d", "models.m"), ("models.m", "evals.g"), ("models.x", "evals.h")])


@pytest.mark.parametrize(
    ("targets", "expected"),
    [
        ([], None),
        (["evals.g"], {"evals.g", "models.m", "datasets.d"}),
        (["models.m"], {"models.m", "datasets.d"}),
        (["models.old"], {"models.old"}),  # removed from the spec: its deletion
        (["evals.g", "evals.h"], {"evals.g", "models.m", "datasets.d", "evals.h", "models.x"}),
    ],
)
def test_target_scope_is_each_target_and_what_it_depends_on(
    targets: list[str], expected: set[str] | None
) -> None:
    declared = dict.fromkeys(GRAPH.nodes)
    assert scope(targets, declared, GRAPH, {"models.old": row("models.old")}) == expected


def test_an_unknown_target_is_refused_with_a_suggestion() -> None:
    declared = dict.fromkeys(GRAPH.nodes)
    with pytest.raises(
        MlxError, match=r'--target datasets\.e: no such resource \(did you mean "datasets\.d"\?\)'
    ):
        scope(["datasets.e"], declared, GRAPH, {})
