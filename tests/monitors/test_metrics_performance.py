"""The performance monitor's pure parts, one table row per branch: the rows of a logged body,
the predictions of a logged answer, a labelled request's units for each metric, a slice
against its floor, and a window with versions and segments."""

from __future__ import annotations

from typing import Any

import pytest

from inference.monitor_window import Labelled
from providers.monitor.metric_judge import Verdict
from providers.monitor.payload_rows import input_rows, predictions
from providers.monitor.performance import Group, Unit, judge_group, judge_window, units_of


@pytest.mark.parametrize(
    ("inputs", "rows"),
    [
        (None, None),  # not sampled
        ({"$truncated": True, "bytes": 9, "limit": 1}, None),
        ({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}},
         [{"a": 1, "b": 2}, {"a": 3, "b": 4}]),
        ({"dataframe_split": {"data": [[1, 2]]}}, [{}]),  # by position: no names
        ({"dataframe_records": [{"a": 1}]}, [{"a": 1}]),
        ({"instances": [{"a": 1}, [1, 2]]}, [{"a": 1}, {}]),
        ({"inputs": [{"a": 1}]}, [{"a": 1}]),
        ({"inputs": {"a": [1, 2], "b": [3, 4]}}, [{"a": 1, "b": 3}, {"a": 2, "b": 4}]),
        ({"inputs": {"a": 1, "b": 2}}, [{"a": 1, "b": 2}]),
        ([{"a": 1}, {"a": 2}], [{"a": 1}, {"a": 2}]),
        ({"a": 1, "country": "fr"}, [{"a": 1, "country": "fr"}]),  # any other object: a record
        ("text", None),
    ],
)  # fmt: skip
def test_input_rows(inputs: Any, rows: Any) -> None:
    assert input_rows(inputs) == rows


@pytest.mark.parametrize(
    ("outputs", "preds"),
    [
        ({"predictions": [1, 0]}, [1, 0]),
        ([0.3], [0.3]),
        ({"predictions": "x"}, None),
        ({"$truncated": True}, None),
        (None, None),
        ({"other": [1]}, None),
    ],
)
def test_predictions(outputs: Any, preds: Any) -> None:
    assert predictions(outputs) == preds


def _x(label: Any = None, outputs: Any = None, score: float | None = None, **kw: Any) -> Labelled:
    values: dict[str, Any] = {
        "request_id": "r1",
        "variant": "stable",
        "version": "1",
        "inputs": {"dataframe_records": [{"country": "fr"}]},
        "outputs": outputs,
        "label": label,
        "outcome": None,
        "score": score,
    }
    values.update(kw)
    return Labelled(**values)


ONE = {"predictions": [1]}


@pytest.mark.parametrize(
    ("x", "metric", "values", "unmatched", "segments"),
    [
        (_x(1, ONE), "accuracy", [1.0], False, [{"country": "fr"}]),  # one row, right
        (_x(0, ONE), "accuracy", [0.0], False, [{"country": "fr"}]),  # wrong
        (_x(1.0, ONE), "accuracy", [1.0], False, [{"country": "fr"}]),  # 1 == 1.0
        (_x("1", ONE), "accuracy", [0.0], False, [{"country": "fr"}]),  # "1" is not 1
        (_x(None, ONE, score=1.0), "accuracy", [], True, []),  # feedback without a label
        (_x(1, None), "accuracy", [], True, []),  # the answer was not sampled
        (_x(1, {"predictions": [1, 0]}), "accuracy", [], True, []),  # a scalar for two rows
        (_x([1, 1], {"predictions": [1, 0]}, inputs={"dataframe_records": [
            {"country": "fr"}, {"country": "de"}]}), "accuracy", [1.0, 0.0], False,
         [{"country": "fr"}, {"country": "de"}]),  # per row
        (_x([1], {"predictions": [1, 0]}), "accuracy", [], True, []),  # lengths differ
        (_x(1, ONE, inputs=None), "accuracy", [1.0], False, [{}]),  # no inputs: no segment
        (_x(None, None, score=0.5), "success_rate", [1.0], False, [{"country": "fr"}]),
        (_x(None, None, score=0.0), "success_rate", [0.0], False, [{"country": "fr"}]),
        (_x("good", None, score=None), "success_rate", [], True, []),  # no numeric score
        (_x(None, None, score=3.5), "mean_score", [3.5], False, [{"country": "fr"}]),
        (_x(None, None, score=1.0, inputs={"dataframe_records": [
            {"country": "fr"}, {"country": "de"}]}), "mean_score", [1.0], False, [{}]),  # mixed
    ],
)  # fmt: skip
def test_units_of(
    x: Labelled, metric: str, values: list[float], unmatched: bool, segments: list[Any]
) -> None:
    units, unusable, _ = units_of(x, metric, ["country"])
    assert [u.value for u in units] == values
    assert unusable is unmatched
    assert [u.segment for u in units] == segments


def _units(correct: int, wrong: int, **kw: Any) -> list[Unit]:
    return [Unit(f"r{i}", "stable", "1", 1.0, **kw) for i in range(correct)] + [
        Unit(f"w{i}", "stable", "1", 0.0, **kw) for i in range(wrong)
    ]


