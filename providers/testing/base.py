"""What every suite of the kit shares: the hooks a provider's tests implement, and helpers.

A suite drives a provider exactly as the engine does — ``check``, then
``fingerprint``, then ``create``/``update``/``delete``, recording outputs the
way the state would — through the public contract only.

Hooks (every suite)::

    section = "models"                       # the section of the specs below
    version_key = "version"                  # output naming a version (None: no versions)

    def make_provider(self, tmp_path): ...   # use self.context(tmp_path) for the Context
    def desired(self, tmp_path, variant): ...

Variants ``desired`` must answer:

* ``"v1"`` — a valid spec;
* ``"v2"`` — a behaviour change of v1. A provider that fingerprints content
  gives it different content (best: the same spec, the files rewritten);
* ``"meta"`` — v1 with only metadata changed (description, labels, owner);
* ``"bad"`` — a spec ``check()`` must reject;
* ``"replace"`` — only when ``replace_fields`` is set: v1 with those fields changed;
* ``"v3"`` — registries only: content different from v1 and v2.

``desired`` may write files (or objects) to produce the variant's content; the
suites call it right before they use the result.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest

from contract import Change, Context, Desired, Prior, Provider, ProviderError, Result
from providers.testing.peers import FakePeers

BEHAVIOUR = Change(behaviour=True, content=True)
METADATA = Change(metadata=True)


class Conformance:
    #: The section the desired specs belong to.
    section: ClassVar[str] = "models"
    #: Output that identifies a version (``None`` for objects without versions).
    version_key: ClassVar[str | None] = "version"

    #: The engine's stand-in for this test (``FakePeers``); also in ``self.context()``.
    peers: FakePeers

    # -- hooks -----------------------------------------------------------------------------
    def make_provider(self, tmp_path: Path) -> Provider:
        raise NotImplementedError("the suite needs make_provider(tmp_path)")

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        raise NotImplementedError("the suite needs desired(tmp_path, variant)")

    # -- fixtures --------------------------------------------------------------------------
    @pytest.fixture(autouse=True)
    def _kit_peers(self, tmp_path: Path) -> FakePeers:
        self.peers = FakePeers(tmp_path)
        return self.peers

    @pytest.fixture
    def provider(self, tmp_path: Path, _kit_peers: FakePeers) -> Iterator[Provider]:
        made = self.make_provider(tmp_path)
        yield made
        made.close()

    def context(self, tmp_path: Path) -> Context:
        """The Context a provider under test gets: ``tmp_path`` as the spec dir, the fake peers."""
        return Context(root=tmp_path, data_dir=tmp_path / ".mlx", peers=self.peers)

    # -- driving the provider the way the engine does --------------------------------------
    def planned(self, provider: Provider, tmp_path: Path, variant: str) -> Desired:
        """``desired(variant)`` after ``check`` (which must pass) and ``fingerprint``."""
        desired = self.desired(tmp_path, variant)
        problems = provider.check(desired)
        assert problems == [], f"check() rejected the valid variant {variant!r}: {problems}"
        self.peers.declare(desired.address, desired.spec)
        return replace(desired, fingerprint=provider.fingerprint(desired))

    def create(self, provider: Provider, tmp_path: Path, variant: str = "v1") -> Prior:
        desired = self.planned(provider, tmp_path, variant)
        return self.recorded(desired, self.ok(provider.create(desired), "create", variant))

    def update(
        self, provider: Provider, prior: Prior, tmp_path: Path, variant: str, change: Change
    ) -> Prior:
        desired = self.planned(provider, tmp_path, variant)
        result = provider.update(prior, desired, change)
        return self.recorded(desired, self.ok(result, "update", variant))

    @staticmethod
    def ok(result: Result, what: str, variant: str) -> Result:
        assert isinstance(result, Result), f"{what}() must return a Result, not {result!r}"
        assert not result.failed, f"{what}() of {variant!r} failed: {result.message}"
        return result

    def recorded(self, desired: Desired, result: Result) -> Prior:
        """What the engine records after applying ``desired`` with this ``result``."""
        prior = Prior(
            desired.address,
            desired.section,
            desired.name,
            dict(desired.spec),
            dict(result.outputs),
            desired.fingerprint,
        )
        self.peers.record(prior)
        return prior

    def version(self, prior: Prior | dict[str, Any] | None) -> Any:
        outputs = prior.outputs if isinstance(prior, Prior) else (prior or {})
        return outputs.get(self.version_key) if self.version_key else None

    @staticmethod
    def drift(provider: Provider, prior: Prior) -> list[str]:
        """What ``read()`` reports against the record: ``["gone"]`` when the object is."""
        observed = provider.read(prior)
        if observed is None:
            return ["gone"]
        return observed.differences(prior.outputs, prior.fingerprint)

    @staticmethod
    def one_line(exc: ProviderError) -> str:
        text = str(exc)
        assert text.strip(), "a ProviderError needs a message"
        assert "\n" not in text, f"a ProviderError must be one line, got:\n{text}"
        assert "Traceback" not in text
        return text
