"""Count a window of the inference log into a reference profile's bins, in the database.

``window_counts(store, endpoint, features, since=…, until=…, column=…)`` runs **one
statement**: it reads the window's sampled ``inputs`` — or, for prediction drift, its logged
``outputs`` — (JSON text) with the database's JSON functions (SQLite
``json_each``/``json_extract``, PostgreSQL ``jsonb``), bins every feature value with a
``CASE`` over the frozen edges, and ``GROUP BY`` (variant, version, feature, bin). What comes
back is at most slices x features x (bins + 5) rows plus two coverage rows per slice: no log
row is fetched into Python, and this process's memory does not grow with the window.

The layouts of ``inputs`` counted (the request body as the gateway logged it, MLflow's
scoring formats; each data row of a request is one value per feature):

* ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}``
* ``{"dataframe_records": [{...}, ...]}``, ``{"instances": [{...}, ...]}``,
  ``{"inputs": [{...}, ...]}``, a bare list of objects ``[{...}, ...]``
* ``{"inputs": {"a": [...], "b": [...]}}`` (columns) and ``{"inputs": {"a": 1, "b": 2}}``
  (one row); any other object is one record ``{"a": 1, ...}``

Rows sent by position (``instances: [[1, 2]]``, ``dataframe_split`` without ``columns``) carry
no feature names: each of their features counts as missing (``null``).

The layouts of ``outputs`` (the model's answer as the gateway logs it: the list of
predictions, one per data row — what MLflow answers as ``{"predictions": [...]}``; that
wrapped form is read too): each element is one data row, and

* an **object** (a model answering a DataFrame: ``{"label": "fraud", "score": 0.93}``) counts
  its members by name, as a record of ``inputs`` does;
* a **scalar** (a class label, a score, ``null``) is the value of the one feature
  :func:`scalar_feature` picks — the monitor's single feature, else the one named
  ``prediction``; with neither it counts nowhere (every feature ``null`` in that row);
* a **list** (class probabilities by position) names no class: it is invalid for the scalar
  feature (``null`` and ``invalid``), so a model answering lists shows as missing, not as a
  distribution of its first element.

A payload the log truncated (``{"$truncated": true, …}``) counts as not sampled
(``truncated`` in the coverage). How each value is binned: :mod:`inference.drift_bins`.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from inference.drift_bins import (
    K_FALSE,
    K_NESTED,
    K_NULL,
    K_NUMBER,
    K_TEXT,
    K_TRUE,
    Bins,
    CategoricalBins,
    Slice,
    SliceCounts,
    binned_select,
    fold,
)
from inference.records import DEFAULT_ENVIRONMENT

if TYPE_CHECKING:
    from inference.store import LogStore


class Payload(StrEnum):
    """Which logged payload of a request is counted: what the model was asked (data drift)
    or what it answered (prediction drift). The value is the log's column."""

    INPUTS = "inputs"
    OUTPUTS = "outputs"


#: The feature a scalar prediction is the value of, when the monitor has several features.
PREDICTION = "prediction"


def scalar_feature(names: Sequence[str]) -> int | None:
    """The index of the feature a scalar prediction (a label, a score) counts as: the only
    feature, else the one named ``prediction``, else none (scalars count nowhere)."""
    if len(names) == 1:
        return 0
    return names.index(PREDICTION) if PREDICTION in names else None


class Params(dict[str, Any]):
    """Bound parameters, named once each (``:name``)."""

    def __call__(self, name: str, value: Any) -> str:
        self[name] = value
        return f":{name}"


