"""Count a window of the inference log into a reference profile's bins, in the database.

``window_counts(store, endpoint, features, since=…, until=…)`` runs **one statement**: it
reads the window's sampled ``inputs`` (JSON text) with the database's JSON functions (SQLite
``json_each``/``json_extract``, PostgreSQL ``jsonb``), bins every feature value with a
``CASE`` over the frozen edges, and ``GROUP BY`` (variant, version, feature, bin). What comes
back is at most slices x features x (bins + 5) rows plus one coverage row per slice: memory
does not grow with the window; no log row is fetched into Python.

The layouts of ``inputs`` counted (the request body as the gateway logged it, MLflow's
scoring formats; each data row of a request is one value per feature):

* ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}``
* ``{"dataframe_records": [{...}, ...]}``, ``{"instances": [{...}, ...]}``,
  ``{"inputs": [{...}, ...]}``, a bare list of objects ``[{...}, ...]``
* ``{"inputs": {"a": [...], "b": [...]}}`` (columns) and ``{"inputs": {"a": 1, "b": 2}}``
  (one row); any other object is one record ``{"a": 1, ...}``

Rows sent by position (``instances: [[1, 2]]``, ``dataframe_split`` without ``columns``) carry
no feature names: each of their features counts as missing (``null``). A payload the log
truncated (``{"$truncated": true, …}``) counts as not sampled (``truncated`` in the
coverage). How each value is binned: :mod:`inference.drift_bins`.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    Slice,
    SliceCounts,
    binned_select,
    fold,
)
from inference.records import DEFAULT_ENVIRONMENT

if TYPE_CHECKING:
    from inference.store import LogStore


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
) -> tuple[str, dict[str, Any]]:
    """The one statement (and its parameters) that counts a window: rows
    ``(kind, variant, version, fi, b, n, off)``; ``kind`` 0 are the bin counts, 1 the coverage
    (``fi`` = requests, ``b`` = sampled, ``n`` = truncated)."""
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
    if not features:
        counted = "SELECT NULL, NULL, 0, 0, 0, 0.0 WHERE 1 = 0"
    else:
        values = ", ".join(
            f"({fi}, {p(f'n{fi}', f.name)}, {p(f'p{fi}', _sqlite_path(f.name))})"
            for fi, f in enumerate(features)
        )
        cells = (_pg_cells if dialect == "postgresql" else _sqlite_cells)(window)
        cells = f"WITH feats(fi, name, path) AS (VALUES {values}) {cells}"
        counted = binned_select(features, cells, p, ("variant", "version"))
    truncated = "(i.inputs::jsonb ? '$truncated')" if dialect == "postgresql" else _SQLITE_TRUNCATED
    coverage = (
        "SELECT 1, variant, version, COUNT(*), COUNT(inputs), "
        f"SUM(CASE WHEN inputs IS NOT NULL AND {truncated} THEN 1 ELSE 0 END), 0.0 "
        f"FROM mlx_inference i WHERE {window} GROUP BY variant, version"
    )
    sql = f"SELECT 0, variant, version, fi, b, n, off FROM ({counted}) counted UNION ALL {coverage}"
    return sql, dict(p)


def window_counts(
    store: LogStore,
    endpoint: str,
    features: Sequence[Bins],
    *,
    since: float | None = None,
    until: float | None = None,
    environment: str = DEFAULT_ENVIRONMENT,
) -> dict[Slice, SliceCounts]:
    """Counts of ``endpoint``'s window ``since <= ts < until`` per (variant, version)."""
    sql, params = window_sql(
        store.dialect,
        features,
        endpoint=endpoint,
        since=since,
        until=until,
        environment=environment,
    )
    bins: list[Sequence[Any]] = []
    coverage: list[Sequence[Any]] = []
    with store.engine.connect() as conn:
        for kind, variant, version, a, b, n, off in conn.execute(text(sql), params):
            if kind == 1:
                coverage.append((variant, version, a, b, n))
            else:
                bins.append((variant, version, a, b, n, off))
    return fold(features, bins, coverage)


def _sqlite_path(name: str) -> str:
    return '$."' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- SQLite -----------------------------------------------------------------------------------
_SQLITE_TRUNCATED = "json_type(i.inputs, '$.\"$truncated\"') = 'true'"

