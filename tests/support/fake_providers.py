"""Providers for tests: a slow one (to kill an apply half-way) and one that fails on demand.

Used through the ``python`` provider type: ``{type: python, factory:
"tests.support.fake_providers:SlowProvider", config: {delay: 0.5}}``.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from providers.contract import Change, Context, Desired, Prior, ProviderError, Result
from providers.local.provider import LocalRegistryProvider


class SlowProvider(LocalRegistryProvider):
    """The local registry, sleeping ``delay`` seconds in each create/update.

    With ``trace: FILE`` it appends ``{"name", "start", "end"}`` per call, so a
    test can see which calls overlapped without timing anything.
    """

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