def window_sql(
    dialect: str,
    features: Sequence[Bins],
    *,
    endpoint: str,
    since: float | None = None,
    until: float | None = None,
    environment: str = DEFAULT_ENVIRONMENT,
    column: Payload = Payload.INPUTS,
) -> tuple[str, dict[str, Any]]:
    """The one statement (and its parameters) that counts a window of ``column``: rows
    ``(kind, variant, version, a, b, n, off)``: kind 0 the bin counts (``a`` the feature,
    ``b`` the bin), 1 the coverage (``a`` requests, ``b`` sampled, ``n`` truncated), 2 the data
    rows of the counted requests (``a``)."""
    column = Payload(column)  # only the enum's values are ever written into the SQL
    p = Params()
    where = [
        f"i.environment = {p('env', environment)}",
        f"i.endpoint = {p('endpoint', endpoint)}",
    ]
    if since is not None:
        where.append(f"i.ts >= {p('since', float(since))}")
    if until is not None:
        where.append(f"i.ts < {p('until', float(until))}")
    window = " AND ".join(where)
    pg = dialect == "postgresql"
    doc = f"i.{column.value}"
    coverage = (
        f"SELECT 1, variant, version, COUNT(*), COUNT({doc}), "
        f"SUM(CASE WHEN {doc} IS NOT NULL AND {_truncated(doc)} THEN 1 ELSE 0 END), 0.0 "
        f"FROM mlx_inference i WHERE {window} GROUP BY variant, version"
    )
    if not features:
        return coverage, dict(p)
    names = [p(f"n{fi}", f.name) for fi, f in enumerate(features)]
    categorical = [fi for fi, f in enumerate(features) if isinstance(f, CategoricalBins)]
    scalar = scalar_feature([f.name for f in features]) if column is Payload.OUTPUTS else None
    rows: str | None
    if pg:
        values = ", ".join(
            f"({fi}, {name}, {int(fi in categorical)})" for fi, name in enumerate(names)
        )
        ctes, rows = _pg_cells(window, column, scalar)
        ctes = f"feats(fi, name, cat) AS (VALUES {values}), {ctes}"
    else:
        ctes, rows = _sqlite_cells(window, names, categorical, column, scalar)
    counted = binned_select(features, "SELECT * FROM cells", p, ("variant", "version"), dialect)
    sql = (
        f"WITH {ctes} "
        f"SELECT 0, variant, version, fi, b, n, off FROM ({counted}) counted "
        f"UNION ALL {coverage}"
    )
    if rows is not None:  # else the cells carry them (feature -1)
        sql += (
            f" UNION ALL SELECT 2, variant, version, SUM({rows}), 0, 0, 0.0 FROM q "
            "GROUP BY variant, version"
        )
    return sql, dict(p)


def window_counts(
    store: LogStore,
    endpoint: str,
    features: Sequence[Bins],
    *,
    since: float | None = None,
    until: float | None = None,
    environment: str = DEFAULT_ENVIRONMENT,
    column: Payload = Payload.INPUTS,
) -> dict[Slice, SliceCounts]:
    """Counts of ``endpoint``'s window ``since <= ts < until`` per (variant, version): of
    the logged ``inputs`` (data drift) or ``outputs`` (prediction drift)."""
    sql, params = window_sql(
        store.dialect,
        features,
        endpoint=endpoint,
        since=since,
        until=until,
        environment=environment,
        column=column,
    )
    bins: list[Sequence[Any]] = []
    coverage: list[Sequence[Any]] = []
    with store.engine.connect() as conn:
        for kind, variant, version, a, b, n, off in conn.execute(text(sql), params):
            if kind == 1:
                coverage.append((variant, version, a, b, n, 0))
            elif kind == 2:
                coverage.append((variant, version, 0, 0, 0, a))
            else:
                bins.append((variant, version, a, b, n, off))
    return fold(features, bins, coverage)


def _truncated(doc: str) -> str:
    """The marker of a payload over the log's limit (``inference.store.payload_json`` writes
    it compactly): a prefix test of the text, no JSON parse."""
    return f"{doc} LIKE '{{\"$truncated\":%'"


#: The log's rows of the window that hold a counted payload (``{doc}``: its column).
_SAMPLED = "mlx_inference i WHERE {window} AND {doc} IS NOT NULL AND NOT {truncated}"


