"""Scheduled evals: a ``type: eval`` monitor re-runs its gate on the *released* version.

A run (``run``, registered in ``providers.monitor.provider.RUNNERS``):

1. **Which version.** The version users get now, as ``baseline: previous`` defines it
   (``Peers.released``): behind a rollout's alias or an endpoint's stable version; with no
   release, the last version this gate passed that no gate rejected; with neither, the
   subject's recorded version. The run records which version it evaluated and why
   (``window.version``, ``window.released_by``).
2. **What it was judged on.** The gate's latest *passed* verdict on exactly that version
   (``Peers.passed_verdict``, the release evidence) pins the dataset fingerprint and holds the
   scores recorded then. No passed verdict: ``error`` (nothing to compare with), never ``ok``.
3. **Run it again** through the gate's own provider (``Peers.gate(...).rerun``): the gate's
   metric code, on the pinned subject and dataset, an LLM gate calling its endpoint afresh.
   A gate that cannot run is ``error``, never ``ok``.
4. **Judge** (``judge_metric``): each gated score against the gate's ``min``/``max`` and
   against the released version's recorded score: a fall of more than the gate's
   ``max_drop`` is a breach (where the metric has none: the monitor's ``threshold``, else
   ``DEFAULT_MAX_DROP``, ``DEFAULT_PASS_RATE_DROP`` for an LLM pass rate). A breach of the
   gate's own checks on a slice counts too. Any breach: ``firing``.

Nothing is written: no registry call changes anything, no verdict is recorded as evidence
(a run is the monitor's event only), so it never fails or blocks an apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from contract import Desired, Peers, Prior, ProviderError, VersionRef
from specs.evals import LOWER_IS_BETTER, Eval, Threshold
from specs.monitors import Monitor

#: The fall from the released version's recorded score tolerated when the gate's metric has
#: no ``max_drop``, in the metric's own units (docs/decisions.md). A pass rate is coarser (one
#: case of twenty is 0.05), so it gets its own.
DEFAULT_MAX_DROP = 0.02
DEFAULT_PASS_RATE_DROP = 0.05
#: Float noise allowed before a difference counts (as the gate's own judge).
_EPS = 1e-12
OVERALL = "overall"


class State(StrEnum):
    OK = "ok"
    FIRING = "firing"
    ERROR = "error"


class ScoreVerdict(StrEnum):
    OK = "ok"
    BREACH = "breach"


@dataclass(frozen=True)
class MetricRow:
    """One gated score of a run: its value now, the released version's recorded score, the
    bounds it was judged against and, when it breached, why (one line per crossing)."""

    metric: str
    value: float | None
    recorded: float | None
    min: float | None
    max: float | None
    max_drop: float
    max_drop_default: bool
    findings: tuple[str, ...]

    @property
    def verdict(self) -> ScoreVerdict:
        return ScoreVerdict.BREACH if self.findings else ScoreVerdict.OK

    @property
    def threshold(self) -> float | None:
        """The bound that binds: the highest floor (or lowest ceiling for a loss) among
        ``min``/``max`` and the recorded score less (plus) ``max_drop``."""
        lower = self.metric in LOWER_IS_BETTER
        bounds = [self.max if lower else self.min]
        if self.recorded is not None:
            bounds.append(self.recorded + self.max_drop if lower else self.recorded - self.max_drop)
        known = [b for b in bounds if b is not None]
        if not known:
            return None
        return min(known) if lower else max(known)

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": self.value,
            "threshold": self.threshold,
            "verdict": str(self.verdict),
            "recorded": self.recorded,
            "min": self.min,
            "max": self.max,
            "max_drop": self.max_drop,
            "max_drop_default": self.max_drop_default,
        }


def judge_metric(
    metric: str,
    value: float | None,
    recorded: float | None,
    bounds: Threshold,
    default_drop: float = DEFAULT_MAX_DROP,
) -> MetricRow:
    """Judge one score of a re-run. Boundaries pass (a value equal to ``min``, a fall equal to
    ``max_drop``), as in the gate; an improvement never breaches; an undefined score breaches
    (the gate fails on it overall too)."""
    drop = bounds.max_drop if bounds.max_drop is not None else default_drop
    was = f" (released score {_fmt(recorded)})" if recorded is not None else ""
    findings: list[str] = []
    if value is None:
        findings.append(f"{metric} is undefined on the pinned data{was}")
    else:
        if bounds.min is not None and value < bounds.min - _EPS:
            findings.append(f"{metric} {_fmt(value)} < min {bounds.min:g}{was}")
        if bounds.max is not None and value > bounds.max + _EPS:
            findings.append(f"{metric} {_fmt(value)} > max {bounds.max:g}{was}")
        if recorded is not None:
            lower = metric in LOWER_IS_BETTER
            worse = value - recorded if lower else recorded - value
            if worse > drop + _EPS:
                moved = "rose" if lower else "fell"
                which = "max_drop" if bounds.max_drop is not None else "default max_drop"
                findings.append(
                    f"{metric} {_fmt(value)} {moved} {worse:.4g} from the released score "
                    f"{_fmt(recorded)} ({which} {drop:g})"
                )
    return MetricRow(
        metric, value, recorded, bounds.min, bounds.max, drop, bounds.max_drop is None,
        tuple(findings),
    )  # fmt: skip


def _fmt(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4g}"


# -- a run ------------------------------------------------------------------------------------
def run(provider: Any, spec: Monitor, prior: Prior | None, now: float) -> dict[str, Any]:
    """One run of ``spec`` (a ``type: eval`` monitor): the run shape of
    ``providers.monitor.provider``. Never raises for what a run can meet: ``error``."""
    peers: Peers | None = provider.context.peers
    gate = _address(str(spec.gate))
    if peers is None:
        return _error("scheduled evals need the engine's peers (run them through mlx)", {})
    try:
        return _run(peers, gate, spec.threshold)
    except _RunError as exc:
        return _error(str(exc), exc.window)
    except Exception as exc:  # a model's own error, a state database's: still a run, never ok
        return _error(f"cannot re-run {gate}: {type(exc).__name__}: {exc}", {"gate": gate})


class _RunError(Exception):
    def __init__(self, reason: str, window: Mapping[str, Any]):
        super().__init__(reason)
        self.window = dict(window)


@dataclass(frozen=True)
class _Pinned:
    """What a re-run judges: the released version and the data it was last passed on."""

    gate: str
    subject: str
    outputs: Mapping[str, Any]
    released_by: str
    verdict: Mapping[str, Any]

    @property
    def version(self) -> Any:
        return VersionRef.of(self.outputs).version

    @property
    def recorded(self) -> Mapping[str, Any]:
        """The evidence of the passed verdict: the scores the released version had."""
        return (self.verdict.get("outputs") or {}).get("evidence") or {}

    def window(self) -> dict[str, Any]:
        """What the run judged. An LLM gate's data is its cases file, as the pass recorded it."""
        dataset, fingerprint = self.verdict.get("dataset"), self.verdict.get("dataset_fingerprint")
        cases = self.recorded.get("cases_file") or {}
        if not dataset and cases:
            dataset, fingerprint = cases.get("path"), cases.get("fingerprint")
        return {
            "gate": self.gate,
            "subject": self.subject,
            "version": self.version,
            "fingerprint": self.outputs.get("fingerprint"),
            "released_by": self.released_by,
            "dataset": dataset,
            "dataset_fingerprint": fingerprint,
            "passed_at_serial": self.verdict.get("serial"),
        }

    def pins(self) -> dict[str, Mapping[str, Any]]:
        out: dict[str, Mapping[str, Any]] = {self.subject: dict(self.outputs)}
        dataset, fingerprint = self.verdict.get("dataset"), self.verdict.get("dataset_fingerprint")
        if dataset and fingerprint:
            revision = (self.recorded.get("dataset") or {}).get("revision")
            out[str(dataset)] = {"revision": revision, "fingerprint": fingerprint}
        return out


