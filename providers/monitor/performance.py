"""The ``performance`` monitor: delayed labels that arrive through feedback, judged against a
floor per (variant, version), per segment of an input column (``slices: {by: [column]}``) and
for the window as a whole, with the label coverage shown.

``metric`` (default ``accuracy``):

* ``accuracy`` — the logged prediction equals the feedback's ``label``. The prediction is read
  from the logged answer (``{"predictions": [...]}`` or a bare list). A one-row request is one
  labelled row: its one prediction against a scalar label. A multi-row request is labelled per
  row when the label is a list as long as its predictions (row i against label i); any other
  shape (a scalar label for several predictions, lengths that differ, an answer that was not
  sampled) cannot be compared and is counted as ``unmatched``, never as wrong. Values compare
  as JSON values (``1 == 1.0 == true``; ``"1"`` is not ``1``).
* ``success_rate`` — requests whose newest feedback scores > 0, per request with a score
  (``inference.records.score_of``; a feedback without a numeric score is left out).
* ``mean_score`` — the mean score of those requests.

Labelled units: rows compared (accuracy) or requests scored (the other two). Below
``min_labels`` (default 1) a slice is ``insufficient_data``: never ok, never breached; the whole
window below it makes the monitor ``insufficient_data``. A segment is judged from
``max(min_labels, slices.min_rows)`` labelled units on (smaller ones are reported, not judged,
as ``evals`` slices are), against ``slices.metrics[metric].min`` when given, else
``threshold``. ``label_coverage`` = labelled requests / requests (abandoned requests left
out). Shadow copies are not judged: feedback is the caller's answer's.

Segments read the column from the logged ``inputs``, which only sampled requests keep
(``log.payloads``): ``segment_coverage`` says how many labelled requests had their inputs.
A multi-row request judged per request (success_rate, mean_score) is in a segment only when
all its rows agree on the column.

The labelled requests are a small set (a fraction of traffic gets labels): they are fetched
into Python (``inference.monitor_window.labelled``); the request counts come from the log's
``GROUP BY`` like the other metric monitors'.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from common.durations import parse_duration
from contract import Prior
from providers.monitor.metric_judge import Direction, Judged, Row, decide, judge_value, number
from providers.monitor.payload_rows import input_rows, predictions
from specs.monitors import METRIC_CHOICES, Monitor

if TYPE_CHECKING:
    from inference.monitor_window import Labelled
    from providers.monitor.provider import MonitorProvider

ACCURACY, SUCCESS_RATE, MEAN_SCORE = METRIC_CHOICES["performance"]


@dataclass(frozen=True)
class Unit:
    """One labelled unit: a compared row (accuracy) or a scored request."""

    request_id: str
    variant: str
    version: str | None
    value: float  # 1.0 / 0.0 for correct / success; the score for mean_score
    segment: dict[str, str] = field(default_factory=dict)  # by-column -> value as text


def _text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def units_of(x: Labelled, metric: str, by: Sequence[str]) -> tuple[list[Unit], bool, bool]:
    """The labelled units of one request; whether it had feedback this metric cannot use
    (``unmatched``); whether its inputs were read (for segments)."""
    rows = input_rows(x.inputs) if by else None

    def seg(i: int | None) -> dict[str, str]:
        if not rows:
            return {}
        picked = rows if i is None else [rows[i]] if i < len(rows) else []
        out = {}
        for col in by:
            values = {_text(r[col]) for r in picked if col in r}
            if len(values) == 1 and all(col in r for r in picked):
                out[col] = values.pop()
        return out

    if metric != ACCURACY:
        if x.score is None:
            return [], True, rows is not None
        value = x.score if metric == MEAN_SCORE else float(x.score > 0)
        return [Unit(x.request_id, x.variant, x.version, value, seg(None))], False, rows is not None
    preds = predictions(x.outputs)
    if x.label is None or preds is None or not preds:
        return [], True, rows is not None
    if isinstance(x.label, list):
        if len(x.label) != len(preds):
            return [], True, rows is not None
        pairs = list(zip(preds, x.label, strict=True))
    elif len(preds) == 1:
        pairs = [(preds[0], x.label)]
    else:
        return [], True, rows is not None
    same_rows = rows is not None and len(rows) == len(pairs)
    units = [
        Unit(x.request_id, x.variant, x.version, float(_same(p, lab)),
             seg(i) if same_rows else {})
        for i, (p, lab) in enumerate(pairs)
    ]  # fmt: skip
    return units, False, rows is not None


def _same(prediction: Any, label: Any) -> bool:
    if isinstance(prediction, dict | list) or isinstance(label, dict | list):
        return bool(prediction == label)
    return bool(prediction == label) and isinstance(prediction, str) == isinstance(label, str)


@dataclass(frozen=True)
class Group:
    """The labelled units of one slice (or segment, or the whole window) and its requests."""

    requests: int  # None-free: 0 for a segment (its requests are not counted in the log)
    units: list[Unit]
    unmatched: int = 0
    inputs_read: int = 0  # labelled requests whose inputs were kept (segments)
    with_feedback: int = 0  # requests with feedback

    @property
    def labelled(self) -> int:
        return len(self.units)

    @property
    def labelled_requests(self) -> int:
        return len({u.request_id for u in self.units})

    @property
    def coverage(self) -> float | None:
        return self.labelled_requests / self.requests if self.requests else None

    def value(self) -> float | None:
        return sum(u.value for u in self.units) / len(self.units) if self.units else None


def judge_group(
    metric: str,
    threshold: float,
    min_labels: int,
    key: tuple[str | None, str | None],
    g: Group,
    *,
    segment: str | None = None,
) -> Judged:
    """One slice against the floor: insufficient below ``min_labels`` labelled units."""
    value = g.value() if g.labelled >= min_labels else None
    # a segment's requests are unknown: it has data when it has labels
    requests = g.labelled if segment is not None else g.requests
    verdict = judge_value(value, threshold, Direction.FLOOR, requests=requests)
    rows = [
        Row(metric, value, threshold, verdict),
        Row("labelled", g.labelled),
        Row("label_coverage", g.coverage),
        Row("requests", g.requests if segment is None else None),
        Row("feedback", g.with_feedback if segment is None else None),
        Row("unmatched", g.unmatched if segment is None else None),
    ]
    if segment is None:
        n = f"{number(g.labelled)} labelled of {number(g.requests)} requests: coverage " + (
            "-" if g.coverage is None else f"{g.coverage:.0%}"
        )
    else:
        n = f"{number(g.labelled)} labelled"
    name = metric.replace("_", " ")
    if segment is not None:
        name = f"{segment}: {name}"
    if requests <= 0:
        finding = f"{name}: no requests"
    elif value is None:
        finding = f"{name}: {number(g.labelled)} labels < min_labels {min_labels} ({n})"
    else:
        op = "<" if value < threshold else ">="
        finding = f"{name} {value:.4g} {op} {threshold:.4g} ({n})"
    return Judged(key[0], key[1], requests, rows, finding, segment=segment)


def judge_window(
    requests: dict[tuple[str, str | None], int],
    labelled: Iterable[Labelled],
    *,
    metric: str,
    threshold: float,
    min_labels: int,
    by: Sequence[str] = (),
    min_rows: int = 1,
    segment_threshold: float | None = None,
) -> dict[str, Any]:
    """The run (``metric_judge.decide``) from each version's requests and the labelled ones."""
    per: dict[tuple[str, str | None], list[Unit]] = {k: [] for k in requests}
    unmatched: dict[tuple[str, str | None], int] = dict.fromkeys(requests, 0)
    fed: dict[tuple[str, str | None], int] = dict.fromkeys(requests, 0)
    read = total_labelled = 0
    for x in labelled:
        key = (x.variant, x.version)
        units, unusable, had_inputs = units_of(x, metric, by)
        per.setdefault(key, []).extend(units)
        unmatched[key] = unmatched.get(key, 0) + int(unusable)
        fed[key] = fed.get(key, 0) + 1
        if units:
            total_labelled += 1
            read += int(had_inputs)
    groups = {
        k: Group(requests.get(k, 0), per[k], unmatched.get(k, 0), 0, fed.get(k, 0)) for k in per
    }
    parts = [
        judge_group(metric, threshold, min_labels, k, g)
        for k, g in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1])))
    ]
    seg_floor = threshold if segment_threshold is None else segment_threshold
    seg_min = max(min_labels, min_rows)
    for k, g in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]))):
        for col in by:
            values = sorted({u.segment[col] for u in g.units if col in u.segment})
            for v in values:
                units = [u for u in g.units if u.segment.get(col) == v]
                parts.append(
                    judge_group(metric, seg_floor, seg_min, k, Group(0, units),
                                segment=f"{col}={v}")
                )  # fmt: skip
    whole_group = Group(
        sum(requests.values()),
        [u for g in groups.values() for u in g.units],
        sum(unmatched.values()),
        read,
        sum(fed.values()),
    )
    whole = None
    if groups:
        whole = judge_group(metric, threshold, min_labels, (None, None), whole_group)
        if len(groups) == 1:
            whole = parts[0]
    run = decide(whole, parts).as_dict()
    if by:
        run["segments"] = {
            "by": list(by),
            "inputs_read": read,
            "labelled_requests": total_labelled,
            "segment_coverage": read / total_labelled if total_labelled else None,
            "note": "segments read the logged inputs: only sampled requests carry them",
        }
    return run


