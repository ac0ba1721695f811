"""Judging one figure against a threshold, per slice and for the window as a whole: the pure
decisions of the latency, error-rate, cost and performance monitors.

A threshold is a **ceiling** (latency, error rate, cost: breach when the value is above it) or
a **floor** (performance: breach when below). A slice whose figure could not be computed —
no request (``no_data``), or requests but no figure (no priced row, no successful outcome,
fewer labels than ``min_labels``: ``insufficient_data``) — is never ``ok``.

The monitor's state (SPEC.md's fixed states):

* ``no_data`` — the window has no request (only abandoned ones, or none);
* ``firing`` — the whole window or any judged slice breaches (when only the whole does, it is
  added to the slices as one without variant and version, so that an alert fires for it);
* ``insufficient_data`` — nothing could be judged: neither the whole nor any slice;
* ``ok`` — otherwise; slices that could not be judged are named in the reason.

A run keeps the judged slices in ``slices`` and the others in ``unjudged``: the alert lifecycle
(``engine.monitors.run``) observes every slice in ``slices`` as ok or breach for its version,
and a version whose figure is unknown must not be observed as ok (that would resolve its alert
on missing data).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Direction(StrEnum):
    CEILING = "ceiling"  # breach above the threshold
    FLOOR = "floor"  # breach below it


class Verdict(StrEnum):
    OK = "ok"
    BREACH = "breach"
    INSUFFICIENT_DATA = "insufficient_data"
    NO_DATA = "no_data"


class State(StrEnum):
    OK = "ok"
    FIRING = "firing"
    NO_DATA = "no_data"
    INSUFFICIENT_DATA = "insufficient_data"


def judge_value(
    value: float | None, threshold: float, direction: Direction, *, requests: int
) -> Verdict:
    """One figure against its threshold (equal to it is within)."""
    if requests <= 0:
        return Verdict.NO_DATA
    if value is None:
        return Verdict.INSUFFICIENT_DATA
    if direction is Direction.CEILING:
        return Verdict.BREACH if value > threshold else Verdict.OK
    return Verdict.BREACH if value < threshold else Verdict.OK


@dataclass(frozen=True)
class Row:
    """One figure of a slice: ``threshold``/``verdict`` set on the judged one only."""

    metric: str
    value: float | None
    threshold: float | None = None
    verdict: Verdict | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": self.value,
            "threshold": self.threshold,
            "verdict": None if self.verdict is None else self.verdict.value,
        }


@dataclass(frozen=True)
class Judged:
    """A slice (or the whole window) judged: ``rows[0]`` is the judged figure."""

    variant: str | None
    version: str | None
    requests: int
    rows: list[Row]
    finding: str  # one line: the judged figure, the threshold, the counts behind it
    segment: str | None = None  # performance slices by an input column: "country=fr"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> Verdict:
        v = self.rows[0].verdict
        assert v is not None
        return v

    @property
    def label(self) -> str:
        at = f"variant {self.variant} version {self.version}" if self.variant else "the window"
        return f"{at} {self.segment}" if self.segment else at

    def as_dict(self) -> dict[str, Any]:
        breach = self.verdict is Verdict.BREACH
        return {
            "variant": self.variant,
            "version": self.version,
            "segment": self.segment,
            "requests": self.requests,
            "verdict": self.verdict.value,
            "breach": breach,
            "findings": [self.finding] if breach else [],
            "summary": self.finding,
            "metrics": [r.as_dict() for r in self.rows],
            **self.extra,
        }


@dataclass(frozen=True)
class Run:
    state: State
    reason: str
    whole: Judged | None
    slices: list[Judged]
    unjudged: list[Judged]

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "reason": self.reason,
            "whole": None if self.whole is None else self.whole.as_dict(),
            "slices": [s.as_dict() for s in self.slices],
            "unjudged": [s.as_dict() for s in self.unjudged],
            "drifted_slices": [list(k) for k in self.breached_versions],
        }

    @property
    def breached_versions(self) -> list[tuple[str | None, str | None]]:
        """Each (variant, version) with a breached slice (or segment), once, in order."""
        out: list[tuple[str | None, str | None]] = []
        for s in self.slices:
            if s.verdict is Verdict.BREACH and (s.variant, s.version) not in out:
                out.append((s.variant, s.version))
        return out


def decide(whole: Judged | None, parts: Sequence[Judged]) -> Run:
    """The run's state from the whole window and its slices (see the module's doc)."""
    judged = [p for p in parts if p.verdict in (Verdict.OK, Verdict.BREACH)]
    unjudged = [p for p in parts if p not in judged]
    if whole is None or whole.verdict is Verdict.NO_DATA:
        return Run(State.NO_DATA, "no requests in the window", whole, judged, unjudged)
    breached = [p for p in [whole, *judged] if p.verdict is Verdict.BREACH]
    if breached:
        if breached == [whole] and whole not in parts:
            # only the whole breaches (slices not judged, or a shadow's spend without
            # successes): the whole is a slice without a version, so it alerts on its own key
            judged = [*judged, whole]
        return Run(State.FIRING, breached[0].finding, whole, judged, unjudged)
    if whole.verdict is Verdict.INSUFFICIENT_DATA and not judged:
        return Run(State.INSUFFICIENT_DATA, whole.finding, whole, judged, unjudged)
    reason = whole.finding
    if unjudged:
        named = ", ".join(p.label for p in unjudged)
        reason += f"; not judged (too little data): {named}"
    return Run(State.OK, reason, whole, judged, unjudged)


def number(x: float) -> str:
    """A figure as findings print it: whole from 1,000 on (thousands separated), else 4
    significant digits."""
    if abs(x) >= 1000 or x == int(x):
        return f"{x:,.0f}"
    return f"{x:.4g}"