# -- SQLite -----------------------------------------------------------------------------------
_SQLITE_RECORDS = (
    "CASE WHEN json_type(q.doc, '$.dataframe_records') = 'array' "
    "THEN json_extract(q.doc, '$.dataframe_records') "
    "WHEN json_type(q.doc, '$.instances') = 'array' THEN json_extract(q.doc, '$.instances') "
    "WHEN json_type(q.doc, '$.inputs') = 'array' THEN json_extract(q.doc, '$.inputs') "
    "WHEN json_type(q.doc, '$.inputs') = 'object' "
    "THEN json_array(json_extract(q.doc, '$.inputs')) "
    "WHEN json_type(q.doc) = 'array' THEN q.doc "
    "ELSE json_array(json(q.doc)) END"
)
_SQLITE_FIRST = "(SELECT fk.value FROM json_each(q.doc, '$.inputs') fk LIMIT 1)"
#: The data rows of a request, by its layout.
_SQLITE_ROWS = (
    "CASE layout WHEN 's' THEN json_array_length(q.doc, '$.dataframe_split.data') "
    f"WHEN 'c' THEN json_array_length({_SQLITE_FIRST}) "
    f"ELSE json_array_length({_SQLITE_RECORDS}) END"
)
#: The layout of a request's ``inputs`` (``{d}``: the column): ``s`` split, ``c`` columns,
#: ``r`` records.
_SQLITE_LAYOUT = (
    "CASE WHEN json_type({d}, '$.dataframe_split') = 'object' THEN 's' "
    "WHEN json_type({d}, '$.inputs') = 'object' AND "
    "(SELECT fk.type FROM json_each({d}, '$.inputs') fk LIMIT 1) = 'array' THEN 'c' "
    "ELSE 'r' END"
)
#: A request's ``outputs`` as the list of its predictions (the gateway logs the list; MLflow's
#: ``{"predictions": …}`` is unwrapped; one object or one scalar is one row).
_SQLITE_PREDICTIONS = (
    "CASE WHEN json_type(q.doc, '$.predictions') = 'array' "
    "THEN json_extract(q.doc, '$.predictions') "
    "WHEN json_type(q.doc, '$.predictions') IS NOT NULL THEN json_array(q.doc -> '$.predictions') "
    "WHEN json_type(q.doc) = 'array' THEN q.doc "
    "ELSE json_array(json(q.doc)) END"
)


def _sqlite_text(raw: str) -> str:
    """A cell's text for a categorical feature (``t`` its json_type, ``v`` its value): a
    number as the JSON has it (``raw``, only read then), booleans as Python's ``str``."""
    return (
        "CASE WHEN cat = 0 THEN NULL WHEN t = 'text' THEN v WHEN t = 'integer' "
        f"THEN CAST(v AS TEXT) WHEN t = 'real' THEN {raw} "
        "WHEN t = 'true' THEN 'True' WHEN t = 'false' THEN 'False' END"
    )