def _run(peers: Peers, gate: str, tolerance: float | None) -> dict[str, Any]:
    declared = peers.spec(gate)
    if declared is None:
        raise _RunError(f"{gate} is not declared in the spec", {"gate": gate})
    try:
        gate_spec = Eval.model_validate(declared)
    except ValidationError as exc:
        raise _RunError(f"{gate} is not a gate: {exc.errors()[0]['msg']}", {"gate": gate}) from None
    pinned = _pin(peers, gate, _address(gate_spec.subject))
    window = pinned.window()
    pins = pinned.pins()
    _section, name = gate.split(".", 1)
    desired = Desired(gate, "evals", name, declared, None, pins)
    try:
        result = peers.gate(gate).rerun(desired, pins)
    except ProviderError as exc:
        raise _RunError(f"cannot re-run {gate}: {exc}", window) from None
    evidence = dict(result.outputs.get("evidence") or {})
    _check_ran(gate, evidence, str(result.message or ""), pinned, window)
    rows, extra, rows_count = _judge(gate_spec, evidence, pinned.recorded, tolerance)
    findings = [f for r in rows for f in r.findings] + extra
    if gate_spec.is_llm and result.failed and not findings:
        findings.append(str(result.message))  # the gate failed on what no row names
    breach = bool(findings)
    metrics = [r.as_dict() for r in rows]
    piece = {
        "variant": None,
        "version": _text(pinned.version),
        "requests": rows_count,
        "breach": breach,
        "findings": findings,
        "metrics": metrics,
    }
    return {
        "state": str(State.FIRING if breach else State.OK),
        "reason": _reason(breach, findings, rows, pinned),
        "window": window,
        "whole": {**piece, "gate_passed": not result.failed, "gate_result": result.message},
        "slices": [piece],
    }


