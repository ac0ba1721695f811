"""Analysis runs over time: Argo Rollouts' limits as a table, and a tally that resumes."""

from __future__ import annotations

import json

import pytest

from analysis.base import AnalysisError, Bounds, Measurement, Verdict
from analysis.runs import Action, Limits, Tally, decide, run_verdict
from specs.rollouts import Analysis

P, F, N = Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE  # N: not conclusive
E = "error"  # a run that could not be taken


def tally_of(looks: list[Verdict | str]) -> Tally:
    tally = Tally()
    for look in looks:
        tally = tally.record_error() if look == E else tally.record(look)  # type: ignore[arg-type]
    return tally


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([P, P, P], P),
        ([P, N, P], N),
        ([P, N, F], F),
        ([F, P], F),
        ([N], N),
        ([], N),  # nothing judged is not a pass
    ],
)
def test_a_runs_verdict(verdicts: list[Verdict], expected: Verdict) -> None:
    assert run_verdict(verdicts) is expected
    measured = [Measurement("m", 1.0, 1.0, Bounds(), v, "") for v in verdicts]
    assert run_verdict(measured) is expected


DEFAULT = Limits()


@pytest.mark.parametrize(
    ("looks", "limits", "expected"),
    [
        ([], DEFAULT, Action.CONTINUE),
        ([P, P, P], DEFAULT, Action.CONTINUE),
        ([F], DEFAULT, Action.ABORT),  # failure_limit 0: the first failure aborts
        ([P, P, F], DEFAULT, Action.ABORT),
        ([F], Limits(failure_limit=1), Action.CONTINUE),
        ([F, P, F], Limits(failure_limit=1), Action.ABORT),
        ([N], DEFAULT, Action.PAUSE),  # inconclusive_limit 0: the first one pauses
        ([N, N], Limits(inconclusive_limit=2), Action.CONTINUE),
        ([N, N, N], Limits(inconclusive_limit=2), Action.PAUSE),
        ([N, F], DEFAULT, Action.ABORT),  # abort wins over pause
        ([E, E, E, E], DEFAULT, Action.CONTINUE),  # consecutive_error_limit 4
        ([E, E, E, E, E], DEFAULT, Action.ABORT),
        ([E, E, E, E, P, E, E, E, E], DEFAULT, Action.CONTINUE),  # a taken run resets the streak
        (
            [E, E, E, E, N],
            Limits(inconclusive_limit=1),
            Action.CONTINUE,
        ),  # so does an inconclusive one
        ([E], Limits(consecutive_error_limit=0), Action.ABORT),
        ([E, E, E, E, E, E], Limits(consecutive_error_limit=5), Action.ABORT),
    ],
)
def test_what_a_tally_decides(looks: list[Verdict | str], limits: Limits, expected: Action) -> None:
    assert decide(tally_of(looks), limits).action is expected


def test_reasons_name_the_limit() -> None:
    assert decide(tally_of([F])).reason == "1 failed run(s), more than failure_limit 0"
    assert "5 consecutive runs could not be measured" in decide(tally_of([E] * 5)).reason
    assert "inconclusive_limit 0: waiting for a person" in decide(tally_of([N])).reason


def test_the_tally_counts_every_run() -> None:
    tally = tally_of([P, F, N, E, E, P, E])
    assert tally == Tally(passed=2, failed=1, inconclusive=1, errors=3, consecutive_errors=1)
    assert tally.runs == 7


def test_a_tally_stored_as_json_resumes_where_it_left_off() -> None:
    looks: list[Verdict | str] = [P, E, E, P, E, N, P, E, E]
    straight = tally_of(looks)
    resumed = Tally()
    for look in looks:  # store and reload after every look, as the controller does
        resumed = Tally.from_json(json.dumps(json.loads(resumed.to_json())))
        resumed = resumed.record_error() if look == E else resumed.record(look)  # type: ignore[arg-type]
    assert resumed == straight
    assert json.loads(straight.to_json()) == {
        "consecutive_errors": 2,
        "errors": 5,
        "failed": 0,
        "inconclusive": 1,
        "passed": 3,
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"passed": 1}, "missing key"),
        ({**Tally().to_dict(), "runs": 3}, r"unknown key\(s\) runs"),
        ({**Tally().to_dict(), "failed": -1}, "tally.failed must be >= 0"),
        ({**Tally().to_dict(), "failed": "1"}, "tally.failed must be a whole number"),
        ({**Tally().to_dict(), "consecutive_errors": 2}, r"consecutive_errors \(2\) exceeds"),
    ],
)
def test_a_corrupt_stored_tally_gets_a_one_line_error(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(AnalysisError, match=message) as caught:
        Tally.from_dict(data, where="state rollouts.fraud analysis")
    assert str(caught.value).startswith("state rollouts.fraud analysis: ")


def test_stored_tally_that_is_not_json() -> None:
    with pytest.raises(AnalysisError, match="tally is not valid JSON"):
        Tally.from_json("{passed: 1")
    with pytest.raises(AnalysisError, match="must be a JSON object"):
        Tally.from_json("[1, 2]")


def test_limits_from_the_spec_keep_argos_other_defaults() -> None:
    limits = Limits.of(Analysis(failure_limit=2))
    assert limits == Limits(failure_limit=2, inconclusive_limit=0, consecutive_error_limit=4)
    with pytest.raises(AnalysisError, match="failure_limit must be >= 0"):
        Limits(failure_limit=-1)