def _sqlite_cells(
    window: str,
    names: list[str],
    categorical: list[int],
    column: Payload = Payload.INPUTS,
    scalar: int | None = None,
) -> tuple[str, str]:
    """The CTEs ``q`` (the window's counted requests, ``doc`` the payload of ``column``, and
    its layout: ``s`` split, ``c`` columns, ``r`` records — the only layout of ``outputs``)
    and ``cells`` (``variant, version, fi, k, x, s``: one per feature value present; a feature
    a row lacks has no cell, ``fold`` counts it null from the data rows), and the data-rows
    expression over ``q``. Of ``outputs``, the records are the predictions that are objects,
    and the other predictions are cells of feature ``scalar`` (none: not counted).

    A name is mapped to its feature by a ``CASE`` over the (bound) names rather than a join
    with a table of features (fewer loops on SQLite). Each branch is fenced (``LIMIT -1``)
    so that ``json_type``/``json_extract`` run once per cell (bench/drift_counts.py).
    """

    def fi(expr: str) -> str:
        whens = " ".join(f"WHEN {name} THEN {i}" for i, name in enumerate(names))
        return f"CASE {expr} {whens} END"

    cats = ", ".join(map(str, categorical)) or "-1"
    doc = f"i.{column.value}"
    inputs = column is Payload.INPUTS
    layout = _SQLITE_LAYOUT.format(d=doc) if inputs else "'r'"
    sampled = _SAMPLED.format(window=window, doc=doc, truncated=_truncated(doc))
    q = f"SELECT i.variant, i.version, {doc} AS doc, {layout} AS layout FROM {sampled}"

    # each branch: (variant, version, fi, t, v, raw) of one present feature value: json_each
    # gives a cell's type and value in one parse; its JSON text (``raw``) is read only for a
    # real number of a categorical feature
    def raw_of(key: str, json: str, path: str) -> str:
        if not categorical:
            return "NULL"
        return f"CASE WHEN cell.type = 'real' AND {key} IN ({cats}) THEN {json} -> ({path}) END"

    select = (
        "SELECT q.variant, q.version, {fi} AS fi, cell.type AS t, cell.atom AS v, {raw} AS raw "
    )
    records = _SQLITE_RECORDS if inputs else _SQLITE_PREDICTIONS
    branches = [
        # records: the row object's members, by name
        select.format(
            fi=fi("cell.key"), raw=raw_of(fi("cell.key"), "r.value", "'$.' || json_quote(cell.key)")
        )
        + f"FROM q CROSS JOIN json_each({records}) r CROSS JOIN json_each(r.value) cell "
        f"WHERE q.layout = 'r' AND r.type = 'object' AND {fi('cell.key')} IS NOT NULL",
    ]
    if inputs:
        branches += [
            # dataframe_split: the features of the columns by position, once per request
            # (``m``), then the cells of each data row
            "SELECT m.variant, m.version, json_extract(m.fis, '$[' || cell.key || ']') AS fi, "
            "cell.type AS t, cell.atom AS v, "
            + raw_of(
                "json_extract(m.fis, '$[' || cell.key || ']')", "r.value", "'$[' || cell.key || ']'"
            )
            + " AS raw "
            "FROM (SELECT q.variant, q.version, q.doc, "
            f"(SELECT json_group_array({fi('c.value')}) "
            "FROM json_each(q.doc, '$.dataframe_split.columns') c) AS fis "
            "FROM q WHERE q.layout = 's' LIMIT -1) m "
            "CROSS JOIN json_each(m.doc, '$.dataframe_split.data') r "
            "CROSS JOIN json_each(r.value) cell WHERE r.type = 'array'",
            # columns: each feature's list
            select.format(
                fi=fi("col.key"), raw=raw_of(fi("col.key"), "col.value", "'$[' || cell.key || ']'")
            )
            + "FROM q CROSS JOIN json_each(q.doc, '$.inputs') col "
            "CROSS JOIN json_each(col.value) cell "
            f"WHERE q.layout = 'c' AND col.type = 'array' AND {fi('col.key')} IS NOT NULL",
        ]
    elif scalar is not None:
        # a prediction that is no object: the value of the scalar feature (a list: nested)
        raw = (
            f"CASE WHEN cell.type = 'real' THEN ({records}) -> cell.fullkey END"
            if scalar in categorical
            else "NULL"
        )
        branches.append(
            select.format(fi=scalar, raw=raw)
            + f"FROM q CROSS JOIN json_each({records}) cell WHERE cell.type <> 'object'"
        )
    raw = " UNION ALL ".join(f"SELECT * FROM ({b} LIMIT -1) WHERE fi IS NOT NULL" for b in branches)
    cells = (
        "SELECT variant, version, fi, "
        f"CASE t WHEN 'integer' THEN {K_NUMBER} WHEN 'real' THEN {K_NUMBER} "
        f"WHEN 'text' THEN {K_TEXT} WHEN 'true' THEN {K_TRUE} WHEN 'false' THEN {K_FALSE} "
        f"WHEN 'object' THEN {K_NESTED} WHEN 'array' THEN {K_NESTED} ELSE {K_NULL} END AS k, "
        "CASE WHEN t IN ('integer', 'real') THEN v END AS x, "
        f"{_sqlite_text('raw')} AS s "
        f"FROM (SELECT *, fi IN ({cats}) AS cat FROM raw LIMIT -1) raw"
    )
    ctes = f"q AS NOT MATERIALIZED ({q}), raw AS NOT MATERIALIZED ({raw}), cells AS ({cells})"
    rows = _SQLITE_ROWS if inputs else f"json_array_length({_SQLITE_PREDICTIONS})"
    return ctes, rows


