"""Per-role traffic of an endpoint from the inference log (what rollout analyses judge).

The gateway logs each request under the *role* that answered it (``variant``: ``stable``,
``candidate``, ``shadow``); ``inference.query.variant_summary`` aggregates them in the
database. Latency percentiles are read from its log-scale buckets: within 1 % of the exact
nearest-rank value, and exact when the percentile is a bucket's smallest or largest latency.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from contract import Role, VariantMetrics

if TYPE_CHECKING:
    from inference.store import LogStore


def role_metrics(
    store: LogStore, endpoint: str, environment: str, since: float, until: float
) -> dict[Role, VariantMetrics]:
    """Every role of ``endpoint`` over ``since <= ts < until``; a role without traffic: zeros."""
    from inference.query import variant_summary

    summary = variant_summary(store, endpoint, since=since, until=until, environment=environment)
    out = {role: VariantMetrics() for role in Role}
    for role in Role:
        s = summary.get(role.value)
        if s is None:
            continue
        out[role] = VariantMetrics(
            requests=s.requests,  # answers given: the summary leaves a caller's 499 out
            server_errors=s.server_errors,
            client_errors=s.client_errors,
            latency_p50_ms=s.latency_p50_ms,
            latency_p95_ms=s.latency_p95_ms,
            latency_p99_ms=s.latency_p99_ms,
            cost_usd=s.cost_usd,
            feedback_count=s.feedback,
            feedback_mean=s.mean_score,
        )
    return out
