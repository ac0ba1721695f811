"""A reference profiled inside DuckDB equals the in-memory builder's profile of the same values.

``providers.monitor.reference.build_profile`` summarises numeric columns in DuckDB (no row
reaches Python); ``analysis.drift.build_feature`` is the definition it must match: counts,
min, max and distinct exactly; edges (the same interpolated quantiles), mean, std and summed
offsets to rounding. Each case is
written to a real Parquet (and CSV) file and profiled both ways.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis.drift import NumericProfile, build_feature
from analysis.drift.profile import KEEP_VALUES
from providers.monitor import reference_duckdb
from providers.monitor.reference import build_profile, ensure_profile, load_profile
from providers.monitor.reference_duckdb import in_engine


def _gauss(n: int, seed: int) -> list[float | None]:
    rng = random.Random(seed)
    return [rng.gauss(3.0, 2.0) for _ in range(n)]


def _with_gaps(n: int, seed: int) -> list[float | None]:
    rng = random.Random(seed)
    out: list[float | None] = []
    for i in range(n):
        pick = i % 11
        out.append(
            None
            if pick == 0
            else math.nan
            if pick == 1
            else math.inf
            if pick == 2
            else -math.inf
            if pick == 3
            else rng.expovariate(0.5)
        )
    return out


def _discrete(n: int, seed: int) -> list[float | None]:
    rng = random.Random(seed)
    return [float(rng.choice([0, 1, 2, 5])) for _ in range(n)]


def _ties(n: int, seed: int) -> list[float | None]:
    """Continuous with an atom at 0 holding a third of the values (repeated quantiles)."""
    rng = random.Random(seed)
    return [0.0 if i % 3 == 0 else rng.uniform(-1, 1) for i in range(n)]


CASES = {
    "continuous, large (no values kept)": (_gauss, 5000),
    "continuous, small (values kept)": (_gauss, 300),
    "exactly KEEP_VALUES values": (_gauss, KEEP_VALUES),
    "null, NaN and +-inf are missing": (_with_gaps, 2200),
    "discrete: a bin per value": (_discrete, 3000),
    "an atom shared by several quantiles": (_ties, 4000),
    "one value": (_gauss, 1),
}


def _assert_same(got: NumericProfile, want: NumericProfile) -> None:
    g, w = got.as_dict(), want.as_dict()
    for key in ("psi_groups", "distinct", "min", "max", "rows", "missing_rate"):
        assert g[key] == w[key], key
    # quantile_cont interpolates as binning.quantile; the last bit may round otherwise
    assert g["edges"] == pytest.approx(w["edges"], rel=1e-14, abs=1e-300)
    assert g["edges"][0] == w["edges"][0] and g["edges"][-1] == w["edges"][-1]
    for key in ("counts", "null", "below", "above", "other"):
        assert g["reference"][key] == w["reference"][key], key
    assert g["reference"]["offsets"] == pytest.approx(w["reference"]["offsets"], rel=1e-9)
    if w["mean"] is None:
        assert g["mean"] is None and g["std"] is None
    else:
        assert g["mean"] == pytest.approx(w["mean"], rel=1e-12, abs=1e-12)
        assert g["std"] == pytest.approx(w["std"], rel=1e-9, abs=1e-12)
    assert g["values"] == w["values"]


def _write_parquet(path: Path, columns: dict[str, list[Any]]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_numeric_column_profiled_in_duckdb_equals_the_in_memory_builder(
    tmp_path: Path, case: str
) -> None:
    make, n = CASES[case]
    values = make(n, 7)
    path = _write_parquet(tmp_path / "ref.parquet", {"x": pa.array(values, pa.float64())})
    got = build_profile("fp", path).features["x"]
    want = build_feature("x", values)
    assert isinstance(got, NumericProfile) and isinstance(want, NumericProfile)
    _assert_same(got, want)


def test_an_all_null_numeric_column_is_an_empty_profile_as_in_memory(tmp_path: Path) -> None:
    path = _write_parquet(
        tmp_path / "ref.parquet",
        {"x": pa.array([None] * 50, pa.float64()), "y": pa.array(range(50), pa.int64())},
    )
    profile = build_profile("fp", path)
    assert profile.rows == 50
    got, want = profile.features["x"], build_feature("x", [None] * 50)
    assert got.as_dict() == want.as_dict()
    assert got.reference.missing_rate == 1.0


def test_integers_text_and_booleans_in_one_csv(tmp_path: Path) -> None:
    """Integers go through DuckDB as doubles; text and booleans keep the in-memory builder
    (categorical, as before); the label is left out and the column order kept."""
    rng = random.Random(3)
    rows = [
        (rng.randint(-40, 40), rng.choice(["red", "green", "blue"]), rng.random() < 0.3, i % 2)
        for i in range(1500)
    ]
    path = tmp_path / "ref.csv"
    path.write_text(
        "count,colour,flag,label\n"
        + "".join(f"{a},{b},{'true' if c else 'false'},{d}\n" for a, b, c, d in rows)
    )
    profile = build_profile("fp", path, label="label")
    assert list(profile.features) == ["count", "colour", "flag"]
    count = profile.features["count"]
    assert isinstance(count, NumericProfile)
    _assert_same(count, build_feature("count", [a for a, *_ in rows]))  # type: ignore[arg-type]
    assert profile.features["colour"].as_dict() == (
        build_feature("colour", [b for _, b, *_ in rows]).as_dict()
    )
    assert profile.features["flag"].as_dict() == (
        build_feature("flag", [c for *_, c, _ in rows]).as_dict()
    )


@pytest.mark.parametrize(
    ("column_type", "engine"),
    [
        ("DOUBLE", True),
        ("FLOAT", True),
        ("BIGINT", True),
        ("UTINYINT", True),
        ("DECIMAL(18,3)", False),
        ("VARCHAR", False),
        ("BOOLEAN", False),
        ("DATE", False),
        ("DOUBLE[]", False),
    ],
)
def test_which_column_types_are_profiled_in_the_engine(column_type: str, engine: bool) -> None:
    assert in_engine(column_type) is engine


def test_ensure_profile_stores_the_duckdb_profile(tmp_path: Path) -> None:
    values = _gauss(2000, 5)
    ref = _write_parquet(tmp_path / "ref.parquet", {"a": values, "b": [v * 2 for v in values]})  # type: ignore[operator]
    path, built = ensure_profile(tmp_path / ".mlx", "sha256:p", ref, ["b"])
    assert built
    profile = load_profile(path)
    assert list(profile.features) == ["b"]
    b = profile.features["b"]
    assert isinstance(b, NumericProfile)
    _assert_same(b, build_feature("b", [v * 2 for v in values]))  # type: ignore[operator]


@pytest.mark.parametrize(("cap", "exact"), [(5000, True), (4000, True), (500, False)])
def test_distinct_is_exact_up_to_the_cap_and_estimated_above(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cap: int, exact: bool
) -> None:
    """4000 distinct values: counted exactly while the cap is at least that, estimated (the
    HyperLogLog, within a few percent) above it; nothing else of the profile changes."""
    monkeypatch.setattr(reference_duckdb, "EXACT_DISTINCT", cap)
    values = _gauss(4000, 11)
    path = _write_parquet(tmp_path / "ref.parquet", {"x": pa.array(values, pa.float64())})
    got = build_profile("fp", path).features["x"]
    want = build_feature("x", values)
    assert isinstance(got, NumericProfile) and isinstance(want, NumericProfile)
    assert want.distinct == 4000
    if exact:
        assert got.distinct == 4000
    else:
        assert abs(got.distinct - 4000) <= 0.05 * 4000
    _assert_same(replace(got, distinct=want.distinct), want)


@pytest.mark.parametrize("case", list(CASES))
def test_past_sort_in_memory_quantiles_come_from_exact_order_statistics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """The large-column path (exact order statistics from bucket counts), forced on small
    data: the same profile, and edges bit for bit the in-memory builder's."""
    monkeypatch.setattr(reference_duckdb, "SORT_IN_MEMORY", 0)
    make, n = CASES[case]
    values = make(n, 9)
    path = _write_parquet(tmp_path / "ref.parquet", {"x": pa.array(values, pa.float64())})
    got = build_profile("fp", path).features["x"]
    want = build_feature("x", values)
    assert isinstance(got, NumericProfile) and isinstance(want, NumericProfile)
    _assert_same(got, want)
    assert got.edges == want.edges


