"""alerts.lifecycle.step: each branch of one alert's run, as a table, and whole sequences."""

from __future__ import annotations

import pytest

from alerts import AlertKey, AlertRecord, AlertState, Condition, Notify, Rule, step

OK, BREACH, NO_DATA, ERROR = Condition.OK, Condition.BREACH, Condition.NO_DATA, Condition.ERROR
INACTIVE, PENDING, FIRING = AlertState.INACTIVE, AlertState.PENDING, AlertState.FIRING
H = 3600.0


def firing(condition: Condition = BREACH, since: float = 0.0, notified: float = 0.0) -> AlertRecord:
    return AlertRecord(FIRING, condition, 3, since, notified, notified)


@pytest.mark.parametrize(
    ("record", "condition", "now", "rule", "state", "streak", "notify"),
    [
        # inactive → pending while fewer than `for` runs were not ok
        (AlertRecord(), BREACH, 10.0, Rule(for_runs=3), PENDING, 1, None),
        (
            AlertRecord(PENDING, BREACH, 1, 10.0, None, 10.0),
            BREACH,
            20.0,
            Rule(3),
            PENDING,
            2,
            None,
        ),
        # the `for`-th run fires and notifies
        (
            AlertRecord(PENDING, BREACH, 2, 10.0, None, 20.0),
            BREACH,
            30.0,
            Rule(3),
            FIRING,
            3,
            Notify.FIRING,
        ),
        (AlertRecord(), BREACH, 10.0, Rule(for_runs=1), FIRING, 1, Notify.FIRING),
        # no data and errors count like a breach: never healthy
        (AlertRecord(), NO_DATA, 10.0, Rule(1), FIRING, 1, Notify.FIRING),
        (
            AlertRecord(PENDING, BREACH, 1, 10.0, None, 10.0),
            ERROR,
            20.0,
            Rule(2),
            FIRING,
            2,
            Notify.FIRING,
        ),
        # firing: quiet until repeat_interval, then repeats
        (firing(notified=100.0), BREACH, 100.0 + H, Rule(1, 4 * H), FIRING, 4, None),
        (firing(notified=100.0), BREACH, 100.0 + 4 * H, Rule(1, 4 * H), FIRING, 4, Notify.REPEAT),
        # a firing record that never recorded a message (written by hand, or cut) sends one
        (
            AlertRecord(FIRING, BREACH, 3, 0.0, None, 50.0),
            BREACH,
            60.0,
            Rule(1),
            FIRING,
            4,
            Notify.REPEAT,
        ),
        # a changed condition while firing is news
        (firing(BREACH, notified=100.0), NO_DATA, 200.0, Rule(1), FIRING, 4, Notify.FIRING),
        # one ok run resolves a firing alert once; a pending one goes quiet
        (firing(), OK, 50.0, Rule(1), INACTIVE, 0, Notify.RESOLVED),
        (firing(), OK, 50.0, Rule(1, send_resolved=False), INACTIVE, 0, None),
        (AlertRecord(PENDING, BREACH, 1, 10.0, None, 10.0), OK, 20.0, Rule(3), INACTIVE, 0, None),
        (AlertRecord(), OK, 20.0, Rule(1), INACTIVE, 0, None),
    ],
)
def test_step(
    record: AlertRecord,
    condition: Condition,
    now: float,
    rule: Rule,
    state: AlertState,
    streak: int,
    notify: Notify | None,
) -> None:
    out = step(record, condition, now, rule)
    assert (out.record.state, out.record.streak, out.notify) == (state, streak, notify)
    assert out.record.decided_at == now
    if notify is not None:
        assert out.record.notified_at == now
    if state is INACTIVE:
        assert out.record.since is None and out.record.condition is OK


def test_since_is_when_the_streak_began() -> None:
    rule = Rule(for_runs=2)
    first = step(AlertRecord(), BREACH, 10.0, rule).record
    second = step(first, BREACH, 20.0, rule).record
    assert (first.since, second.since, second.state) == (10.0, 10.0, FIRING)


@pytest.mark.parametrize("now", [30.0, 29.0])
def test_a_run_already_decided_changes_nothing(now: float) -> None:
    """Two overlapping refresh runs read the same record: the second sends nothing."""
    record = step(AlertRecord(PENDING, BREACH, 1, 10.0, None, 20.0), BREACH, 30.0, Rule(2))
    assert record.notify is Notify.FIRING
    again = step(record.record, BREACH, now, Rule(2))
    assert again.notify is None and again.record == record.record


def test_a_sequence_notifies_once_per_state() -> None:
    rule = Rule(for_runs=2, repeat_interval_s=80.0)
    conditions = [OK, BREACH, BREACH, BREACH, BREACH, OK, OK, BREACH]
    record, sent = AlertRecord(), []
    for i, condition in enumerate(conditions):
        out = step(record, condition, float(i * 40), rule)
        record = out.record
        sent.append(out.notify)
    # fires at t=80 (the second breach), repeats at t=160 (80 s later), resolves at t=200
    assert sent == [None, None, Notify.FIRING, None, Notify.REPEAT, Notify.RESOLVED, None, None]


@pytest.mark.parametrize(
    ("kwargs", "word"), [({"for_runs": 0}, "for"), ({"repeat_interval_s": 0}, "repeat")]
)
def test_a_rule_out_of_range_is_refused(kwargs: dict[str, float], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        Rule(**kwargs)  # type: ignore[arg-type]


def test_the_key_names_resource_version_and_signal() -> None:
    assert str(AlertKey("monitors.drift", "data_drift", "3")) == "monitors.drift@3/data_drift"
    assert str(AlertKey("budgets.llm", "cost")) == "budgets.llm/cost"
