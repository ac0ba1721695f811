"""Count CSV or Parquet files (a dataset, or a log exported to Parquet) into a profile's bins
with DuckDB: one statement, one ``GROUP BY`` (slice, feature, bin), nothing fetched but the
counts. DuckDB is imported only when called (the ``bench`` extra installs it).

Each feature is a column of the files. How a cell counts follows its column's type:

* a number column: the number (NaN and ±inf are ``null``);
* a text column (a CSV column DuckDB's sniffer could not type as numbers): for a numeric
  feature, a cell that reads as a number (``TRY_CAST … AS DOUBLE``) counts as that number and
  any other text is invalid (``null`` and ``invalid``); for a categorical one, the text;
* a boolean column: invalid for a numeric feature, ``True``/``False`` for a categorical one;
* a column the files lack: every row is ``null``; any other type (lists, structs, dates):
  invalid.

Slices: ``slice_by=("variant", "version")`` names the columns a log export slices by; without
it the whole file is one slice ``(None, None)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inference.drift_bins import (
    K_FALSE,
    K_NESTED,
    K_NULL,
    K_NUMBER,
    K_TEXT,
    K_TRUE,
    Bins,
    NumericBins,
    Slice,
    SliceCounts,
    binned_select,
    fold,
)

#: DuckDB's numeric column types (counted as numbers).
NUMBERS = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
)


class Params(dict[str, Any]):
    """Bound parameters, named once each (DuckDB's ``$name``)."""

    def __call__(self, name: str, value: Any) -> str:
        self[name] = value
        return f"${name}"


def source_sql(path: str | Path) -> str:
    """``read_parquet``/``read_csv`` of a file or glob, by its extension."""
    text = str(path)
    quoted = "'" + text.replace("'", "''") + "'"
    if text.lower().endswith((".parquet", ".pq")):
        return f"read_parquet({quoted})"
    if text.lower().endswith((".csv", ".csv.gz", ".tsv")):
        return f"read_csv({quoted})"
    raise ValueError(f"{text}: expected a .parquet or .csv file (or a glob of them)")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _cell(bins: Bins, column_type: str | None, col: str) -> tuple[str, str, str]:
    """(kind, number, text) expressions of a feature's column."""
    if column_type is None:
        return str(K_NULL), "NULL::DOUBLE", "NULL::VARCHAR"
    base = column_type.split("(")[0].upper()
    if base in NUMBERS:
        kind = f"CASE WHEN {col} IS NULL THEN {K_NULL} ELSE {K_NUMBER} END"
        return kind, f"CAST({col} AS DOUBLE)", f"CAST({col} AS VARCHAR)"
    if base == "BOOLEAN":
        kind = f"CASE WHEN {col} IS NULL THEN {K_NULL} WHEN {col} THEN {K_TRUE} ELSE {K_FALSE} END"
        return kind, "NULL::DOUBLE", f"CASE WHEN {col} THEN 'True' ELSE 'False' END"
    if base == "VARCHAR":
        if isinstance(bins, NumericBins):
            number = f"TRY_CAST({col} AS DOUBLE)"
            kind = (
                f"CASE WHEN {col} IS NULL THEN {K_NULL} "
                f"WHEN {number} IS NOT NULL THEN {K_NUMBER} ELSE {K_TEXT} END"
            )
            return kind, number, col
        return f"CASE WHEN {col} IS NULL THEN {K_NULL} ELSE {K_TEXT} END", "NULL::DOUBLE", col
    return f"CASE WHEN {col} IS NULL THEN {K_NULL} ELSE {K_NESTED} END", "NULL::DOUBLE", "NULL"


def files_sql(
    source: str,
    types: dict[str, str],
    features: Sequence[Bins],
    slice_by: tuple[str, str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The one statement counting ``source`` (columns and their DuckDB ``types``)."""
    p = Params()
    if slice_by is None:
        variant, version = "NULL::VARCHAR", "NULL::VARCHAR"
    else:
        for name in slice_by:
            if name not in types:
                raise ValueError(f"{source}: no column {name!r} to slice by")
        variant, version = (f"CAST({_ident(n)} AS VARCHAR)" for n in slice_by)
    branches = []
    for fi, f in enumerate(features):
        k, x, s = _cell(f, types.get(f.name), _ident(f.name))
        branches.append(
            f"SELECT {variant} AS variant, {version} AS version, {fi} AS fi, "
            f"{k} AS k, {x} AS x, {s} AS s FROM {source}"
        )
    cells = " UNION ALL ".join(branches) or (
        "SELECT NULL::VARCHAR, NULL::VARCHAR, 0, 0, NULL::DOUBLE, NULL::VARCHAR WHERE false"
    )
    counted = binned_select(features, cells, p, ("variant", "version"), "duckdb")
    sql = (
        f"SELECT 0, variant, version, fi, b, n, off FROM ({counted}) counted UNION ALL "
        f"SELECT 1, {variant}, {version}, COUNT(*), COUNT(*), 0, COUNT(*) FROM {source} "
        f"GROUP BY {variant}, {version}"
    )
    return sql, dict(p)


def file_counts(
    path: str | Path,
    features: Sequence[Bins],
    *,
    slice_by: tuple[str, str] | None = None,
    memory_limit: str | None = None,
) -> dict[Slice, SliceCounts]:
    """Counts of every row of the CSV or Parquet file(s) at ``path`` (a glob counts them all
    as one), per slice. ``memory_limit`` (e.g. ``"500MB"``) caps DuckDB's own memory."""
    import duckdb

    source = source_sql(path)
    con = duckdb.connect()
    try:
        if memory_limit is not None:
            con.execute(f"SET memory_limit = '{memory_limit}'")
        described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        types = {str(row[0]): str(row[1]) for row in described}
        sql, params = files_sql(source, types, features, slice_by)
        bins: list[Sequence[Any]] = []
        coverage: list[Sequence[Any]] = []
        for kind, variant, version, a, b, n, off in con.execute(sql, params).fetchall():
            if kind == 1:
                coverage.append((variant, version, a, b, n, off))
            else:
                bins.append((variant, version, a, b, n, off))
    finally:
        con.close()
    return fold(features, bins, coverage)
