"""Providers for tests: a slow one (to kill an apply half-way) and one that fails on demand.

Used through the ``python`` provider type: ``{type: python, factory:
"tests.support.fake_providers:SlowProvider", config: {delay: 0.5}}``.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from contract import (
    Change,
    Context,
    Desired,
    Gate,
    Prior,
    Provider,
    ProviderError,
    Result,
)
from providers.local.provider import LocalRegistryProvider


class SlowProvider(LocalRegistryProvider):
    """The local registry, sleeping ``delay`` seconds in each create/update.

    With ``trace: FILE`` it appends ``{"name", "start", "end"}`` per call, so a
    test can see which calls overlapped without timing anything.
    """

    max_parallel = None  # it stands for a remote registry, whose calls wait on the network

    def __init__(self, config: dict[str, Any], context: Context):
        super().__init__({"type": "local"}, context)
        self.delay = float(config.get("delay", 0.5))
        self.trace = context.root / config["trace"] if config.get("trace") else None
        self._lock = threading.Lock()

    def _slow(self, name: str) -> None:
        start = time.monotonic()
        time.sleep(self.delay)
        if self.trace is not None:
            with self._lock, self.trace.open("a") as fh:
                fh.write(json.dumps({"name": name, "start": start, "end": time.monotonic()}) + "\n")

    def create(self, desired: Desired) -> Result:
        self._slow(desired.name)
        return super().create(desired)

    def update(self, prior: Prior, desired: Desired, change: Change) -> Result:
        self._slow(desired.name)
        return super().update(prior, desired, change)


class SerialSlowProvider(SlowProvider):
    """The slow registry, saying its calls gain nothing from running at once (as the local
    registry does): they run in a lane of one thread whatever ``--parallelism`` says."""

    max_parallel = 1


class InterruptingProvider(SlowProvider):
    """A slow registry that raises KeyboardInterrupt (as Ctrl-C would) while creating the
    resources named in ``interrupt``."""

    def __init__(self, config: dict[str, Any], context: Context):
        super().__init__(config, context)
        self.interrupt = set(config.get("interrupt") or [])

    def create(self, desired: Desired) -> Result:
        if desired.name in self.interrupt:
            raise KeyboardInterrupt
        return super().create(desired)


class FlakyProvider(LocalRegistryProvider):
    """The local registry, failing for the resources named in ``fail``."""

    def __init__(self, config: dict[str, Any], context: Context):
        super().__init__({"type": "local"}, context)
        self.fail = set(config.get("fail", []))

    def _check_fail(self, name: str) -> None:
        if name in self.fail:
            raise ProviderError(f"registry refused {name}: HTTP 503 Service Unavailable")

    def create(self, desired: Desired) -> Result:
        self._check_fail(desired.name)
        return super().create(desired)

    def update(self, prior: Prior, desired: Desired, change: Change) -> Result:
        self._check_fail(desired.name)
        return super().update(prior, desired, change)


class ScriptedGate(Provider, Gate):
    """A gate whose verdict is written in the candidate's artifact: ``score=0.93``.

    It passes when ``score >= min`` and, with ``max_drop``, when the score is at
    most ``max_drop`` below the version users get now (``peers.released``) —
    the semantics of a real gate's ``baseline: previous``, without a model. The
    spec's ``metrics.accuracy`` holds ``{min, max_drop}``. Each run appends a line
    to ``calls`` (a file under the spec dir), so tests can see whether it ran.
    An artifact holding ``interrupt`` raises KeyboardInterrupt mid-run (Ctrl-C); so does
    the first run with ``interrupt_once: FILE`` (it leaves FILE behind, so the next runs pass).
    """

    sections = frozenset({"evals"})

    def __init__(self, config: dict[str, Any], context: Context):
        super().__init__(config, context)
        self.calls = context.root / str(config.get("calls", "gate-calls.jsonl"))

    def plan_inputs(self) -> list[str] | None:
        return []

    def create(self, desired: Desired) -> Result:
        return self.evaluate(desired)

    def update(self, prior: Prior, desired: Desired, change: Change) -> Result:
        if not (change.behaviour or change.content):
            return Result(dict(prior.outputs), failed=not prior.outputs.get("passed"))
        return self.evaluate(desired)

    def delete(self, prior: Prior) -> None:
        return None

    @staticmethod
    def score_of(text: str) -> float:
        for part in text.split():
            if part.startswith("score="):
                return float(part.split("=", 1)[1])
        raise ProviderError(f"no score= in the artifact: {text[:40]!r}")

    def _score(self, address: str, outputs: Any) -> tuple[float, str]:
        import tempfile
        from pathlib import Path

        peers = self.context.peers
        assert peers is not None
        with tempfile.TemporaryDirectory() as tmp:
            path = peers.materialize(address, outputs, Path(tmp) / "artifact")
            text = path.read_text()
        return self.score_of(text), text

    def evaluate(self, desired: Desired) -> Result:
        subject = str(desired.spec["subject"])
        outputs = desired.inputs.get(subject)
        score, text = self._score(subject, outputs)
        once = self.config.get("interrupt_once")
        if "interrupt" in text or (once and not (self.context.root / once).exists()):
            if once:
                (self.context.root / once).write_text("interrupted once\n")
            raise KeyboardInterrupt  # as Ctrl-C (or a CI timeout) would, mid-gate
        bounds = (desired.spec.get("metrics") or {}).get("accuracy") or {}
        failures = []
        if bounds.get("min") is not None and score < float(bounds["min"]):
            failures.append(f"score {score} < min {bounds['min']}")
        released = (
            self.context.peers.released(subject, desired.address) if self.context.peers else None
        )
        baseline = None
        if released is not None and bounds.get("max_drop") is not None:
            baseline, _ = self._score(subject, released.outputs)
            if baseline - score > float(bounds["max_drop"]) + 1e-12:
                failures.append(
                    f"score {score} is {baseline - score:.4f} below the released {baseline} "
                    f"(max_drop {bounds['max_drop']})"
                )
        with self.calls.open("a") as fh:
            fh.write(
                json.dumps(
                    {
                        "gate": desired.address,
                        "version": (outputs or {}).get("version"),
                        "score": score,
                        "baseline": baseline,
                        "baseline_version": (released.outputs.get("version") if released else None),
                    }
                )
                + "\n"
            )
        passed = not failures
        message = "; ".join(failures) if failures else f"score {score} passed"
        return Result(
            {"passed": passed, "result": message, "evidence": {"score": score}, "report": message},
            failed=not passed,
            message=message,
        )
