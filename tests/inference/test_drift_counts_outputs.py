"""Counting the logged ``outputs`` (prediction drift) in the store, SQLite and PostgreSQL: the
counts equal ``analysis.drift.count`` over the values the documented layout rule reads from the
rows written (scalar predictions are the monitor's one feature — or ``prediction`` —, object
predictions count by key, list predictions are invalid)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import event

from analysis.drift import build_feature
from analysis.drift.profile import CategoricalProfile, NumericProfile
from inference.drift_bins import Bins, SliceCounts, bins_from_profile, merge
from inference.drift_counts import PREDICTION, Payload, scalar_feature, window_counts
from inference.records import InferenceRecord
from inference.store import PAYLOAD_LIMIT_BYTES, LogStore
from tests.inference.conftest import T0, rec
from tests.inference.test_drift_counts import (
    CASES,
    MISSING,
    REFERENCE,
    _invalid,
    assert_same,
    expected,
    write,
)

Profile = NumericProfile | CategoricalProfile

LABELS = ["u"] * 5 + ["v"] * 4 + ["3"] * 3 + ["w"] * 2 + ["z"]


def numeric(name: str) -> NumericProfile:
    p = build_feature(name, REFERENCE)
    assert isinstance(p, NumericProfile)
    return p


def categorical(name: str, labels: Sequence[str] = LABELS) -> CategoricalProfile:
    p = build_feature(name, list(labels), top_k=3)
    assert isinstance(p, CategoricalProfile)
    return p


def bins(*profiles: Profile) -> list[Bins]:
    return bins_from_profile({"features": {p.name: p.as_dict() for p in profiles}})


# -- the rule, in Python, independent of the SQL ------------------------------------------------
def predictions(doc: Any) -> list[Any]:
    """The data rows of a logged answer: the list, MLflow's ``{"predictions": …}`` unwrapped,
    one object or scalar as one row."""
    if isinstance(doc, dict) and PREDICTION + "s" in doc:
        doc = doc["predictions"]
    return doc if isinstance(doc, list) else [doc]


def values_of(docs: Sequence[Any], names: Sequence[str]) -> dict[str, list[Any]]:
    """Each feature's value per data row of ``docs`` (MISSING: absent from the row)."""
    scalar = names[0] if len(names) == 1 else PREDICTION if PREDICTION in names else None
    out: dict[str, list[Any]] = {n: [] for n in names}
    for doc in docs:
        for row in predictions(doc):
            for n in names:
                if isinstance(row, dict):
                    out[n].append(row.get(n, MISSING))
                else:
                    out[n].append(row if n == scalar else MISSING)
    return out


def docs_of(rows: list[Any]) -> Iterator[Any]:
    """The rows spread over the forms an answer is logged in: a bare list, MLflow's wrapped
    list, one bare object or scalar, one wrapped value."""
    i = n = 0
    while i < len(rows):
        kind = n % 4
        n += 1
        one = rows[i]
        doc: Any
        if kind in (2, 3) and (one is None or isinstance(one, list)):
            kind = 0  # null alone is no payload; a list alone is read as the rows
        if kind == 0:
            doc, size = rows[i : i + 3], 3
        elif kind == 1:
            doc, size = {"predictions": rows[i : i + 3]}, 3
        elif kind == 2:
            doc, size = one, 1
        else:
            doc, size = {"predictions": one}, 1
        yield doc
        i += size


def logged(
    docs: list[Any], *, variant: str = "stable", version: str = "1"
) -> list[InferenceRecord]:
    return [
        rec(
            f"{variant}-{j}",
            ts=T0 + j * 0.001,
            variant=variant,
            version=version,
            inputs={"dataframe_records": [{"x": 1.0}]},
            outputs=doc,
        )
        for j, doc in enumerate(docs)
    ]


def check(got: SliceCounts, docs: list[Any], profiles: Sequence[Profile]) -> None:
    values = values_of(docs, [p.name for p in profiles])
    for p in profiles:
        vs = values[p.name]
        num = p.kind == "numeric"
        assert_same(got.features[p.name], expected(vs, p), sum(_invalid(v, num) for v in vs))
    assert got.rows == sum(len(predictions(d)) for d in docs)


SCALAR_X = [x for x, _ in CASES if x is not MISSING] + [[0.2, 0.8], "fraud"]
SCALAR_C = [c for _, c in CASES if c is not MISSING] + [[0.2, 0.8], 1.5, False]


# -- scalar_feature: which feature a scalar prediction is --------------------------------------
@pytest.mark.parametrize(
    ("names", "want"),
    [
        (["label"], 0),  # the monitor's one feature, whatever its name
        (["prediction"], 0),
        (["score", "prediction"], 1),  # several: the one named prediction
        (["score", "label"], None),  # several, none named prediction: scalars count nowhere
        ([], None),
    ],
)
def test_scalar_feature(names: list[str], want: int | None) -> None:
    assert scalar_feature(names) == want


# -- the log, SQLite and PostgreSQL ------------------------------------------------------------
def test_scalar_scores_count_as_the_one_feature(store: LogStore) -> None:
    score = numeric("score")
    docs = list(docs_of(SCALAR_X))
    assert {type(d).__name__ for d in docs} >= {"list", "dict", "float"}
    write(store, logged(docs))
    got = window_counts(store, "fraud", bins(score), column=Payload.OUTPUTS)
    check(got[("stable", "1")], docs, [score])
    assert got[("stable", "1")].features["score"].invalid > 0  # the list and the text


