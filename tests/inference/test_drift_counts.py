"""Counting in the store: a log window (SQLite, PostgreSQL) and CSV/Parquet files (DuckDB) into
a reference profile's bins, equal to ``analysis.drift.count`` on the same values."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from analysis.drift import Histogram, build_feature, build_reference, count
from analysis.drift.profile import CategoricalProfile, NumericProfile
from inference.drift_bins import (
    CategoricalBins,
    FeatureCounts,
    NumericBins,
    SliceCounts,
    bins_from_profile,
    merge,
    total,
)
from inference.drift_counts import window_counts
from inference.drift_files import file_counts
from inference.records import InferenceRecord
from inference.store import PAYLOAD_LIMIT_BYTES, LogStore
from inference.writer import LogWriter
from tests.conftest import require_extra
from tests.inference.conftest import T0, rec

MISSING = object()  # the feature is absent from the request's inputs

REFERENCE = [float(i) for i in range(100)]  # 0 … 99: 20 bins of width ~5
X = build_feature("x", REFERENCE)
C = build_feature("c", ["u"] * 5 + ["v"] * 4 + ["3"] * 3 + ["w"] * 2 + ["z"], top_k=3)
assert isinstance(X, NumericProfile) and isinstance(C, CategoricalProfile)
FEATURES = bins_from_profile({"features": {"x": X.as_dict(), "c": C.as_dict()}})

#: (x, c) per data row: the edge cases of the brief, each in a column of its own.
CASES: list[tuple[Any, Any]] = [
    (X.edges[0], "u"),  # on the lowest edge (the reference minimum): the first bin
    (X.edges[5], "v"),  # exactly on an interior edge: the bin it opens
    (X.edges[5] - 1e-9, "3"),  # just under it: the bin before
    (99.0, "w"),  # the reference maximum: the last bin; "w" is beyond the top 3: other
    (X.edges[-1], "z"),  # the top edge (next float above the max): above
    (150.5, "u"),  # above the max
    (-3.25, "u"),  # below the min
    (None, None),  # JSON null: null
    (float("nan"), "v"),  # NaN: the log writes null
    (math.inf, "v"),  # inf: the log writes null
    ("3.5", 3),  # a string in a numeric column: invalid; a number in a categorical: "3"
    (True, True),  # a boolean: invalid / "True" (other)
    ([1], {"a": 1}),  # nested: invalid in both
    (MISSING, MISSING),  # the feature absent from the request
    (7, 2.5),  # an integer in a numeric column; a float category "2.5" (other)
    (42.0, "v"),
    (1e300, "u"),  # far above
    (-0.0, "u"),  # -0.0 == 0.0: the first bin
]


def _invalid(value: Any, numeric: bool) -> bool:
    if value is None or value is MISSING:
        return False
    if isinstance(value, list | dict):
        return True
    return numeric and (isinstance(value, bool) or not isinstance(value, int | float))


def expected(values: list[Any], profile: NumericProfile | CategoricalProfile) -> Histogram:
    """``analysis.drift.count`` of the values as the store sees them: invalid and missing
    values are None (the documented rule)."""
    numeric = profile.kind == "numeric"
    seen = [None if v is MISSING or _invalid(v, numeric) else v for v in values]
    return count(seen, profile)


def assert_same(got: FeatureCounts, want: Histogram, invalid: int) -> None:
    have = Histogram.from_dict(got.as_dict())
    assert have.counts == want.counts
    assert (have.null, have.below, have.above, have.other) == (
        want.null,
        want.below,
        want.above,
        want.other,
    )
    assert have.offsets == pytest.approx(want.offsets, rel=1e-12, abs=1e-9)
    assert have.below_gap == pytest.approx(want.below_gap, rel=1e-12)
    assert have.above_gap == pytest.approx(want.above_gap, rel=1e-12)
    assert got.invalid == invalid


def _row(x: Any, c: Any) -> dict[str, Any]:
    out = {}
    if x is not MISSING:
        out["x"] = x
    if c is not MISSING:
        out["c"] = c
    return out


def _uniform(chunk: list[tuple[Any, Any]]) -> bool:
    """Each feature present in every row of the chunk or in none (a frame's columns)."""
    return all(len({r[k] is MISSING for r in chunk}) == 1 for k in (0, 1))


def layouts(rows: list[tuple[Any, Any]]) -> Iterator[tuple[Any, int]]:
    """The rows, spread over every layout the log writes for a model endpoint: (inputs, rows)."""
    i = n = 0
    while i < len(rows):
        chunk = rows[i : i + 3]
        kind = n % 8
        n += 1
        if kind in (0, 2) and not _uniform(chunk):
            chunk = chunk[:1]
        names = [k for j, k in enumerate(("x", "c")) if chunk[0][j] is not MISSING]
        if kind == 0:  # dataframe_split: a missing feature has no column
            data = [[r[("x", "c").index(k)] for k in names] for r in chunk]
            inputs: Any = {"dataframe_split": {"columns": names, "data": data}}
        elif kind == 1:
            inputs = {"dataframe_records": [_row(*r) for r in chunk]}
        elif kind == 2:  # columns: a list of values per feature
            inputs = {"inputs": {k: [r[("x", "c").index(k)] for r in chunk] for k in names}}
        elif kind == 3:
            inputs = {"instances": [_row(*r) for r in chunk]}
        elif kind == 4:
            inputs = [_row(*r) for r in chunk]  # a bare list of records
        elif kind == 5:
            chunk = chunk[:1]
            inputs = _row(*chunk[0])  # one bare record
        elif kind == 6:
            inputs = {"inputs": [_row(*r) for r in chunk]}
        else:
            chunk = chunk[:1]
            inputs = {"inputs": _row(*chunk[0])}  # one row as an object of values
        yield inputs, len(chunk)
        i += len(chunk)


def write(store: LogStore, records: list[InferenceRecord]) -> None:
    """Through the real log writer (its thread, its batches)."""
    writer = LogWriter(store, flush_interval=0.01)
    for r in records:
        assert writer.submit(r) > 0
    assert writer.close()


def log_rows(
    rows: list[tuple[Any, Any]], *, variant: str, version: str, t: float
) -> list[InferenceRecord]:
    out = []
    for j, (inputs, _) in enumerate(layouts(rows)):
        out.append(
            rec(
                f"{variant}-{version}-{t}-{j}",
                ts=t + j * 0.001,
                variant=variant,
                version=version,
                inputs=inputs,
            )
        )
    return out


# -- the log ----------------------------------------------------------------------------------
def test_layouts_cover_every_row() -> None:
    assert sum(n for _, n in layouts(CASES)) == len(CASES)
    kinds = {next(iter(d), "{}") if isinstance(d, dict) else "list" for d, _ in layouts(CASES)}
    assert kinds >= {"dataframe_split", "dataframe_records", "inputs", "instances", "list", "x"}


def test_log_counts_equal_python_count(store: LogStore) -> None:
    """Every edge case, in every layout, in two slices: the store's counts are the pure
    Python count's, bin for bin."""
    stable = CASES
    candidate = list(reversed(CASES))[:11]
    write(
        store,
        log_rows(stable, variant="stable", version="1", t=T0)
        + log_rows(candidate, variant="candidate", version="2", t=T0 + 1),
    )
    got = window_counts(store, "fraud", FEATURES)
    assert set(got) == {("stable", "1"), ("candidate", "2")}
    for key, rows in ((("stable", "1"), stable), (("candidate", "2"), candidate)):
        xs, cs = [r[0] for r in rows], [r[1] for r in rows]
        assert_same(got[key].features["x"], expected(xs, X), sum(_invalid(v, True) for v in xs))
        assert_same(got[key].features["c"], expected(cs, C), sum(_invalid(v, False) for v in cs))
    # and the endpoint as a whole is the sum of its slices
    whole = total(got).features["x"]
    every = [r[0] for r in stable + candidate]
    assert Histogram.from_dict(whole.as_dict()).counts == expected(every, X).counts


def test_windows_merge_by_addition(store: LogStore) -> None:
    rows = CASES * 4
    records = log_rows(rows, variant="stable", version="1", t=T0)
    write(store, records)
    middle = records[len(records) // 2].ts
    first = window_counts(store, "fraud", FEATURES, since=T0, until=middle)
    second = window_counts(store, "fraud", FEATURES, since=middle, until=T0 + 100)
    union = window_counts(store, "fraud", FEATURES, since=T0, until=T0 + 100)
    both = merge(first, second)[("stable", "1")]
    want = union[("stable", "1")]
    assert first[("stable", "1")].requests > 0 and second[("stable", "1")].requests > 0
    assert (both.requests, both.sampled) == (want.requests, want.sampled) == (len(records),) * 2
    for name in ("x", "c"):
        a, b = both.features[name], want.features[name]
        assert (a.counts, a.null, a.below, a.above, a.other, a.invalid) == (
            b.counts,
            b.null,
            b.below,
            b.above,
            b.other,
            b.invalid,
        )
        assert a.offsets == pytest.approx(b.offsets)
        assert a.above_gap == pytest.approx(b.above_gap)


def test_coverage_counts_unsampled_and_truncated(store: LogStore) -> None:
    big = {"dataframe_records": [{"x": 1.0, "c": "u" * (PAYLOAD_LIMIT_BYTES + 10)}]}
    write(
        store,
        [
            rec("a", inputs={"dataframe_records": [{"x": 1.0}, {"x": 2.0}]}),
            rec("b", inputs=None),  # not sampled
            rec("c", inputs=None),
            rec("d", inputs=big),  # over the log's limit: kept as a marker
            rec("e", variant="candidate", version="2", inputs=None),
            rec("f", endpoint="other", inputs={"x": 5.0}),  # another endpoint
            rec("g", environment="prod", inputs={"x": 5.0}),  # another environment
            rec("h", ts=T0 + 500, inputs={"x": 5.0}),  # after the window
        ],
    )
    got = window_counts(store, "fraud", FEATURES, since=T0, until=T0 + 100)
    stable = got[("stable", "1")]
    assert (stable.requests, stable.sampled, stable.truncated) == (4, 2, 1)
    assert stable.coverage == pytest.approx(0.25)
    assert sum(stable.features["x"].counts) == 2  # the truncated payload is not counted
    assert stable.features["c"].null == 2  # the two rows had no "c"
    candidate = got[("candidate", "2")]
    assert (candidate.requests, candidate.sampled, candidate.coverage) == (1, 0, 0.0)
    assert sum(candidate.features["x"].counts) == candidate.features["x"].null == 0


def test_positional_rows_count_as_missing(store: LogStore) -> None:
    write(
        store,
        [
            rec("a", inputs={"instances": [[1.0, "u"], [2.0, "v"]]}),
            rec("b", inputs={"dataframe_split": {"data": [[1.0, "u"]]}}),
            rec("c", inputs={"inputs": [[3.0, "u"]]}),
        ],
    )
    x = window_counts(store, "fraud", FEATURES)[("stable", "1")].features["x"]
    assert (sum(x.counts), x.null, x.invalid) == (0, 4, 0)


def test_no_traffic_is_no_slice(store: LogStore) -> None:
    assert window_counts(store, "fraud", FEATURES) == {}


def test_one_statement_and_a_bounded_result(store: LogStore) -> None:
    """Memory flat in the row count: the window is one statement whose result is at most
    slices x features x (bins + 5) rows plus two coverage rows per slice, however many rows."""
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    def result_rows(n: int) -> int:
        records = log_rows(CASES * n, variant="stable", version="1", t=T0 + n)
        write(store, records)
        statements.clear()
        event.listen(store.engine, "before_cursor_execute", seen)
        try:
            counted = window_counts(store, "fraud", FEATURES, since=T0 + n, until=T0 + n + 1)
        finally:
            event.remove(store.engine, "before_cursor_execute", seen)
        assert len(statements) == 1
        assert counted[("stable", "1")].requests == len(records)
        with store.engine.connect() as conn:
            from sqlalchemy import text

            from inference.drift_counts import window_sql

            sql, params = window_sql(
                store.dialect, FEATURES, endpoint="fraud", since=T0 + n, until=T0 + n + 1
            )
            return len(conn.execute(text(sql), params).all())

    small, large = result_rows(1), result_rows(30)
    bound = sum(f.interior + 5 for f in FEATURES) + 2  # + coverage and data rows
    assert small <= bound and large <= bound
    assert large == small  # every bin already hit: 30x the rows, the same result


# -- DuckDB over files ------------------------------------------------------------------------
def _flat(rows: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """The cases a typed column can hold (a Parquet column has one type)."""
    out = []
    for x, c in rows:
        x = None if x is MISSING or _invalid(x, True) else x
        c = None if c is MISSING or _invalid(c, False) else c
        out.append((None if x is None else float(x), None if c is None else str(c)))
    return out


def test_parquet_counts_equal_python_count(tmp_path: Path) -> None:
    # pyarrow comes with MLflow (the dev extra), which CI installs: a missing one is a failure
    pa = require_extra("pyarrow", "mlflow")
    import pyarrow.parquet as pq

    rows = _flat(CASES)
    table = pa.table(
        {
            "x": [r[0] for r in rows],  # NaN and inf stay NaN and inf in Parquet
            "c": [r[1] for r in rows],
            "variant": ["stable"] * 10 + ["candidate"] * (len(rows) - 10),
            "version": ["1"] * 10 + ["2"] * (len(rows) - 10),
        }
    )
    path = tmp_path / "window.parquet"
    pq.write_table(table, path)
    got = file_counts(path, FEATURES, slice_by=("variant", "version"))
    for key, part in ((("stable", "1"), rows[:10]), (("candidate", "2"), rows[10:])):
        assert got[key].requests == len(part)
        assert_same(got[key].features["x"], expected([r[0] for r in part], X), 0)
        assert_same(got[key].features["c"], expected([r[1] for r in part], C), 0)


def test_csv_counts_and_text_cells(tmp_path: Path) -> None:
    """A CSV column with a cell that is not a number is text to DuckDB: the numbers still
    count as numbers, the other cells are invalid; a column the file lacks is null."""
    lines = ["x,c"] + [
        f"{'' if x is None else repr(x)},{'' if c is None else c}" for x, c in _flat(CASES)
    ]
    lines.append("n/a,u")
    path = tmp_path / "window.csv"
    path.write_text("\n".join(lines) + "\n")
    features = [*FEATURES, NumericBins("absent", (0.0, 1.0), 0.5)]
    got = file_counts(path, features)[(None, None)]
    xs = [r[0] for r in _flat(CASES)] + [None]
    assert got.requests == len(xs)
    assert_same(got.features["x"], expected(xs, X), 1)
    assert got.features["absent"].null == len(xs)


def test_files_refuse_other_formats(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"expected a \.parquet or \.csv"):
        file_counts(tmp_path / "data.json", FEATURES)


# -- the plain values --------------------------------------------------------------------------
def test_bins_from_profile_read_a_reference_profile() -> None:
    ref = build_reference("fp", {"x": REFERENCE, "c": ["a"] * 40 + ["b"] * 60}, top_k=5)
    bins = bins_from_profile(json.loads(json.dumps(ref.as_dict())))
    assert bins == [
        NumericBins("x", X.edges, 99.0),
        CategoricalBins("c", ("b", "a")),
    ]


def test_counts_add_and_refuse_other_bins() -> None:
    a = FeatureCounts([1, 2], [0.5, 0.0], null=1, invalid=1)
    b = FeatureCounts([0, 3], [0.25, 1.0], above=2, above_gap=3.0)
    s = a + b
    assert (s.counts, s.offsets, s.null, s.above, s.invalid) == ([1, 5], [0.75, 1.0], 1, 2, 1)
    with pytest.raises(ValueError, match="3 bins"):
        a + FeatureCounts([0, 0, 0])
    x = SliceCounts(2, 1, 0, {"x": a})
    y = SliceCounts(3, 3, 1, {"x": b})
    assert (x + y).requests == 5 and (x + y).coverage == pytest.approx(3 / 5)
    assert SliceCounts().coverage is None