#: A value's kind, number and text from its json_type ``t``, SQL value ``v`` and JSON text ``raw``.
_SQLITE_KIND = (
    f"CASE t WHEN 'integer' THEN {K_NUMBER} WHEN 'real' THEN {K_NUMBER} "
    f"WHEN 'text' THEN {K_TEXT} WHEN 'true' THEN {K_TRUE} WHEN 'false' THEN {K_FALSE} "
    f"WHEN 'object' THEN {K_NESTED} WHEN 'array' THEN {K_NESTED} ELSE {K_NULL} END"
)
_SQLITE_TEXT = (
    "CASE t WHEN 'text' THEN v WHEN 'integer' THEN raw WHEN 'real' THEN raw "
    "WHEN 'true' THEN 'True' WHEN 'false' THEN 'False' END"
)
_SQLITE_FIRST = "(SELECT fk.type FROM json_each(q.inputs, '$.inputs') fk LIMIT 1)"


def _sqlite_cells(window: str) -> str:
    # q: the window's sampled requests and their layout: 's' split, 'c' columns, 'r' records
    q = (
        "SELECT i.variant, i.version, i.inputs, "
        "CASE WHEN json_type(i.inputs, '$.dataframe_split') = 'object' THEN 's' "
        "WHEN json_type(i.inputs, '$.inputs') = 'object' AND "
        "(SELECT fk.type FROM json_each(i.inputs, '$.inputs') fk LIMIT 1) = 'array' THEN 'c' "
        "ELSE 'r' END AS layout "
        f"FROM mlx_inference i WHERE {window} AND i.inputs IS NOT NULL "
        f"AND NOT coalesce({_SQLITE_TRUNCATED}, 0)"
    )
    records = (
        "CASE WHEN json_type(q.inputs, '$.dataframe_records') = 'array' "
        "THEN json_extract(q.inputs, '$.dataframe_records') "
        "WHEN json_type(q.inputs, '$.instances') = 'array' "
        "THEN json_extract(q.inputs, '$.instances') "
        "WHEN json_type(q.inputs, '$.inputs') = 'array' THEN json_extract(q.inputs, '$.inputs') "
        "WHEN json_type(q.inputs, '$.inputs') = 'object' "
        "THEN json_array(json_extract(q.inputs, '$.inputs')) "
        "WHEN json_type(q.inputs) = 'array' THEN q.inputs "
        "ELSE json_array(json(q.inputs)) END"
    )
    # each branch: (variant, version, fi, t, v, raw) of one feature in one data row
    branches = [
        # records: the feature by name in each row object
        "SELECT q.variant, q.version, f.fi, json_type(r.value, f.path) AS t, "
        "json_extract(r.value, f.path) AS v, r.value -> f.path AS raw "
        f"FROM q JOIN json_each({records}) r CROSS JOIN feats f WHERE q.layout = 'r'",
        # dataframe_split: the feature's position among the columns
        "SELECT q.variant, q.version, f.fi, json_type(r.value, '$[' || c.key || ']') AS t, "
        "json_extract(r.value, '$[' || c.key || ']') AS v, r.value -> ('$[' || c.key || ']') "
        "FROM q JOIN json_each(q.inputs, '$.dataframe_split.data') r CROSS JOIN feats f "
        "LEFT JOIN json_each(q.inputs, '$.dataframe_split.columns') c ON c.value = f.name "
        "WHERE q.layout = 's'",
        # columns: row r.key of each feature's list (rows counted along the first column)
        "SELECT q.variant, q.version, f.fi, "
        "json_type(q.inputs, '$.inputs.' || substr(f.path, 3) || '[' || r.key || ']') AS t, "
        "json_extract(q.inputs, '$.inputs.' || substr(f.path, 3) || '[' || r.key || ']') AS v, "
        "q.inputs -> ('$.inputs.' || substr(f.path, 3) || '[' || r.key || ']') AS raw "
        "FROM q JOIN json_each(q.inputs, '$.inputs.' || "
        "(SELECT json_quote(fk.key) FROM json_each(q.inputs, '$.inputs') fk LIMIT 1)) r "
        "CROSS JOIN feats f WHERE q.layout = 'c'",
    ]
    raw = " UNION ALL ".join(branches)
    return (
        f", q AS ({q}), raw AS ({raw}) "
        f"SELECT variant, version, fi, {_SQLITE_KIND} AS k, "
        f"CASE WHEN t IN ('integer', 'real') THEN v END AS x, {_SQLITE_TEXT} AS s FROM raw"
    )