def test_scalar_labels_count_as_categories(store: LogStore) -> None:
    label = categorical("label", ["0.5"] * 6 + LABELS)  # a real number is a top category
    docs = list(docs_of([*SCALAR_C, 0.5, 0.5]))
    assert {type(d).__name__ for d in docs} >= {"list", "dict", "str"}
    write(store, logged(docs))
    got = window_counts(store, "fraud", bins(label), column=Payload.OUTPUTS)
    check(got[("stable", "1")], docs, [label])
    assert got[("stable", "1")].features["label"].counts[0] == 2  # 0.5, by its JSON text


def test_object_predictions_count_by_key_per_slice(store: LogStore) -> None:
    label, score = categorical("label"), numeric("score")
    stable = [{"label": c, "score": x} for x, c in CASES]
    stable = [{k: v for k, v in r.items() if v is not MISSING} for r in stable]
    candidate = [*list(reversed(stable))[:7], [0.1, 0.9], 0.5, "u"]  # scalars: no feature
    sd, cd = list(docs_of(stable)), list(docs_of(candidate))
    write(store, logged(sd) + logged(cd, variant="candidate", version="2"))
    got = window_counts(store, "fraud", bins(label, score), column=Payload.OUTPUTS)
    assert set(got) == {("stable", "1"), ("candidate", "2")}
    check(got[("stable", "1")], sd, [label, score])
    check(got[("candidate", "2")], cd, [label, score])


def test_scalars_and_objects_mixed_with_a_prediction_feature(store: LogStore) -> None:
    """Several features: a scalar is the value of ``prediction``; an object counts by key."""
    pred, score = categorical("prediction"), numeric("score")
    rows: list[Any] = ["u", "v", {"prediction": "3", "score": 40.0}, 7, [1], None]
    rows += [{"score": 12.5}, "w", {"prediction": "v"}, True]
    docs = list(docs_of(rows * 3))
    write(store, logged(docs))
    got = window_counts(store, "fraud", bins(pred, score), column=Payload.OUTPUTS)
    check(got[("stable", "1")], docs, [pred, score])
    assert sum(got[("stable", "1")].features["prediction"].counts) > 0


def test_outputs_coverage_unsampled_failed_and_truncated(store: LogStore) -> None:
    label = categorical("label")
    write(
        store,
        [
            rec("a", inputs={"x": 1}, outputs=["u", "v"]),
            rec("b", inputs={"x": 1}, outputs=None, status=500, error="boom"),  # no answer
            rec("c"),  # not sampled
            rec("d", inputs={"x": 1}, outputs=["u" * (PAYLOAD_LIMIT_BYTES + 10)]),
            rec("e", endpoint="other", outputs=["u"]),
        ],
    )
    got = window_counts(store, "fraud", bins(label), column=Payload.OUTPUTS)[("stable", "1")]
    assert (got.requests, got.sampled, got.truncated, got.rows) == (4, 2, 1, 2)
    assert got.features["label"].counts[:2] == [1, 1]
    # the same window's inputs are another column: three requests kept theirs
    inputs = window_counts(store, "fraud", bins(label))[("stable", "1")]
    assert (inputs.requests, inputs.sampled, inputs.truncated) == (4, 3, 0)


def test_outputs_are_one_statement(store: LogStore) -> None:
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    write(store, logged(list(docs_of(SCALAR_C * 5))))
    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        got = window_counts(store, "fraud", bins(categorical("label")), column=Payload.OUTPUTS)
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert len(statements) == 1 and "GROUP BY" in statements[0]
    assert "outputs" in statements[0] and got[("stable", "1")].rows == len(SCALAR_C) * 5


def test_windows_of_outputs_merge_by_addition(store: LogStore) -> None:
    label, score = categorical("label"), numeric("score")
    rows: list[Any] = [{"label": c, "score": x} for x, c in CASES]
    rows = [{k: v for k, v in r.items() if v is not MISSING} for r in rows] * 3
    records = logged(list(docs_of(rows)))
    write(store, records)
    features = bins(label, score)
    middle = records[len(records) // 2].ts
    kw: dict[str, Any] = {"column": Payload.OUTPUTS}
    first = window_counts(store, "fraud", features, since=T0, until=middle, **kw)
    second = window_counts(store, "fraud", features, since=middle, until=T0 + 100, **kw)
    union = window_counts(store, "fraud", features, since=T0, until=T0 + 100, **kw)
    both, want = merge(first, second)[("stable", "1")], union[("stable", "1")]
    assert first[("stable", "1")].rows > 0 and second[("stable", "1")].rows > 0
    assert (both.requests, both.rows) == (want.requests, want.rows) == (len(records), len(rows))
    for name in ("label", "score"):
        a, b = both.features[name], want.features[name]
        assert (a.counts, a.null, a.below, a.above, a.other, a.invalid) == (
            b.counts, b.null, b.below, b.above, b.other, b.invalid,
        )  # fmt: skip
        assert a.offsets == pytest.approx(b.offsets)