def _pin(peers: Peers, gate: str, subject: str) -> _Pinned:
    released = peers.released(subject, gate)
    if released is None:
        recorded = peers.recorded(subject)
        if recorded is None or not recorded.outputs.get("fingerprint"):
            raise _RunError(
                f"{subject} has no released or recorded version to re-run {gate} on",
                {"gate": gate, "subject": subject},
            )
        outputs: Mapping[str, Any] = dict(recorded.outputs)
        why = f"the recorded version of {subject} (nothing released)"
    else:
        outputs, why = dict(released.outputs), released.source
    fingerprint = str(outputs.get("fingerprint") or "")
    version = VersionRef.of(outputs).version
    base = {"gate": gate, "subject": subject, "version": version, "released_by": why}
    if not fingerprint:
        raise _RunError(f"the released version of {subject} has no fingerprint", base)
    verdict = peers.passed_verdict(gate, fingerprint)
    if verdict is None:
        raise _RunError(
            f"{gate} never passed {subject} version {version} ({_short(fingerprint)}), "
            f"the version users get now ({why}): there is no pinned dataset and no recorded "
            f"score to re-run it against",
            base,
        )
    return _Pinned(gate, subject, outputs, why, verdict)


def _check_ran(
    gate: str, evidence: Mapping[str, Any], message: str, pinned: _Pinned, window: Any
) -> None:
    """A re-run that could not run, or did not judge what was pinned, is an error."""
    if evidence.get("error"):
        raise _RunError(f"{gate} could not run: {evidence['error']}", window)
    if evidence.get("kind") != "llm":
        return
    if evidence.get("cases_errored"):
        raise _RunError(f"{gate} could not run: {message}", window)
    was, now = pinned.recorded, evidence
    prompt_then = (was.get("subject") or {}).get("prompt_fingerprint")
    prompt_now = (now.get("subject") or {}).get("prompt_fingerprint")
    if prompt_then and prompt_now != prompt_then:
        raise _RunError(
            f"the declared {pinned.subject} ({_short(prompt_now)}) is not the released version "
            f"{pinned.version} ({_short(prompt_then)}): a scheduled eval re-runs only the "
            "released prompt (apply, or let the rollout finish)",
            window,
        )
    cases_then = (was.get("cases_file") or {}).get("fingerprint")
    cases_now = (now.get("cases_file") or {}).get("fingerprint")
    if cases_then and cases_now != cases_then:
        raise _RunError(
            f"the cases of {gate} changed since it passed version {pinned.version} "
            f"({_short(cases_then)} -> {_short(cases_now)}): apply to judge the new cases",
            window,
        )


def _judge(
    spec: Eval, evidence: Mapping[str, Any], recorded: Mapping[str, Any], tolerance: float | None
) -> tuple[list[MetricRow], list[str], int | None]:
    """Rows per gated score, the gate's own slice findings, and how many rows or cases ran.
    ``tolerance``: the monitor's ``threshold``, the fall allowed where a metric has no
    ``max_drop``."""
    if spec.is_llm:
        bounds = Threshold(min=spec.pass_rate.min if spec.pass_rate else 1.0)
        row = judge_metric(
            "pass_rate",
            _float(evidence.get("pass_rate")),
            _float(recorded.get("pass_rate")),
            bounds,
            DEFAULT_PASS_RATE_DROP if tolerance is None else tolerance,
        )
        return [row], [], evidence.get("cases_total")
    now, then = evidence.get("metrics") or {}, recorded.get("metrics") or {}
    default = DEFAULT_MAX_DROP if tolerance is None else tolerance
    rows = [
        judge_metric(m, _float(now.get(m)), _float(then.get(m)), bounds, default)
        for m, bounds in spec.metrics.items()
    ]
    breached = {r.metric for r in rows if r.findings}
    extra = [
        reason
        for check in evidence.get("checks") or []
        if check.get("scope") != OVERALL or check.get("metric") not in breached
        for reason in check.get("reasons") or []
    ]
    return rows, extra, evidence.get("rows")


def _reason(breach: bool, findings: list[str], rows: list[MetricRow], pinned: _Pinned) -> str:
    on = f"{pinned.subject} version {pinned.version}, {pinned.released_by}"
    if breach:
        more = f" (+{len(findings) - 3} more)" if len(findings) > 3 else ""
        return f"{on}: " + "; ".join(findings[:3]) + more
    scores = ", ".join(f"{r.metric} {_fmt(r.value)}" for r in rows)
    return f"{on}: {scores or 'the gate passes'}, within the gate's thresholds"


def _error(reason: str, window: Mapping[str, Any]) -> dict[str, Any]:
    return {"state": str(State.ERROR), "reason": reason, "window": dict(window), "whole": None,
            "slices": []}  # fmt: skip


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _short(fingerprint: Any) -> str:
    text = str(fingerprint or "-")
    return text[:19] + "…" if len(text) > 20 else text


def _address(ref: str) -> str:
    text = ref.strip()
    return text[2:-1] if text.startswith("${") and text.endswith("}") else text
