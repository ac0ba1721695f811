"""Providers for tests: a slow one (to kill an apply half-way) and one that fails on demand.

Used through the ``python`` provider type: ``{type: python, factory:
"tests.support.fake_providers:SlowProvider", config: {delay: 0.5}}``.
"""

from __future__ import annotations

import time
from typing import Any

from providers.contract import Change, Context, Desired, Prior, ProviderError, Result
from providers.local.provider import LocalRegistryProvider


class SlowProvider(LocalRegistryProvider):
    """The local registry, sleeping ``delay`` seconds before each create/update."""

    def __init__(self, config: dict[str, Any], context: Context):
        super().__init__({"type": "local"}, context)
        self.delay = float(config.get("delay", 0.5))

    def create(self, desired: Desired) -> Result:
        time.sleep(self.delay)
        return super().create(desired)

    def update(self, prior: Prior, desired: Desired, change: Change) -> Result:
        time.sleep(self.delay)
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
