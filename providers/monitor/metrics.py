"""The ``latency``, ``error_rate`` and ``cost`` monitors: one figure of an endpoint's log window
against a ceiling, per (variant, version) and for the window as a whole.

=============  ==========================================  ============================
type           ``metric`` (the judged figure)              threshold
=============  ==========================================  ============================
latency        ``p50`` / ``p95`` (default) / ``p99``       ms, a ceiling
               (``latency_p95_ms`` is the same as ``p95``)
error_rate     server errors (status >= 500) per request   a share 0..1, a ceiling
cost           ``cost_per_request`` (default) /            USD, a ceiling
               ``cost_per_success``
=============  ==========================================  ============================

The window is read by ``inference.monitor_window`` (two ``GROUP BY`` statements in the log's
database). Every figure of the type is kept in the slice's ``metrics`` rows, the judged one
first. Cost: a row without a price (``cost_usd`` NULL) is unknown, never free: the cost per
request is over the priced rows, and the coverage (priced rows per row) is a row of its own and
part of every finding. A slice with requests but no figure (no priced row; no successful
outcome for ``cost_per_success``) is ``insufficient_data``, never ok (``metric_judge``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.durations import parse_duration
from contract import Prior
from providers.monitor.metric_judge import Direction, Judged, Row, decide, judge_value, number
from specs.monitors import Monitor

if TYPE_CHECKING:
    from inference.monitor_window import Figures, Slice
    from providers.monitor.provider import MonitorProvider

#: The judged figure of each type when ``metric`` names none.
DEFAULT_METRIC = {"latency": "p95", "error_rate": "error_rate", "cost": "cost_per_request"}
#: Accepted spellings of each type's figures -> the canonical name.
METRICS: dict[str, dict[str, str]] = {
    "latency": {
        **{p: f"latency_{p}_ms" for p in ("p50", "p95", "p99")},
        **{f"latency_{p}_ms": f"latency_{p}_ms" for p in ("p50", "p95", "p99")},
    },
    "error_rate": {"error_rate": "error_rate"},
    "cost": {"cost_per_request": "cost_per_request", "cost_per_success": "cost_per_success"},
}


def canonical_metric(kind: str, metric: str | None) -> str:
    """The judged figure of a monitor of type ``kind`` (``ValueError`` naming the choices)."""
    known = METRICS[kind]
    chosen = metric or DEFAULT_METRIC[kind]
    if chosen not in known:
        names = ", ".join(k for k in known if not k.startswith("latency_")) or ", ".join(known)
        raise ValueError(f"a {kind} monitor's metric is one of {names}, not {chosen!r}")
    return known[chosen]


@dataclass(frozen=True)
class Figure:
    """How one canonical metric is read from ``Figures`` and printed in a finding."""

    read: Callable[[Figures], float | None]
    text: Callable[[float], str]
    name: str


def _ms(x: float) -> str:
    return f"{number(x)} ms"


def _usd(x: float) -> str:
    return f"${x:.4g}"


FIGURES: dict[str, Figure] = {
    "latency_p50_ms": Figure(lambda f: f.latency(0.5), _ms, "latency p50"),
    "latency_p95_ms": Figure(lambda f: f.latency(0.95), _ms, "latency p95"),
    "latency_p99_ms": Figure(lambda f: f.latency(0.99), _ms, "latency p99"),
    "error_rate": Figure(lambda f: f.error_rate, lambda x: f"{x:.4g}", "error rate"),
    "cost_per_request": Figure(lambda f: f.cost_per_request, _usd, "cost per request"),
    "cost_per_success": Figure(lambda f: f.cost_per_success, _usd, "cost per success"),
}
#: The figures shown with each type (after the judged one).
SHOWN = {
    "latency": ["latency_p50_ms", "latency_p95_ms", "latency_p99_ms"],
    "error_rate": ["error_rate"],
    "cost": ["cost_per_request", "cost_per_success"],
}


def _counts(kind: str, f: Figures) -> list[Row]:
    rows = [Row("requests", f.requests)]
    if kind == "error_rate":
        rows += [Row("server_errors", f.server_errors), Row("abandoned", f.abandoned)]
    if kind == "cost":
        rows += [
            Row("cost_usd", f.cost_usd),
            Row("priced", f.priced),
            Row("cost_coverage", f.cost_coverage),
            Row("feedback", f.feedback),
            Row("successes", f.successes),
        ]
    return rows


def judge_figures(kind: str, metric: str, threshold: float, key: Slice, f: Figures) -> Judged:
    """One slice (``key`` = (None, None): the whole window) of a ceiling-judged type."""
    figure = FIGURES[metric]
    value = figure.read(f)
    verdict = judge_value(value, threshold, Direction.CEILING, requests=f.requests)
    rows = [Row(metric, value, threshold, verdict)]
    rows += [Row(m, FIGURES[m].read(f)) for m in SHOWN[kind] if m != metric]
    rows += _counts(kind, f)
    return Judged(key[0], key[1], f.requests, rows, _finding(kind, metric, threshold, value, f))


def _finding(kind: str, metric: str, threshold: float, value: float | None, f: Figures) -> str:
    figure = FIGURES[metric]
    n = f"{number(f.requests)} requests"
    if kind == "error_rate":
        n = f"{number(f.server_errors)} server errors in {n}"
    if kind == "cost":
        coverage = f.cost_coverage
        share = "-" if coverage is None else f"{coverage:.0%}"
        n += f", {number(f.priced)} priced: coverage {share}"
        if metric == "cost_per_success":
            n += f", {number(f.successes)} successful outcomes"
    if f.requests <= 0:
        return f"{figure.name}: no requests"
    if value is None:
        why = "no priced request" if not f.priced else "no successful outcome"
        return f"{figure.name}: unknown, {why} ({n})"
    op = ">" if value > threshold else "<="
    return f"{figure.name} {figure.text(value)} {op} {figure.text(threshold)} ({n})"


def run(provider: MonitorProvider, spec: Monitor, prior: Prior, now: float) -> dict[str, Any]:
    """One run of a latency, error_rate or cost monitor (``providers.monitor.provider``)."""
    from inference.monitor_window import total, window_figures
    from inference.store import open_log
    from providers.monitor.provider import DEFAULT_WINDOW

    kind = spec.type
    try:
        metric = canonical_metric(kind, spec.metric)
    except ValueError as exc:
        return _error(str(exc))
    if spec.threshold is None:
        return _error(f"a {kind} monitor needs `threshold`")
    try:
        endpoint = provider._endpoint(str(spec.target))
        if not provider.context.log_url:
            return _error("no inference log is configured for this run")
        since = now - parse_duration(spec.window or DEFAULT_WINDOW)
        store = open_log(provider.context.log_url)
        try:
            window = window_figures(
                store, endpoint, since=since, until=now,
                environment=provider.context.environment, outcomes=kind == "cost",
            )  # fmt: skip
        finally:
            store.close()
    except Exception as exc:  # the log's driver, a missing endpoint: the run is an error
        return _error(f"cannot read the window: {type(exc).__name__}: {exc}")
    threshold = float(spec.threshold)
    parts = [
        judge_figures(kind, metric, threshold, key, f)
        for key, f in sorted(window.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1])))
    ]
    whole = (
        None
        if not window
        else parts[0]
        if len(parts) == 1
        else judge_figures(kind, metric, threshold, (None, None), total(window))
    )
    result = decide(whole, parts).as_dict()
    return {**result, "window": {"endpoint": endpoint, "since": since, "until": now}}


def _error(reason: str) -> dict[str, Any]:
    return {"state": "error", "reason": reason, "whole": None, "slices": [], "unjudged": []}
