"""Per-variant traffic of a SageMaker endpoint, from CloudWatch (``AWS/SageMaker``).

SageMaker publishes, per ``EndpointName``/``VariantName``, one-minute metrics:
``Invocations`` (every request the variant got, errors included),
``Invocation5XXErrors`` (the model or container failed), ``Invocation4XXErrors`` (it
refused the request: compared with stable's share by every analysis) and ``ModelLatency``
(microseconds; reported here in milliseconds).

**The window.** The controller asks about ``since..until`` (half-open) and
judges consecutive windows, each starting where the last ended, so every data
point must be counted in exactly one of them. One ``GetMetricStatistics`` call
per metric asks for that window at the finest period CloudWatch keeps for it —
60 s (SageMaker's metrics are standard resolution), 5 minutes or an hour once
the window starts more than 15 or 63 days ago (CloudWatch's retention), coarser
only to stay within 1,440 data points a call — and keeps the data points
*stamped* inside the window, on CloudWatch's millisecond grid. A data point
covers its period from its stamp on, so a window gets a minute's traffic only
if that minute starts inside it: on AWS a window shorter than a minute often
sees nothing (inconclusive), and the minute a look falls in counts only what
CloudWatch had received by then. Rollouts on SageMaker want pauses of several
minutes (docs/providers.md).

**Latency.** CloudWatch's percentiles (``ExtendedStatistics`` p50/p95/p99,
asked in a call of their own: ``GetMetricStatistics`` takes ``Statistics`` or
``ExtendedStatistics``, not both) describe one period; over several, p95/p99
are the largest period's (upper bounds of the window's) and p50 the periods'
p50s weighted by their samples. When CloudWatch returns no percentiles for
data points that have samples (moto never computes them), latency falls back
to what it does return: p50 ← the mean, p95 and p99 ← the maximum. The
maximum is an upper bound of both, so a latency limit can only fail too
eagerly, never pass a slow variant; the mean is not a bound of the median.
``LatencySummary.approximate`` says when this happened.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contract import VariantMetrics

NAMESPACE = "AWS/SageMaker"
_PERCENTILES = ("p50", "p95", "p99")
_DAY = 86400
#: The most data points one ``GetMetricStatistics`` call may ask for.
MAX_POINTS = 1440


def _ms(epoch: float) -> int:
    """``epoch`` seconds on CloudWatch's millisecond grid."""
    return math.floor(epoch * 1000)


@dataclass(frozen=True)
class Window:
    """``since..until`` (epoch seconds, half-open) and the CloudWatch request that reads it."""

    since: float
    until: float
    start: datetime
    end: datetime
    period: int

    def holds(self, point: Mapping[str, Any]) -> bool:
        """Whether a data point is stamped inside the window (its period starts in it)."""
        stamp = point["Timestamp"]
        return _ms(self.since) <= _ms(stamp.timestamp()) < _ms(self.until)


def window(since: float, until: float, now: float) -> Window:
    """``since..until`` as CloudWatch is asked for it: the finest period its retention allows.

    The start is sent as given (CloudWatch rounds it down to its own grid); the end
    is rounded up to a whole second (moto drops a fraction, which would lose the
    window's last moments) — ``Window.holds`` drops anything stamped past ``until``.
    """
    age = now - since
    unit = 3600 if age > 63 * _DAY else 300 if age > 15 * _DAY else 60
    end = max(math.ceil(until), math.floor(since) + 1)
    span = end - math.floor(since / unit) * unit  # what CloudWatch counts the points over
    period = unit * max(1, math.ceil(span / (unit * MAX_POINTS)))
    return Window(
        since,
        until,
        datetime.fromtimestamp(since, UTC),
        datetime.fromtimestamp(end, UTC),
        period,
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
    statistics: list[str] | None = None,
    extended: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """The data points of ``metric`` stamped inside ``win``: ``statistics`` or ``extended``
    (percentiles) — CloudWatch takes one kind per ``GetMetricStatistics`` call, not both."""
    kwargs: dict[str, Any] = {
        "Namespace": NAMESPACE,
        "MetricName": metric,
        "Dimensions": dimensions,
        "StartTime": win.start,
        "EndTime": win.end,
        "Period": win.period,
    }
    if statistics:
        kwargs["Statistics"] = statistics
    if extended:
        kwargs["ExtendedStatistics"] = list(extended)
    points = client.get_metric_statistics(**kwargs).get("Datapoints") or []
    return [p for p in points if win.holds(p)]


def _latency_points(
    client: Any, dimensions: list[dict[str, str]], win: Window
) -> list[dict[str, Any]]:
    """``ModelLatency`` per period: counts, mean and maximum, with the period's percentiles."""
    points = _datapoints(
        client, "ModelLatency", dimensions, win, ["SampleCount", "Average", "Maximum"]
    )
    percentiles = {
        _ms(p["Timestamp"].timestamp()): p["ExtendedStatistics"]
        for p in _datapoints(client, "ModelLatency", dimensions, win, extended=_PERCENTILES)
        if p.get("ExtendedStatistics")
    }
    merged = []
    for p in points:
        found = percentiles.get(_ms(p["Timestamp"].timestamp()))
        merged.append({**p, "ExtendedStatistics": found} if found else p)
    return merged


def _total(points: list[dict[str, Any]]) -> int:
    return round(sum(float(p.get("Sum") or 0) for p in points))


def variant_metrics(
    client: Any, endpoint: str, variant: str, win: Window, log: Callable[[str], None]
) -> VariantMetrics:
    """Requests, 5XX and 4XX errors and latency of one variant in ``win``.

    SageMaker bills instance-hours, not requests, and has no feedback route:
    ``cost_usd`` stays 0 and the feedback fields empty.
    """
    dimensions = [
        {"Name": "EndpointName", "Value": endpoint},
        {"Name": "VariantName", "Value": variant},
    ]
    requests = _total(_datapoints(client, "Invocations", dimensions, win, ["Sum"]))
    errors = _total(_datapoints(client, "Invocation5XXErrors", dimensions, win, ["Sum"]))
    refused = _total(_datapoints(client, "Invocation4XXErrors", dimensions, win, ["Sum"]))
    latency = summarize_latency(_latency_points(client, dimensions, win))
    if latency.approximate:
        log(
            f"{endpoint}/{variant}: CloudWatch returned no ModelLatency percentiles; "
            "p50 is the mean and p95/p99 the maximum (upper bounds)"
        )
    return VariantMetrics(
        requests=requests,
        server_errors=errors,
        client_errors=refused,
        latency_p50_ms=latency.p50_ms,
        latency_p95_ms=latency.p95_ms,
        latency_p99_ms=latency.p99_ms,
    )