@pytest.mark.parametrize(
    ("group", "min_labels", "verdict", "finding"),
    [
        (Group(100, _units(7, 3)), 1, Verdict.BREACH,
         "accuracy 0.7 < 0.8 (10 labelled of 100 requests: coverage 10%)"),
        (Group(100, _units(8, 2)), 1, Verdict.OK,
         "accuracy 0.8 >= 0.8 (10 labelled of 100 requests: coverage 10%)"),
        (Group(100, _units(1, 4)), 20, Verdict.INSUFFICIENT_DATA,
         "accuracy: 5 labels < min_labels 20 (5 labelled of 100 requests: coverage 5%)"),
        (Group(100, []), 1, Verdict.INSUFFICIENT_DATA,
         "accuracy: 0 labels < min_labels 1 (0 labelled of 100 requests: coverage 0%)"),
        (Group(0, []), 1, Verdict.NO_DATA, "accuracy: no requests"),
    ],
)  # fmt: skip
def test_judge_group(group: Group, min_labels: int, verdict: Verdict, finding: str) -> None:
    j = judge_group("accuracy", 0.8, min_labels, ("stable", "1"), group)
    assert j.verdict is verdict
    assert j.finding == finding
    rows = {r.metric: r.value for r in j.rows}
    assert rows["labelled"] == group.labelled and rows["requests"] == group.requests
    assert rows["label_coverage"] == (group.labelled / group.requests if group.requests else None)


def _labelled(variant: str, version: str, right: int, wrong: int, country: str) -> list[Labelled]:
    out = []
    for i in range(right + wrong):
        out.append(
            _x(1 if i < right else 0, ONE, request_id=f"{variant}-{country}-{i}", variant=variant,
               version=version, inputs={"dataframe_records": [{"country": country}]})
        )  # fmt: skip
    return out


def test_a_window_with_versions_and_segments() -> None:
    labelled = (
        _labelled("stable", "1", 45, 5, "fr")  # 0.9
        + _labelled("stable", "1", 20, 20, "de")  # 0.5: a segment breaches
        + _labelled("canary", "2", 4, 1, "fr")  # 5 labels: below min_labels 10
    )
    run = judge_window(
        {("stable", "1"): 900, ("canary", "2"): 100},
        labelled,
        metric="accuracy",
        threshold=0.7,
        min_labels=10,
        by=["country"],
        min_rows=30,
    )
    assert run["state"] == "firing"
    judged = {(s["variant"], s["version"], s["segment"]): s for s in run["slices"]}
    assert judged[("stable", "1", None)]["verdict"] == "ok"  # 65 / 90 = 0.72
    assert judged[("stable", "1", "country=de")]["breach"] is True
    assert judged[("stable", "1", "country=de")]["findings"] == [
        "country=de: accuracy 0.5 < 0.7 (40 labelled)"
    ]
    assert judged[("stable", "1", "country=fr")]["verdict"] == "ok"
    unjudged = {(s["variant"], s["version"], s["segment"]): s for s in run["unjudged"]}
    # below min_labels: not judged, never ok; and its segment is under min_rows
    assert set(unjudged) == {("canary", "2", None), ("canary", "2", "country=fr")}
    assert unjudged[("canary", "2", None)]["verdict"] == "insufficient_data"
    assert run["drifted_slices"] == [["stable", "1"]]
    whole = {m["metric"]: m["value"] for m in run["whole"]["metrics"]}
    assert whole["labelled"] == 95 and whole["requests"] == 1000
    assert whole["label_coverage"] == pytest.approx(95 / 1000)
    assert whole["accuracy"] == pytest.approx(69 / 95)
    assert run["segments"]["segment_coverage"] == 1.0


def test_a_segment_threshold_of_its_own() -> None:
    labelled = _labelled("stable", "1", 45, 5, "fr") + _labelled("stable", "1", 34, 6, "de")
    run = judge_window(
        {("stable", "1"): 90}, labelled, metric="accuracy", threshold=0.7, min_labels=1,
        by=["country"], min_rows=30, segment_threshold=0.88,
    )  # fmt: skip
    assert run["state"] == "firing"
    assert [s["segment"] for s in run["slices"] if s["breach"]] == ["country=de"]  # 0.85 < 0.88


@pytest.mark.parametrize(
    ("requests", "labelled", "min_labels", "state"),
    [
        ({}, [], 1, "no_data"),
        ({("stable", "1"): 50}, [], 1, "insufficient_data"),  # traffic, no label
        ({("stable", "1"): 50}, _labelled("stable", "1", 3, 0, "fr"), 5, "insufficient_data"),
        ({("stable", "1"): 50}, _labelled("stable", "1", 5, 0, "fr"), 5, "ok"),
        ({("stable", "1"): 50}, _labelled("stable", "1", 2, 3, "fr"), 5, "firing"),
    ],
)
def test_the_state_of_a_window(
    requests: dict[Any, int], labelled: list[Labelled], min_labels: int, state: str
) -> None:
    run = judge_window(requests, labelled, metric="accuracy", threshold=0.8, min_labels=min_labels)
    assert run["state"] == state
    if state == "insufficient_data":
        assert run["slices"] == [] and "< min_labels" in run["reason"]