# -- PostgreSQL -------------------------------------------------------------------------------
_PG_KIND = (
    f"CASE jsonb_typeof(e) WHEN 'number' THEN {K_NUMBER} WHEN 'string' THEN {K_TEXT} "
    f"WHEN 'boolean' THEN CASE WHEN e = 'true'::jsonb THEN {K_TRUE} ELSE {K_FALSE} END "
    f"WHEN 'object' THEN {K_NESTED} WHEN 'array' THEN {K_NESTED} ELSE {K_NULL} END"
)
_PG_TEXT = (
    "CASE WHEN cat = 0 THEN NULL WHEN jsonb_typeof(e) IN ('string', 'number') THEN e #>> '{}' "
    "WHEN jsonb_typeof(e) = 'boolean' THEN CASE WHEN e = 'true'::jsonb THEN 'True' "
    "ELSE 'False' END END"
)
_PG_RECORDS = (
    "CASE WHEN jsonb_typeof(q.j -> 'dataframe_records') = 'array' "
    "THEN q.j -> 'dataframe_records' "
    "WHEN jsonb_typeof(q.j -> 'instances') = 'array' THEN q.j -> 'instances' "
    "WHEN jsonb_typeof(q.j -> 'inputs') = 'array' THEN q.j -> 'inputs' "
    "WHEN jsonb_typeof(q.j -> 'inputs') = 'object' THEN jsonb_build_array(q.j -> 'inputs') "
    "WHEN jsonb_typeof(q.j) = 'array' THEN q.j ELSE jsonb_build_array(q.j) END"
)
_PG_FIRST = "(SELECT fk.value FROM jsonb_each(q.j -> 'inputs') fk LIMIT 1)"
_PG_ROWS = (
    "CASE q.layout WHEN 's' THEN CASE WHEN jsonb_typeof(q.j -> 'dataframe_split' -> 'data') "
    "= 'array' THEN jsonb_array_length(q.j -> 'dataframe_split' -> 'data') ELSE 0 END "
    f"WHEN 'c' THEN jsonb_array_length({_PG_FIRST}) "
    f"ELSE jsonb_array_length({_PG_RECORDS}) END"
)
_PG_LAYOUT = (
    "CASE WHEN jsonb_typeof(j -> 'dataframe_split') = 'object' THEN 's' "
    "WHEN jsonb_typeof(j -> 'inputs') = 'object' AND "
    "(SELECT jsonb_typeof(fk.value) FROM jsonb_each(j -> 'inputs') fk LIMIT 1) = 'array' "
    "THEN 'c' ELSE 'r' END"
)
#: As ``_SQLITE_PREDICTIONS`` (``->`` of a key on an array or a scalar is NULL).
_PG_PREDICTIONS = (
    "CASE WHEN jsonb_typeof(q.j -> 'predictions') = 'array' THEN q.j -> 'predictions' "
    "WHEN (q.j -> 'predictions') IS NOT NULL THEN jsonb_build_array(q.j -> 'predictions') "
    "WHEN jsonb_typeof(q.j) = 'array' THEN q.j ELSE jsonb_build_array(q.j) END"
)