# -- PostgreSQL -------------------------------------------------------------------------------
_PG_KIND = (
    f"CASE jsonb_typeof(e) WHEN 'number' THEN {K_NUMBER} WHEN 'string' THEN {K_TEXT} "
    f"WHEN 'boolean' THEN CASE WHEN e = 'true'::jsonb THEN {K_TRUE} ELSE {K_FALSE} END "
    f"WHEN 'object' THEN {K_NESTED} WHEN 'array' THEN {K_NESTED} ELSE {K_NULL} END"
)
_PG_TEXT = (
    "CASE jsonb_typeof(e) WHEN 'string' THEN e #>> '{}' WHEN 'number' THEN e #>> '{}' "
    "WHEN 'boolean' THEN CASE WHEN e = 'true'::jsonb THEN 'True' ELSE 'False' END END"
)


def _pg_cells(window: str) -> str:
    q = (
        "SELECT i.variant, i.version, j, "
        "CASE WHEN jsonb_typeof(j -> 'dataframe_split') = 'object' THEN 's' "
        "WHEN jsonb_typeof(j -> 'inputs') = 'object' AND "
        "(SELECT jsonb_typeof(fk.value) FROM jsonb_each(j -> 'inputs') fk LIMIT 1) = 'array' "
        "THEN 'c' ELSE 'r' END AS layout "
        "FROM mlx_inference i CROSS JOIN LATERAL (SELECT i.inputs::jsonb AS j) parsed "
        f"WHERE {window} AND i.inputs IS NOT NULL AND NOT (j ? '$truncated')"
    )
    records = (
        "CASE WHEN jsonb_typeof(q.j -> 'dataframe_records') = 'array' "
        "THEN q.j -> 'dataframe_records' "
        "WHEN jsonb_typeof(q.j -> 'instances') = 'array' THEN q.j -> 'instances' "
        "WHEN jsonb_typeof(q.j -> 'inputs') = 'array' THEN q.j -> 'inputs' "
        "WHEN jsonb_typeof(q.j -> 'inputs') = 'object' THEN jsonb_build_array(q.j -> 'inputs') "
        "WHEN jsonb_typeof(q.j) = 'array' THEN q.j ELSE jsonb_build_array(q.j) END"
    )
    branches = [
        "SELECT q.variant, q.version, f.fi, "
        "CASE WHEN jsonb_typeof(r.value) = 'object' THEN r.value -> f.name END AS e "
        f"FROM q CROSS JOIN LATERAL jsonb_array_elements({records}) r(value) "
        "CROSS JOIN feats f WHERE q.layout = 'r'",
        "SELECT q.variant, q.version, f.fi, "
        "CASE WHEN jsonb_typeof(r.value) = 'array' THEN r.value -> (c.n - 1)::int END AS e "
        "FROM q CROSS JOIN LATERAL jsonb_array_elements(q.j -> 'dataframe_split' -> 'data') "
        "r(value) CROSS JOIN feats f LEFT JOIN LATERAL jsonb_array_elements_text("
        "CASE WHEN jsonb_typeof(q.j -> 'dataframe_split' -> 'columns') = 'array' "
        "THEN q.j -> 'dataframe_split' -> 'columns' ELSE '[]'::jsonb END) "
        "WITH ORDINALITY c(name, n) ON c.name = f.name WHERE q.layout = 's'",
        "SELECT q.variant, q.version, f.fi, "
        "CASE WHEN jsonb_typeof(q.j -> 'inputs' -> f.name) = 'array' "
        "THEN q.j -> 'inputs' -> f.name -> (r.n - 1)::int END AS e "
        "FROM q CROSS JOIN LATERAL jsonb_array_elements("
        "(SELECT fk.value FROM jsonb_each(q.j -> 'inputs') fk LIMIT 1)) WITH ORDINALITY "
        "r(value, n) CROSS JOIN feats f WHERE q.layout = 'c'",
    ]
    raw = " UNION ALL ".join(branches)
    return (
        f", q AS ({q}), raw AS ({raw}) "
        f"SELECT variant, version, fi, {_PG_KIND} AS k, "
        "CASE WHEN jsonb_typeof(e) = 'number' THEN (e #>> '{}')::float8 END AS x, "
        f"{_PG_TEXT} AS s FROM raw"
    )
