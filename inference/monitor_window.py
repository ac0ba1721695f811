"""A window of an endpoint's log as the latency, error-rate, cost and performance monitors read
it: per (variant, version), counted in the database.

``window_figures(store, endpoint, since=…, until=…)`` runs two ``GROUP BY`` statements (SQLite
and PostgreSQL alike, read from the covering window index): the first per (variant, version,
latency bucket) — requests, server errors, abandoned requests, spend and the number of priced
rows, each bucket's min and max latency —, the second per (variant, version) over each
request's newest feedback (``inference.query``'s rule). Python folds the few hundred group
rows; no log row is fetched.

The figures follow ``inference.query.VariantSummary``: status 499 (the caller hung up) is
``abandoned`` and nothing else — not a request, not an error, not in the latencies — but its
spend counts. Latency percentiles are nearest-rank from the log-scale buckets
(``inference.buckets``: within 1 % of the exact value). A row whose ``cost_usd`` is NULL was
not priced: it is counted apart (``priced``), never as 0. A shadow copy never gets feedback
(the caller's answer does).

``labelled(store, endpoint, …)`` fetches the window's requests that have feedback, each with
its newest feedback and its logged ``inputs``/``outputs``: the performance monitor's delayed
labels. Labels are a small set (a fraction of requests get one), so they are read into Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, func, literal_column, select
from sqlalchemy.sql.elements import ColumnElement

from inference import buckets
from inference.records import CALLER_GONE, DEFAULT_ENVIRONMENT, SHADOW
from inference.schema import feedback as F
from inference.schema import inference as T
from inference.store import load_json

if TYPE_CHECKING:
    from inference.store import LogStore

#: A (variant, version) of the endpoint: how every live window is sliced.
Slice = tuple[str | None, str | None]
#: Feedback comes after its request; this margin absorbs clock skew between replicas.
FEEDBACK_SKEW_S = 300.0


@dataclass(frozen=True)
class Figures:
    """One slice of a window. Counts add up across slices (``merged``)."""

    requests: int = 0  # status != 499
    server_errors: int = 0  # status >= 500
    abandoned: int = 0  # status 499
    cost_usd: float = 0.0  # the summed cost of the priced rows (499 included)
    priced: int = 0  # rows with a cost (499 included)
    feedback: int = 0  # requests with feedback (their newest)
    successes: int = 0  # ... whose newest feedback scores > 0
    bins: tuple[buckets.Bin, ...] = field(default_factory=tuple)

    @property
    def rows(self) -> int:
        """Every row of the window, abandoned ones too: the denominator of ``cost_coverage``."""
        return self.requests + self.abandoned

    @property
    def error_rate(self) -> float | None:
        return self.server_errors / self.requests if self.requests else None

    def latency(self, q: float) -> float | None:
        """The nearest-rank ``q`` percentile (0..1) of the requests' latencies, ms."""
        return buckets.percentiles(self.bins, (q,))[0]

    @property
    def cost_coverage(self) -> float | None:
        """Priced rows per row."""
        return self.priced / self.rows if self.rows else None

    @property
    def cost_per_request(self) -> float | None:
        """Spend per *priced* row: an unpriced row is unknown, not free."""
        return self.cost_usd / self.priced if self.priced else None

    @property
    def cost_per_success(self) -> float | None:
        """All the priced spend per successful outcome; None without a success or a price."""
        return self.cost_usd / self.successes if self.successes and self.priced else None


def merged(parts: Iterable[Figures]) -> Figures:
    """The figures of the union of ``parts`` (bins of one bucket merged: count, min, max)."""
    acc: dict[str, Any] = {
        k: 0 for k in ("requests", "server_errors", "abandoned", "priced", "feedback", "successes")
    }
    cost = 0.0
    by_bucket: dict[int, buckets.Bin] = {}
    for p in parts:
        for k in acc:
            acc[k] += getattr(p, k)
        cost += p.cost_usd
        for b in p.bins:
            seen = by_bucket.get(b.bucket)
            by_bucket[b.bucket] = (
                b
                if seen is None
                else buckets.Bin(
                    b.bucket, seen.count + b.count, min(seen.low, b.low), max(seen.high, b.high)
                )
            )
    return Figures(cost_usd=cost, bins=tuple(sorted(by_bucket.values(), key=lambda b: b.bucket)),
                   **acc)  # fmt: skip


def _where(endpoint: str, since: float | None, until: float | None, environment: str) -> list[Any]:
    out: list[Any] = [T.c.environment == environment, T.c.endpoint == endpoint]
    if since is not None:
        out.append(T.c.ts >= since)
    if until is not None:
        out.append(T.c.ts < until)
    return out


