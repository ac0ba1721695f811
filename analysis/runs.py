"""Analysis runs over time, as Argo Rollouts counts them.

Each *run* is one look at the metrics (one interval's window): its verdict is any FAIL
→ FAIL, else any INCONCLUSIVE → INCONCLUSIVE, else PASS (:func:`run_verdict`). A run
that could not be taken at all (the inference log was unreachable, the query failed) is
an *error*. The rollout keeps a :class:`Tally` of its runs, stored as JSON in state
after every look, and :func:`decide` turns it into the next action:

* failed runs > ``failure_limit`` (default 0) → ABORT;
* consecutive errors > ``consecutive_error_limit`` (default 4) → ABORT; a run that is
  taken (whatever its verdict) resets the streak, as in Argo;
* inconclusive runs > ``inconclusive_limit`` (default 0) → PAUSE (a person decides);
* otherwise CONTINUE.

ABORT wins over PAUSE. After a person resumes a paused rollout, start a fresh
``Tally()`` (Argo starts a new AnalysisRun).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from enum import StrEnum
from typing import Any

from analysis.base import AnalysisError, Measurement, Verdict, check_count, combine


class Action(StrEnum):
    CONTINUE = "continue"
    PAUSE = "pause"
    ABORT = "abort"


def run_verdict(measurements: Iterable[Measurement | Verdict]) -> Verdict:
    """One run's verdict from its measurements.

    A run with no measurements is INCONCLUSIVE: nothing was judged, and no data is not a
    pass.
    """
    verdicts = [m.verdict if isinstance(m, Measurement) else m for m in measurements]
    if not verdicts:
        return Verdict.INCONCLUSIVE
    return combine(verdicts)


@dataclass(frozen=True)
class Limits:
    """Argo Rollouts' ``failureLimit``, ``inconclusiveLimit``, ``consecutiveErrorLimit``."""

    failure_limit: int = 0
    inconclusive_limit: int = 0
    consecutive_error_limit: int = 4

    def __post_init__(self) -> None:
        for f in fields(self):
            check_count(getattr(self, f.name), f.name)

    @classmethod
    def of(cls, analysis: object) -> Limits:
        """The limits an analysis block sets (``specs.rollouts.Analysis`` sets only
        ``failure_limit``); the others keep Argo's defaults."""
        given = {
            f.name: getattr(analysis, f.name) for f in fields(cls) if hasattr(analysis, f.name)
        }
        return cls(**{k: v for k, v in given.items() if v is not None})


@dataclass(frozen=True)
class Tally:
    """How a rollout's analysis runs went so far. Immutable: :meth:`record` returns a new one."""

    passed: int = 0
    failed: int = 0
    inconclusive: int = 0
    errors: int = 0
    consecutive_errors: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            check_count(getattr(self, f.name), f"tally.{f.name}")
        if self.consecutive_errors > self.errors:
            raise AnalysisError(
                f"tally.consecutive_errors ({self.consecutive_errors}) exceeds "
                f"tally.errors ({self.errors})"
            )

    @property
    def runs(self) -> int:
        return self.passed + self.failed + self.inconclusive + self.errors

    def record(self, verdict: Verdict) -> Tally:
        """Count a run that was taken; it ends any streak of errors."""
        counts = {
            Verdict.PASS: {"passed": self.passed + 1},
            Verdict.FAIL: {"failed": self.failed + 1},
            Verdict.INCONCLUSIVE: {"inconclusive": self.inconclusive + 1},
        }
        if not isinstance(verdict, Verdict):
            raise AnalysisError(f"a run's verdict must be a Verdict, got {verdict!r}")
        return replace(self, consecutive_errors=0, **counts[verdict])

    def record_error(self) -> Tally:
        """Count a run that could not be taken at all."""
        return replace(self, errors=self.errors + 1, consecutive_errors=self.consecutive_errors + 1)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "tally") -> Tally:
        """Resume from :meth:`to_dict`'s output; every key must be there, and no other."""
        if not isinstance(data, Mapping):
            raise AnalysisError(f"{where} must be a JSON object, got {type(data).__name__}")
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(names))
        missing = [n for n in names if n not in data]
        if unknown or missing:
            parts = [f"unknown key(s) {', '.join(unknown)}"] if unknown else []
            parts += [f"missing key(s) {', '.join(missing)}"] if missing else []
            raise AnalysisError(f"{where}: {'; '.join(parts)}")
        try:
            return cls(**{n: data[n] for n in names})
        except AnalysisError as exc:
            raise AnalysisError(f"{where}: {exc}") from None

    @classmethod
    def from_json(cls, text: str, where: str = "tally") -> Tally:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise AnalysisError(f"{where} is not valid JSON: {exc}") from None
        return cls.from_dict(data, where)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str


def decide(tally: Tally, limits: Limits | None = None) -> Decision:
    """What the rollout does next given its runs so far."""
    limits = limits or Limits()
    if tally.failed > limits.failure_limit:
        return Decision(
            Action.ABORT,
            f"{tally.failed} failed run(s), more than failure_limit {limits.failure_limit}",
        )
    if tally.consecutive_errors > limits.consecutive_error_limit:
        return Decision(
            Action.ABORT,
            f"{tally.consecutive_errors} consecutive runs could not be measured, more than "
            f"consecutive_error_limit {limits.consecutive_error_limit}",
        )
    if tally.inconclusive > limits.inconclusive_limit:
        return Decision(
            Action.PAUSE,
            f"{tally.inconclusive} inconclusive run(s), more than inconclusive_limit "
            f"{limits.inconclusive_limit}: waiting for a person",
        )
    return Decision(Action.CONTINUE, f"{tally.runs} run(s) within limits")
