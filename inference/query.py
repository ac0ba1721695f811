"""What reads the log: ``mlx logs``, rollout analysis, monitors, budgets, the dashboard.

Everything is aggregated in the database; Python only folds a few hundred group rows. Times are
epoch seconds; a window is ``since <= ts < until`` (None: unbounded); ``ts`` is the request's
arrival. Every query is scoped to one mlx environment (``environment``, default "default").
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Float,
    and_,
    case,
    column,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.sql.elements import ColumnElement

from inference import buckets
from inference.records import CALLER_GONE, DEFAULT_ENVIRONMENT, SHADOW, InferenceRecord
from inference.schema import feedback as F
from inference.schema import inference as T
from inference.store import load_json

if TYPE_CHECKING:
    from inference.store import LogStore

_RECORD_COLUMNS = [T.c[f.name] for f in fields(InferenceRecord)]


@dataclass(frozen=True)
class Logged:
    """A record as stored, with its row id (the cursor of ``tail(after_id=…)``)."""

    id: int
    record: InferenceRecord


def _window(ts: Any, since: float | None, until: float | None) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if since is not None:
        out.append(ts >= since)
    if until is not None:
        out.append(ts < until)
    return out


def _record(mapping: Any) -> InferenceRecord:
    values = dict(mapping)
    values.pop("id", None)
    values["inputs"] = load_json(values["inputs"])
    values["outputs"] = load_json(values["outputs"])
    values["cache_hit"] = bool(values["cache_hit"])
    return InferenceRecord(**values)


# -- (a) tail ----------------------------------------------------------------------------------
def tail(
    store: LogStore,
    endpoint: str,
    *,
    since: float | None = None,
    limit: int | None = 100,
    after_id: int | None = None,
    upto_id: int | None = None,
    environment: str = DEFAULT_ENVIRONMENT,
) -> list[Logged]:
    """Records of ``endpoint``, oldest first.

    Without ``after_id``: the last ``limit`` records (by ``ts``) with ``ts >= since``. With
    ``after_id``: the first ``limit`` records stored after that row id (``--follow``).
    ``upto_id`` leaves out rows stored after it. ``limit=None``: no limit.
    """
    where = [
        T.c.environment == environment,
        T.c.endpoint == endpoint,
        *_window(T.c.ts, since, None),
    ]
    if upto_id is not None:
        where.append(T.c.id <= upto_id)
    query = select(T.c.id, *_RECORD_COLUMNS).where(*where)
    if after_id is not None:
        query = query.where(T.c.id > after_id).order_by(T.c.id)
    else:
        query = query.order_by(T.c.ts.desc(), T.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    out = [Logged(row.id, _record(row._mapping)) for row in rows]
    if after_id is None:
        out.reverse()
    return out


def last_id(store: LogStore, endpoint: str, *, environment: str = DEFAULT_ENVIRONMENT) -> int:
    """The newest row id of ``endpoint`` (0 if none): where a follower starts."""
    query = select(func.max(T.c.id)).where(T.c.environment == environment, T.c.endpoint == endpoint)
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar() or 0)


@dataclass
class Follower:
    """``mlx logs --follow``: the last records, then whatever is stored after them, once each.

    SQLite has one writer at a time, so row ids appear in order and a cursor on the id is
    exact. On PostgreSQL concurrent writers (replicas) can commit a lower id after a higher one
    was read; each poll therefore re-reads the ids stored during the last ``overlap_s`` seconds
    and skips those already shown, so a row is missed only if its transaction commits more
    than ``overlap_s`` after a later one (a batch commits in milliseconds).
    """

    store: LogStore
    endpoint: str
    environment: str = DEFAULT_ENVIRONMENT
    overlap_s: float | None = None
    _cursor: int = field(default=0, init=False)
    _history: deque[tuple[float, int]] = field(default_factory=deque, init=False)
    _shown: set[int] = field(default_factory=set, init=False)  # ids above ``low`` shown

    def __post_init__(self) -> None:
        if self.overlap_s is None:
            self.overlap_s = 0.0 if self.store.dialect == "sqlite" else 5.0

    def first(self, *, since: float | None, limit: int | None) -> list[Logged]:
        self._cursor = last_id(self.store, self.endpoint, environment=self.environment)
        page = tail(
            self.store,
            self.endpoint,
            since=since,
            limit=limit,
            upto_id=self._cursor,
            environment=self.environment,
        )
        self._history.append((time.monotonic(), self._cursor))
        return page

    def poll(self, *, page: int = 10_000) -> list[Logged]:
        """The records stored since the last poll (oldest first), each returned once."""
        now = time.monotonic()
        assert self.overlap_s is not None
        while len(self._history) > 1 and self._history[1][0] <= now - self.overlap_s:
            self._history.popleft()
        low = self._history[0][1] if self.overlap_s > 0 else self._cursor
        rows: list[Logged] = []
        while True:
            chunk = tail(
                self.store,
                self.endpoint,
                after_id=rows[-1].id if rows else low,
                limit=page,
                environment=self.environment,
            )
            rows.extend(chunk)
            if len(chunk) < page:
                break
        fresh = [r for r in rows if r.id not in self._shown]
        if self.overlap_s > 0:
            self._shown.update(r.id for r in fresh)
            self._shown = {rid for rid in self._shown if rid > low}  # the rest is never re-read
        if rows:
            self._cursor = max(self._cursor, rows[-1].id)
        self._history.append((now, self._cursor))
        return fresh


# -- (b) per-variant summary -------------------------------------------------------------------
@dataclass(frozen=True)
class VariantSummary:
    """One variant of an endpoint over a window: what canary analysis and dashboards read.

    Latency percentiles are nearest-rank percentiles read from log-scale buckets stored with
    each row (``inference.buckets``): approximate, within 1 % (relative) of the exact value,
    and exact when the percentile falls on a bucket's smallest or largest latency. They are
    None when there are no requests.

    A request's outcome is its newest feedback (last write wins; every feedback stays in the
    table): ``feedback`` counts the variant's requests in the window that have feedback, each
    once, ``mean_score`` averages those requests' numeric scores, and ``successes`` counts
    those whose score is > 0.

    Status 499 is the caller's own failure (it hung up, or sent its body too slowly): those
    records are ``abandoned`` and nothing else — not among ``requests`` (the denominator of
    every rate), not ``server_errors`` (>= 500), not ``client_errors`` (the other 4xx), not in
    the latency percentiles. A caller can then neither fail a variant nor dilute its error
    rate by hanging up. Their spend still counts in ``cost_usd``.

    Derived per variant (each None where its denominator is zero): ``hit_rate`` (cache hits
    per request), ``cost_per_request`` (spend per request) and ``cost_per_success`` (all of
    the variant's spend, failures and requests without feedback included, per successful
    outcome). A shadow copy never gets feedback (it goes to the caller's answer), so its
    ``cost_per_success`` is None.
    """

    variant: str
    requests: int
    server_errors: int
    client_errors: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    cost_usd: float
    input_tokens: int
    output_tokens: int
    cache_hits: int
    feedback: int = 0
    mean_score: float | None = None
    successes: int = 0
    abandoned: int = 0

    @property
    def error_rate(self) -> float | None:
        """Server errors (status >= 500) per request."""
        return self.server_errors / self.requests if self.requests else None

    @property
    def hit_rate(self) -> float | None:
        """Requests answered from the response cache, per request."""
        return self.cache_hits / self.requests if self.requests else None

    @property
    def cost_per_request(self) -> float | None:
        return self.cost_usd / self.requests if self.requests else None

    @property
    def cost_per_success(self) -> float | None:
        """The variant's whole spend per successful outcome; None when nothing succeeded."""
        return self.cost_usd / self.successes if self.successes else None

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        out = asdict(self)
        out["error_rate"] = self.error_rate
        out["hit_rate"] = self.hit_rate
        out["cost_per_request"] = self.cost_per_request
        out["cost_per_success"] = self.cost_per_success
        return out


def variant_summary(
    store: LogStore,
    endpoint: str,
    *,
    since: float | None = None,
    until: float | None = None,
    environment: str = DEFAULT_ENVIRONMENT,
) -> dict[str, VariantSummary]:
    """Per variant of ``endpoint`` over ``since <= ts < until``: see ``VariantSummary``.

    One pass over the window (``GROUP BY variant, latency_bucket``, read from the covering
    window index). When the endpoint has feedback, a second query starts from the feedback
    (each request's newest, a small set) and looks each request up by its id
    (``ix_mlx_inference_request``), summed per variant. Joining the other way round — the
    window left-joined with the feedback — made SQLite scan the whole feedback set once per
    request (no automatic index on a ranked subquery): 30 s for 100k requests and 2k
    feedback rows, where this takes milliseconds (bench/inference_log.py).
    """
    one: ColumnElement[int] = literal_column("1")
    zero: ColumnElement[int] = literal_column("0")
    judged = T.c.status != CALLER_GONE  # a 499 is the caller's: none of the variant's figures
    in_window = [
        T.c.environment == environment,
        T.c.endpoint == endpoint,
        *_window(T.c.ts, since, until),
    ]
    columns: list[Any] = [
        T.c.variant,
        T.c.latency_bucket,
        func.sum(case((judged, one), else_=zero)).label("n"),
        func.sum(case((T.c.status >= 500, one), else_=zero)).label("server"),
        func.sum(case((and_(T.c.status >= 400, T.c.status < 500, judged), one), else_=zero)).label(
            "client"
        ),
        func.sum(case((judged, zero), else_=one)).label("gone"),
        func.sum(T.c.cost_usd).label("cost"),
        func.sum(T.c.input_tokens).label("tin"),
        func.sum(T.c.output_tokens).label("tout"),
        func.sum(case((T.c.cache_hit, one), else_=zero)).label("hits"),
        func.min(case((judged, T.c.latency_ms))).label("low"),
        func.max(case((judged, T.c.latency_ms))).label("high"),
    ]
    # Feedback comes after its request; a 5-minute margin absorbs clock skew between replicas.
    fb_since = [] if since is None else [F.c.ts >= since - 300.0]
    fb_where = [F.c.environment == environment, F.c.endpoint == endpoint, *fb_since]
    keys = ("n", "server", "client", "gone", "tin", "tout", "hits", "fn", "fcount", "fok")
    acc: dict[str, dict[str, Any]] = {}
    with store.engine.connect() as conn:
        grouped = select(*columns).where(*in_window).group_by(T.c.variant, T.c.latency_bucket)
        for r in conn.execute(grouped):
            a = acc.setdefault(r.variant, dict.fromkeys(keys, 0) | {"cost": 0.0, "fsum": 0.0})
            m = r._mapping
            for key in keys:
                a[key] += int(m.get(key) or 0)
            a["cost"] += float(r.cost or 0.0)
            bins = a.setdefault("bins", [])
            if r.n:
                bins.append(buckets.Bin(r.latency_bucket, int(r.n), r.low, r.high))
        if acc and conn.execute(select(F.c.id).where(*fb_where).limit(1)).first() is not None:
            where = (environment, endpoint, since, until)
            for r in conn.execute(_feedback_per_variant(where, fb_where, one, zero)):
                a = acc[r.variant]
                for key in ("fn", "fcount", "fok"):
                    a[key] += int(r._mapping[key] or 0)
                a["fsum"] += float(r.fsum or 0.0)
    out: dict[str, VariantSummary] = {}
    for variant in sorted(acc):
        a = acc[variant]
        p50, p95, p99 = buckets.percentiles(a["bins"], (0.5, 0.95, 0.99))
        out[variant] = VariantSummary(
            variant=variant,
            requests=a["n"],
            server_errors=a["server"],
            client_errors=a["client"],
            latency_p50_ms=p50,
            latency_p95_ms=p95,
            latency_p99_ms=p99,
            cost_usd=a["cost"],
            input_tokens=a["tin"],
            output_tokens=a["tout"],
            cache_hits=a["hits"],
            feedback=a["fn"],
            mean_score=a["fsum"] / a["fcount"] if a["fcount"] else None,
            successes=a["fok"],
            abandoned=a["gone"],
        )
    return out


def _feedback_per_variant(
    where: tuple[str, str, float | None, float | None], fb_where: list[Any], one: Any, zero: Any
) -> Any:
    """Per variant, the outcomes of the window's requests that have feedback (a shadow's copy
    of a request is not the caller's: its feedback is the stable answer's).

    Each request is found by its id. The window's terms are written as expressions
    (``endpoint || ''``, ``ts + 0``), which SQLite's documented rule keeps off an index:
    otherwise it probes the window index once per feedback row, reading the whole window
    each time. PostgreSQL plans the join by hash either way.
    """
    environment, endpoint, since, until = where
    per_request = _outcomes(fb_where, one, zero)
    window = [
        T.c.environment.concat("") == environment,
        T.c.endpoint.concat("") == endpoint,
        *_window(T.c.ts + 0, since, until),
    ]
    return (
        select(
            T.c.variant,
            func.sum(per_request.c.fn).label("fn"),
            func.sum(per_request.c.fsum).label("fsum"),
            func.sum(per_request.c.fcount).label("fcount"),
            func.sum(per_request.c.fok).label("fok"),
        )
        .select_from(per_request.join(T, T.c.request_id == per_request.c.request_id))
        .where(*window, T.c.variant != SHADOW)
        .group_by(T.c.variant)
    )


def _outcomes(fb_where: list[Any], one: Any, zero: Any) -> Any:
    """Each request's outcome: its newest feedback (by ``ts``, then insertion), one row per
    request id: ``fn`` 1, ``fsum`` its score, ``fcount`` 1 if the score is numeric, ``fok`` 1 if
    it is > 0. Older feedback for the same request is kept in the table, never counted."""
    newest_first = func.row_number().over(
        partition_by=F.c.request_id, order_by=(F.c.ts.desc(), F.c.id.desc())
    )
    ranked = (
        select(F.c.request_id, F.c.score, newest_first.label("rank")).where(*fb_where).subquery()
    )
    return (
        select(
            ranked.c.request_id,
            one.label("fn"),
            ranked.c.score.label("fsum"),
            case((ranked.c.score.is_not(None), one), else_=zero).label("fcount"),
            case((ranked.c.score > 0, one), else_=zero).label("fok"),
        )
        .where(ranked.c.rank == 1)
        .subquery("fb")
    )


# -- (c) spend ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Spend:
    usd: float
    input_tokens: int
    output_tokens: int
    requests: int

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def spend(
    store: LogStore,
    *,
    since: float | None = None,
    until: float | None = None,
    endpoint: str | None = None,
    subject: str | None = None,
    environment: str = DEFAULT_ENVIRONMENT,
) -> Spend:
    """Cost and tokens over a window: of one endpoint, one subject (``models.x`` /
    ``prompts.y``), both, or the whole environment. Shadow calls count: they are spent too.
    """
    where = [T.c.environment == environment, *_window(T.c.ts, since, until)]
    if endpoint is not None:
        where.append(T.c.endpoint == endpoint)
    if subject is not None:
        where.append(T.c.subject == subject)
    query = select(
        func.coalesce(func.sum(T.c.cost_usd), 0.0),
        func.coalesce(func.sum(T.c.input_tokens), 0),
        func.coalesce(func.sum(T.c.output_tokens), 0),
        func.count(),
    ).where(*where)
    with store.engine.connect() as conn:
        usd, tin, tout, n = conn.execute(query).one()
    return Spend(float(usd), int(tin), int(tout), int(n))


# -- (d) shadow pairs --------------------------------------------------------------------------
@dataclass(frozen=True)
class Side:
    variant: str
    version: str | None
    status: int
    latency_ms: float
    outputs: Any
    error: str | None


@dataclass(frozen=True)
class Pair:
    """A request the caller got from ``primary`` and that was mirrored to ``shadow``."""

    request_id: str
    ts: float
    primary: Side
    shadow: Side


def pairs(
    store: LogStore,
    endpoint: str,
    *,
    since: float | None = None,
    until: float | None = None,
    limit: int | None = None,
    environment: str = DEFAULT_ENVIRONMENT,
) -> list[Pair]:
    """Shadow calls of ``endpoint`` in the window, each with the caller's answer (the record
    with the same request id and another variant), oldest first. ``outputs`` are None where
    the payload was not sampled. Both records must be in the window.

    The window's rows are read once into a materialized CTE and joined with themselves, so no
    index on request ids is needed (SQLite builds a transient one, PostgreSQL hashes).
    """
    cols = ["request_id", "variant", "version", "status", "latency_ms", "outputs", "error", "ts"]
    w = (
        select(*[T.c[c] for c in cols])
        .where(
            T.c.environment == environment,
            T.c.endpoint == endpoint,
            *_window(T.c.ts, since, until),
        )
        .cte("w")
        .prefix_with("MATERIALIZED")
    )
    s = w.alias("s")
    p = w.alias("p")
    query = (
        select(*[s.c[c].label(f"s_{c}") for c in cols], *[p.c[c].label(f"p_{c}") for c in cols])
        .select_from(s.join(p, p.c.request_id == s.c.request_id))
        .where(s.c.variant == SHADOW, p.c.variant != SHADOW)
        .order_by(s.c.ts)
    )
    if limit is not None:
        query = query.limit(limit)
    with store.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()

    def side(row: Any, prefix: str) -> Side:
        return Side(
            variant=row[f"{prefix}variant"],
            version=row[f"{prefix}version"],
            status=row[f"{prefix}status"],
            latency_ms=row[f"{prefix}latency_ms"],
            outputs=load_json(row[f"{prefix}outputs"]),
            error=row[f"{prefix}error"],
        )

    return [Pair(r["s_request_id"], r["p_ts"], side(r, "p_"), side(r, "s_")) for r in rows]


# -- (e) endpoints -----------------------------------------------------------------------------
def endpoints(store: LogStore, *, environment: str = DEFAULT_ENVIRONMENT) -> list[str]:
    """The endpoint names the log holds for ``environment``, sorted.

    A loose index scan (a recursive CTE that jumps from one name to the next in the cursor
    index): O(endpoints * log(rows)), not a scan of every row.
    """
    walk = text(
        """
        WITH RECURSIVE names(name) AS (
            SELECT MIN(endpoint) FROM mlx_inference WHERE environment = :env
            UNION ALL
            SELECT (SELECT MIN(endpoint) FROM mlx_inference
                    WHERE environment = :env AND endpoint > names.name)
            FROM names WHERE names.name IS NOT NULL
        )
        SELECT name FROM names WHERE name IS NOT NULL
        """
    )
    with store.engine.connect() as conn:
        return sorted(conn.execute(walk, {"env": environment}).scalars().all())


def environments(store: LogStore) -> list[str]:
    """The environments the log holds records for, sorted (a loose scan, like ``endpoints``)."""
    walk = text(
        """
        WITH RECURSIVE names(name) AS (
            SELECT MIN(environment) FROM mlx_inference
            UNION ALL
            SELECT (SELECT MIN(environment) FROM mlx_inference WHERE environment > names.name)
            FROM names WHERE names.name IS NOT NULL
        )
        SELECT name FROM names WHERE name IS NOT NULL
        """
    )
    with store.engine.connect() as conn:
        return sorted(conn.execute(walk).scalars().all())


# -- drift: one feature's histogram over the sampled inputs ------------------------------------
def feature_counts(
    store: LogStore,
    endpoint: str,
    feature: str,
    *,
    edges: Sequence[float] | None = None,
    since: float | None = None,
    until: float | None = None,
    variant: str | None = None,
    environment: str = DEFAULT_ENVIRONMENT,
) -> dict[Any, int]:
    """Counts of one input feature over the sampled payloads of a window (drift monitors).

    ``inputs`` is read as a list of records (``[{"feature": value, ...}, ...]``, the
    ``dataframe_records`` shape) or as one record. With ``edges`` (ascending), numbers are
    counted into ``len(edges) + 1`` bins: key ``i`` counts ``edges[i-1] <= v < edges[i]`` (key
    0 is below the first edge, key ``len(edges)`` at or above the last) and values that are
    missing, null or not numbers count under None. Without ``edges``: counts per distinct value
    (categorical; missing under None). The bins are counted in the database (``GROUP BY``).
    """
    rows = _feature_rows(store.dialect, endpoint, feature, since, until, variant, environment)
    if edges is None:
        key: Any = rows.c.v
    else:
        number = rows.c.num
        bin_index: Any = sum(
            (case((number >= e, literal_column("1")), else_=literal_column("0")) for e in edges),
            literal_column("0"),
        )
        key = case((number.is_(None), None), else_=bin_index)
    query = select(key.label("k"), func.count().label("n")).group_by(key)
    out: dict[Any, int] = {}
    with store.engine.connect() as conn:
        for k, n in conn.execute(query):
            k = int(k) if edges is not None and k is not None else k
            out[k] = out.get(k, 0) + int(n)
    return out


def _feature_rows(
    dialect: str,
    endpoint: str,
    feature: str,
    since: float | None,
    until: float | None,
    variant: str | None,
    environment: str,
) -> Any:
    """A sub-select of the feature in each sampled input row: ``v`` its value (PostgreSQL: as
    text), ``num`` the value if it is a JSON number, else NULL."""
    conds = ["i.environment = :env", "i.endpoint = :endpoint", "i.inputs IS NOT NULL"]
    params: dict[str, Any] = {"env": environment, "endpoint": endpoint, "feature": feature}
    for name, cond, value in (
        ("since", "i.ts >= :since", since),
        ("until", "i.ts < :until", until),
        ("variant", "i.variant = :variant", variant),
    ):
        if value is not None:
            conds.append(cond)
            params[name] = value
    where = " AND ".join(conds)
    if dialect == "postgresql":
        sql = f"""
            SELECT e.value ->> :feature AS v,
                   CASE WHEN jsonb_typeof(e.value -> :feature) = 'number'
                        THEN (e.value ->> :feature)::float8 END AS num
            FROM mlx_inference i,
                 jsonb_array_elements(CASE jsonb_typeof(i.inputs::jsonb)
                     WHEN 'array' THEN i.inputs::jsonb
                     ELSE jsonb_build_array(i.inputs::jsonb) END) AS e(value)
            WHERE {where}
        """
    else:
        sql = f"""
            SELECT json_extract(e.value, :path) AS v,
                   CASE WHEN json_type(e.value, :path) IN ('integer', 'real')
                        THEN json_extract(e.value, :path) END AS num
            FROM mlx_inference i,
                 json_each(CASE json_type(i.inputs)
                     WHEN 'array' THEN i.inputs ELSE json_array(json(i.inputs)) END) AS e
            WHERE {where}
        """
        params["path"] = '$."' + params.pop("feature").replace('"', '\\"') + '"'
    return text(sql).bindparams(**params).columns(column("v"), column("num", Float)).subquery("f")


__all__ = [
    "Follower",
    "Logged",
    "Pair",
    "Side",
    "Spend",
    "VariantSummary",
    "endpoints",
    "environments",
    "feature_counts",
    "last_id",
    "pairs",
    "spend",
    "tail",
    "variant_summary",
]
