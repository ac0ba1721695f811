"""Per-variant traffic of a SageMaker endpoint, from CloudWatch (``AWS/SageMaker``).

SageMaker publishes, per ``EndpointName``/``VariantName``, one-minute metrics:
``Invocations`` (every request the variant got, errors included),
``Invocation5XXErrors`` (the model or container failed) and ``ModelLatency``
(microseconds; reported here in milliseconds). One ``GetMetricStatistics``
call per metric asks for a single period spanning the whole window, so sums
are exact and CloudWatch's percentiles (``ExtendedStatistics`` p50/p95/p99)
describe the whole window at once.

The window is widened to whole minutes (CloudWatch's resolution) — and to 5
minutes or an hour once it starts more than 15 or 63 days ago, as CloudWatch's
retention requires.

**Approximation.** When CloudWatch returns no percentiles for datapoints that
have samples (moto never computes them), latency falls back to what it does
return: p50 ← the mean, p95 and p99 ← the maximum. The maximum is an upper
bound of both, so a latency limit can only fail too eagerly, never pass a slow
variant; the mean is not a bound of the median. ``LatencySummary.approximate``
says when this happened. Should CloudWatch split the window into several
periods anyway, p95/p99 are the largest of the periods' (upper bounds) and p50
their sample-weighted mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from providers.contract import VariantMetrics

NAMESPACE = "AWS/SageMaker"
_PERCENTILES = ("p50", "p95", "p99")
_DAY = 86400


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    period: int


def window(since: float, until: float, now: float) -> Window:
    """``since..until`` (epoch seconds) as one CloudWatch period on its grid."""
    age = now - since
    unit = 3600 if age > 63 * _DAY else 300 if age > 15 * _DAY else 60
    start = math.floor(since / unit) * unit
    end = max(math.ceil(until / unit) * unit, start + unit)
    return Window(
        datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC), int(end - start)
    )


@dataclass(frozen=True)
class LatencySummary:
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    #: CloudWatch gave no percentiles: p50 is the mean, p95/p99 the maximum.
    approximate: bool = False


def summarize_latency(datapoints: list[dict[str, Any]]) -> LatencySummary:
    """``ModelLatency`` datapoints (µs) -> percentiles in ms (see the module's approximation)."""
    points = [p for p in datapoints if float(p.get("SampleCount") or 0) > 0]
    if not points:
        return LatencySummary()
    counts = [float(p["SampleCount"]) for p in points]
    total = sum(counts)
    extended = [p.get("ExtendedStatistics") or {} for p in points]
    if all(all(k in e for k in _PERCENTILES) for e in extended):
        p50 = sum(float(e["p50"]) * c for e, c in zip(extended, counts, strict=True)) / total
        return LatencySummary(
            p50 / 1000,
            max(float(e["p95"]) for e in extended) / 1000,
            max(float(e["p99"]) for e in extended) / 1000,
        )
    mean = sum(float(p.get("Average", 0)) * c for p, c in zip(points, counts, strict=True)) / total
    top = max(float(p.get("Maximum", 0)) for p in points)
    return LatencySummary(mean / 1000, top / 1000, top / 1000, approximate=True)


def _datapoints(
    client: Any,
    metric: str,
    dimensions: list[dict[str, str]],
    win: Window,
    statistics: list[str],
    extended: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    kwargs: dict[str, Any] = {
        "Namespace": NAMESPACE,
        "MetricName": metric,
        "Dimensions": dimensions,
        "StartTime": win.start,
        "EndTime": win.end,
        "Period": win.period,
        "Statistics": statistics,
    }
    if extended:
        kwargs["ExtendedStatistics"] = list(extended)
    return list(client.get_metric_statistics(**kwargs).get("Datapoints") or [])


def _total(points: list[dict[str, Any]]) -> int:
    return round(sum(float(p.get("Sum") or 0) for p in points))


def variant_metrics(
    client: Any, endpoint: str, variant: str, win: Window, log: Callable[[str], None]
) -> VariantMetrics:
    """Requests, 5XX errors and latency of one variant in ``win``.

    SageMaker bills instance-hours, not requests, and has no feedback route:
    ``cost_usd`` stays 0 and the feedback fields empty.
    """
    dimensions = [
        {"Name": "EndpointName", "Value": endpoint},
        {"Name": "VariantName", "Value": variant},
    ]
    requests = _total(_datapoints(client, "Invocations", dimensions, win, ["Sum"]))
    errors = _total(_datapoints(client, "Invocation5XXErrors", dimensions, win, ["Sum"]))
    latency = summarize_latency(
        _datapoints(
            client,
            "ModelLatency",
            dimensions,
            win,
            ["SampleCount", "Average", "Maximum"],
            _PERCENTILES,
        )
    )
    if latency.approximate:
        log(
            f"{endpoint}/{variant}: CloudWatch returned no ModelLatency percentiles; "
            "p50 is the mean and p95/p99 the maximum (upper bounds)"
        )
    return VariantMetrics(
        requests=requests,
        server_errors=errors,
        latency_p50_ms=latency.p50_ms,
        latency_p95_ms=latency.p95_ms,
        latency_p99_ms=latency.p99_ms,
    )