def window_figures(
    store: LogStore,
    endpoint: str,
    *,
    since: float | None = None,
    until: float | None = None,
    environment: str = DEFAULT_ENVIRONMENT,
    outcomes: bool = True,
) -> dict[Slice, Figures]:
    """Per (variant, version) that has a row in ``since <= ts < until``: its ``Figures``.
    ``outcomes=False`` skips the feedback statement (``feedback``/``successes`` stay 0): a
    monitor of latency or errors has no use for it."""
    one: ColumnElement[int] = literal_column("1")
    zero: ColumnElement[int] = literal_column("0")
    judged = T.c.status != CALLER_GONE
    grouped = (
        select(
            T.c.variant,
            T.c.version,
            T.c.latency_bucket,
            func.sum(case((judged, one), else_=zero)).label("n"),
            func.sum(case((and_(judged, T.c.status >= 500), one), else_=zero)).label("server"),
            func.sum(case((judged, zero), else_=one)).label("gone"),
            func.sum(T.c.cost_usd).label("cost"),
            func.count(T.c.cost_usd).label("priced"),
            func.min(case((judged, T.c.latency_ms))).label("low"),
            func.max(case((judged, T.c.latency_ms))).label("high"),
        )
        .where(*_where(endpoint, since, until, environment))
        .group_by(T.c.variant, T.c.version, T.c.latency_bucket)
    )
    acc: dict[Slice, dict[str, Any]] = {}
    with store.engine.connect() as conn:
        for r in conn.execute(grouped):
            a = acc.setdefault(
                (r.variant, r.version),
                {"requests": 0, "server_errors": 0, "abandoned": 0, "cost_usd": 0.0,
                 "priced": 0, "feedback": 0, "successes": 0, "bins": []},
            )  # fmt: skip
            a["requests"] += int(r.n or 0)
            a["server_errors"] += int(r.server or 0)
            a["abandoned"] += int(r.gone or 0)
            a["cost_usd"] += float(r.cost or 0.0)
            a["priced"] += int(r.priced or 0)
            if r.n:
                a["bins"].append(buckets.Bin(int(r.latency_bucket), int(r.n), r.low, r.high))
        if acc and outcomes:
            for r in conn.execute(_outcomes_per_slice(endpoint, since, until, environment)):
                a = acc[(r.variant, r.version)]
                a["feedback"] += int(r.fn or 0)
                a["successes"] += int(r.fok or 0)
    return {
        key: Figures(**{**a, "bins": tuple(sorted(a["bins"], key=lambda b: b.bucket))})
        for key, a in acc.items()
    }


def _newest_feedback(endpoint: str, since: float | None, environment: str) -> Any:
    """Each request's newest feedback (by ``ts``, then insertion): one row per request id."""
    fb_where = [F.c.environment == environment, F.c.endpoint == endpoint]
    if since is not None:
        fb_where.append(F.c.ts >= since - FEEDBACK_SKEW_S)
    newest_first = func.row_number().over(
        partition_by=F.c.request_id, order_by=(F.c.ts.desc(), F.c.id.desc())
    )
    ranked = (
        select(F.c.request_id, F.c.label, F.c.outcome, F.c.score, newest_first.label("rank"))
        .where(*fb_where)
        .subquery("ranked")
    )
    return (
        select(ranked.c.request_id, ranked.c.label, ranked.c.outcome, ranked.c.score)
        .where(ranked.c.rank == 1)
        .subquery("fb")
    )


def _request_window(endpoint: str, since: float | None, until: float | None, env: str) -> Any:
    """The window's terms written as expressions (``endpoint || ''``, ``ts + 0``): SQLite then
    looks each feedback's request up by its id instead of scanning the window per feedback row
    (``inference.query._feedback_per_variant``)."""
    out: list[Any] = [T.c.environment.concat("") == env, T.c.endpoint.concat("") == endpoint]
    if since is not None:
        out.append(T.c.ts + 0 >= since)
    if until is not None:
        out.append(T.c.ts + 0 < until)
    return [*out, T.c.variant != SHADOW, T.c.status != CALLER_GONE]


def _outcomes_per_slice(
    endpoint: str, since: float | None, until: float | None, environment: str
) -> Any:
    fb = _newest_feedback(endpoint, since, environment)
    one: ColumnElement[int] = literal_column("1")
    zero: ColumnElement[int] = literal_column("0")
    return (
        select(
            T.c.variant,
            T.c.version,
            func.count().label("fn"),
            func.sum(case((fb.c.score > 0, one), else_=zero)).label("fok"),
        )
        .select_from(fb.join(T, T.c.request_id == fb.c.request_id))
        .where(*_request_window(endpoint, since, until, environment))
        .group_by(T.c.variant, T.c.version)
    )


@dataclass(frozen=True)
class Labelled:
    """A request of the window with feedback: its newest feedback and its logged payloads
    (``inputs``/``outputs`` None when the request's payload was not sampled)."""

    request_id: str
    variant: str
    version: str | None
    inputs: Any
    outputs: Any
    label: Any
    outcome: Any
    score: float | None


def labelled(
    store: LogStore,
    endpoint: str,
    *,
    since: float | None = None,
    until: float | None = None,
    environment: str = DEFAULT_ENVIRONMENT,
) -> list[Labelled]:
    """The window's requests (not shadow copies, not abandoned) with feedback, each once."""
    fb = _newest_feedback(endpoint, since, environment)
    query = (
        select(
            T.c.request_id,
            T.c.variant,
            T.c.version,
            T.c.inputs,
            T.c.outputs,
            fb.c.label,
            fb.c.outcome,
            fb.c.score,
        )
        .select_from(fb.join(T, T.c.request_id == fb.c.request_id))
        .where(*_request_window(endpoint, since, until, environment))
        .order_by(T.c.request_id)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        Labelled(
            request_id=r.request_id,
            variant=r.variant,
            version=r.version,
            inputs=load_json(r.inputs),
            outputs=load_json(r.outputs),
            label=load_json(r.label),
            outcome=load_json(r.outcome),
            score=None if r.score is None else float(r.score),
        )
        for r in rows
    ]


def total(window: Mapping[Slice, Figures]) -> Figures:
    """The window as one slice."""
    return merged(window.values())
