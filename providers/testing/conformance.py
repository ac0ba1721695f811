"""A conformance suite every provider's tests run (dbt's adapter suites, OpenTofu's TestFull).

Subclass ``ProviderConformance`` in a test module, implement the four hooks,
and pytest collects the inherited tests::

    class TestMyProvider(ProviderConformance):
        section = "models"

        def make_provider(self, tmp_path): ...
        def desired(self, tmp_path, variant): ...   # "v1", "v2" (behaviour), "meta"
        def tamper(self, provider, prior): ...      # change it behind mlx's back

The suite checks create / read / no-op / behaviour update / metadata-only
update / delete / drift detection and repair, through the public contract
only — exactly what the engine will do with the provider.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from providers.contract import Change, Desired, Prior, Provider, Result


class ProviderConformance:
    #: The section the desired specs belong to.
    section: str = "models"
    #: Output that identifies a version (None for objects without versions).
    version_key: str | None = "version"

    # -- hooks a provider's tests implement ------------------------------------------------
    def make_provider(self, tmp_path: Path) -> Provider:
        raise NotImplementedError

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        """``v1``; ``v2``: a behaviour change of v1; ``meta``: v1 with only metadata changed."""
        raise NotImplementedError

    def tamper(self, provider: Provider, prior: Prior) -> None:
        """Change the object behind mlx's back (move an alias, edit a config, delete a version)."""
        raise NotImplementedError

    # -- helpers ---------------------------------------------------------------------------
    @pytest.fixture
    def provider(self, tmp_path: Path) -> Any:
        p = self.make_provider(tmp_path)
        yield p
        p.close()

    def _with_fingerprint(self, provider: Provider, desired: Desired) -> Desired:
        from dataclasses import replace

        return replace(desired, fingerprint=provider.fingerprint(desired))

    def _create(self, provider: Provider, tmp_path: Path, variant: str = "v1") -> Prior:
        desired = self._with_fingerprint(provider, self.desired(tmp_path, variant))
        assert provider.check(desired) == [], "check() reported problems for a valid spec"
        result = provider.create(desired)
        assert isinstance(result, Result)
        assert not result.failed
        return _recorded(desired, result)

    # -- the suite -------------------------------------------------------------------------
    def test_create_then_read_matches(self, provider: Provider, tmp_path: Path) -> None:
        prior = self._create(provider, tmp_path)
        observed = provider.read(prior)
        assert observed is not None, "read() found nothing right after create()"
        assert observed.differences(prior.outputs, prior.fingerprint) == []

    def test_fingerprint_is_stable(self, provider: Provider, tmp_path: Path) -> None:
        a = provider.fingerprint(self.desired(tmp_path, "v1"))
        b = provider.fingerprint(self.desired(tmp_path, "v1"))
        assert a == b

    def test_noop_update_keeps_version(self, provider: Provider, tmp_path: Path) -> None:
        prior = self._create(provider, tmp_path)
        desired = self._with_fingerprint(provider, self.desired(tmp_path, "v1"))
        result = provider.update(prior, desired, Change())
        if self.version_key:
            assert result.outputs.get(self.version_key) == prior.outputs.get(self.version_key)

    def test_behaviour_update_makes_new_version(self, provider: Provider, tmp_path: Path) -> None:
        prior = self._create(provider, tmp_path)
        desired = self._with_fingerprint(provider, self.desired(tmp_path, "v2"))
        result = provider.update(prior, desired, Change(behaviour=True, content=True))
        assert not result.failed
        if self.version_key:
            assert result.outputs.get(self.version_key) != prior.outputs.get(self.version_key)
        after = _recorded(desired, result)
        observed = provider.read(after)
        assert observed is not None
        assert observed.differences(after.outputs, after.fingerprint) == []

    def test_metadata_update_keeps_version(self, provider: Provider, tmp_path: Path) -> None:
        prior = self._create(provider, tmp_path)
        desired = self._with_fingerprint(provider, self.desired(tmp_path, "meta"))
        result = provider.update(prior, desired, Change(metadata=True))
        assert not result.failed
        if self.version_key:
            assert result.outputs.get(self.version_key) == prior.outputs.get(self.version_key)

    def test_delete_then_read_is_none(self, provider: Provider, tmp_path: Path) -> None:
        prior = self._create(provider, tmp_path)
        provider.delete(prior)
        assert provider.read(prior) is None

    def test_drift_is_detected_and_repaired(self, provider: Provider, tmp_path: Path) -> None:
        prior = self._create(provider, tmp_path)
        self.tamper(provider, prior)
        observed = provider.read(prior)
        drift = (
            ["gone"] if observed is None else observed.differences(prior.outputs, prior.fingerprint)
        )
        assert drift, "a change made behind mlx's back was not visible through read()"
        desired = self._with_fingerprint(provider, self.desired(tmp_path, "v1"))
        if observed is None:
            result = provider.create(desired)
        else:
            result = provider.update(prior, desired, Change(behaviour=True, content=True))
        repaired = _recorded(desired, result)
        again = provider.read(repaired)
        assert again is not None
        assert again.differences(repaired.outputs, repaired.fingerprint) == []


def _recorded(desired: Desired, result: Result) -> Prior:
    """What the engine would record after applying ``desired`` with this ``result``."""
    return Prior(
        desired.address,
        desired.section,
        desired.name,
        dict(desired.spec),
        dict(result.outputs),
        desired.fingerprint,
    )