def _pg_cells(
    window: str, column: Payload = Payload.INPUTS, scalar: int | None = None
) -> tuple[str, None]:
    """As ``_sqlite_cells``, with ``jsonb``, in one pass: each request's body is parsed once
    (a fenced sub-select: inlined, every ``j -> …`` would cast the text again) and a
    ``LATERAL`` union picks its layout's cells (the other arms are skipped by a one-time
    filter). A feature a row lacks is a null cell; the request's data rows come as a cell of
    feature -1 (``binned_select`` sums its ``x``)."""
    doc = f"i.{column.value}"
    inputs = column is Payload.INPUTS
    sampled = _SAMPLED.format(window=window, doc=doc, truncated=_truncated(doc))
    q = (
        f"SELECT variant, version, j, {_PG_LAYOUT if inputs else repr('r')} AS layout "
        f"FROM (SELECT i.variant, i.version, {doc}::jsonb AS j FROM {sampled} OFFSET 0) parsed"
    )
    records = _PG_RECORDS if inputs else _PG_PREDICTIONS
    # of outputs, a prediction that is no object is the value of the scalar feature
    scalar_cell = "" if scalar is None else f"WHEN f.fi = {int(scalar)} THEN r.value "
    arms = [
        "SELECT f.fi, f.cat, CASE WHEN jsonb_typeof(r.value) = 'object' "
        f"THEN r.value -> f.name {scalar_cell}END AS e "
        f"FROM jsonb_array_elements({records}) r(value) CROSS JOIN feats f "
        "WHERE q.layout = 'r'",
    ]
    split = "q.j -> 'dataframe_split'"
    if inputs:
        arms += [
            # the columns' positions by name, once per request; then each data row
            "SELECT f.fi, f.cat, CASE WHEN jsonb_typeof(r.value) = 'array' "
            "THEN r.value -> ((pos.m ->> f.name)::int) END AS e "
            "FROM (SELECT jsonb_object_agg(c.name, c.n - 1) AS m FROM jsonb_array_elements_text("
            f"CASE WHEN jsonb_typeof({split} -> 'columns') = 'array' THEN {split} -> 'columns' "
            "ELSE '[]'::jsonb END) WITH ORDINALITY c(name, n)) pos "
            f"CROSS JOIN jsonb_array_elements(CASE WHEN jsonb_typeof({split} -> 'data') = 'array' "
            f"THEN {split} -> 'data' ELSE '[]'::jsonb END) r(value) CROSS JOIN feats f "
            "WHERE q.layout = 's'",
            "SELECT f.fi, f.cat, CASE WHEN jsonb_typeof(q.j -> 'inputs' -> f.name) = 'array' "
            "THEN q.j -> 'inputs' -> f.name -> (r.n - 1)::int END AS e "
            f"FROM jsonb_array_elements({_PG_FIRST}) WITH ORDINALITY r(value, n) "
            "CROSS JOIN feats f WHERE q.layout = 'c'",
        ]
    rows = _PG_ROWS if inputs else f"jsonb_array_length({_PG_PREDICTIONS})"
    arms.append(f"SELECT -1, 0, to_jsonb({rows})")
    raw = (
        "SELECT q.variant, q.version, cell.fi, cell.cat, cell.e FROM q CROSS JOIN LATERAL ("
        + " UNION ALL ".join(arms)
        + ") cell"
    )
    cells = (
        f"SELECT variant, version, fi, {_PG_KIND} AS k, "
        "CASE WHEN jsonb_typeof(e) = 'number' THEN (e #>> '{}')::float8 END AS x, "
        f"{_PG_TEXT} AS s FROM raw"
    )
    ctes = f"q AS NOT MATERIALIZED ({q}), raw AS NOT MATERIALIZED ({raw}), cells AS ({cells})"
    return ctes, None