@pytest.mark.parametrize("fetch", [1_000_000, 50])
@pytest.mark.parametrize("atom", [False, True])
def test_order_statistics_are_the_sorted_values_at_those_ranks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, atom: bool, fetch: int
) -> None:
    """Log-normal (skewed: most values in the first buckets), with and without an atom
    holding a quarter of them; ``fetch`` 50 forces buckets to be split again."""
    import duckdb

    monkeypatch.setattr(reference_duckdb, "FETCH_VALUES", fetch)
    rng = random.Random(4)
    values = [0.5 if atom and i % 4 == 0 else rng.lognormvariate(0, 1) for i in range(20_000)]
    path = _write_parquet(tmp_path / "x.parquet", {"x": pa.array(values, pa.float64())})
    ordered = sorted(values)
    ranks = [0, 1, 2, 999, 5000, 5001, 10_000, 15_432, 19_998, 19_999]
    finite = reference_duckdb._finite(f"read_parquet('{path}')", "x")
    con = duckdb.connect()
    try:
        got = reference_duckdb.order_statistics(con, finite, ranks)
    finally:
        con.close()
    assert got == {r: ordered[r] for r in ranks}


@pytest.mark.parametrize(
    "values",
    [
        [-1.5e308, 1.5e308, 0.0, 1.0, -1.0, 2.0, 3.0],  # a range that overflows a double
        [1.0, math.nextafter(1.0, 2.0)] * 30 + [math.nextafter(math.nextafter(1.0, 2.0), 2.0)],
    ],
    ids=["huge range", "adjacent doubles"],
)
def test_order_statistics_at_the_edges_of_floating_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, values: list[float]
) -> None:
    import duckdb

    monkeypatch.setattr(reference_duckdb, "FETCH_VALUES", 2)
    path = _write_parquet(tmp_path / "x.parquet", {"x": pa.array(values, pa.float64())})
    ordered = sorted(values)
    finite = reference_duckdb._finite(f"read_parquet('{path}')", "x")
    con = duckdb.connect()
    try:
        got = reference_duckdb.order_statistics(con, finite, range(len(values)))
    finally:
        con.close()
    assert got == dict(enumerate(ordered))