def run(provider: MonitorProvider, spec: Monitor, prior: Prior, now: float) -> dict[str, Any]:
    """One run of a performance monitor (``providers.monitor.provider``)."""
    from inference.monitor_window import labelled, window_figures
    from inference.records import SHADOW
    from inference.store import open_log
    from providers.monitor.provider import DEFAULT_WINDOW

    metric = spec.metric or ACCURACY
    if metric not in METRIC_CHOICES["performance"] or spec.threshold is None:
        return _error(f"a performance monitor needs `threshold` and a metric of "
                      f"{', '.join(METRIC_CHOICES['performance'])}")  # fmt: skip
    try:
        endpoint = provider._endpoint(str(spec.target))
        if not provider.context.log_url:
            return _error("no inference log is configured for this run")
        since = now - parse_duration(spec.window or DEFAULT_WINDOW)
        env = provider.context.environment
        store = open_log(provider.context.log_url)
        try:
            figures = window_figures(
                store, endpoint, since=since, until=now, environment=env, outcomes=False
            )
            rows = labelled(store, endpoint, since=since, until=now, environment=env)
        finally:
            store.close()
    except Exception as exc:  # the log's driver, a missing endpoint: the run is an error
        return _error(f"cannot read the window: {type(exc).__name__}: {exc}")
    requests = {
        (str(v), ver): f.requests for (v, ver), f in figures.items() if v != SHADOW and f.requests
    }
    slices = spec.slices
    seg_threshold = None
    if slices is not None and slices.metrics and metric in slices.metrics:
        seg_threshold = slices.metrics[metric].min
    result = judge_window(
        requests,
        rows,
        metric=metric,
        threshold=float(spec.threshold),
        min_labels=spec.min_labels or 1,
        by=list(slices.by) if slices is not None else [],
        min_rows=slices.min_rows if slices is not None else 1,
        segment_threshold=seg_threshold,
    )
    return {**result, "window": {"endpoint": endpoint, "since": since, "until": now}}


def _error(reason: str) -> dict[str, Any]:
    return {"state": "error", "reason": reason, "whole": None, "slices": [], "unjudged": []}
