"""The Registry suite: versions are content-addressed, kept forever, and survive failures.

For providers with the ``Registry`` capability (models, prompts, datasets). On
top of the CRUD hooks (and a ``"v3"`` variant with content of its own), a suite
implements::

    def stored_fingerprints(self, provider, desired):
        '''The fingerprint of every version the backend holds for this object, read
        through the backend's own API (not the provider): duplicates included.'''

    def broken(self, provider, after):
        '''A context manager: the backend fails from its ``after``-th call on (0: at
        once) until the block exits — a dead port behind a ``FlakyProxy``
        (``proxy.go_down(after)``), or ``faults.inject(provider, "_client", after)``.'''

The central case, "a provider call fails half-way, then the next apply": with
v1 and v2 registered and an alias on v2, an update to v3 is attempted with the
backend failing after 0, 1, 2, … calls — every point an operation can be cut
at — until one attempt gets through; then the update is retried with the backend
healthy (what the engine does after a failed update). v1 and v2 must still be
there with their bytes, v3 registered exactly once, the alias where it was.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from contract import Desired, Prior, Provider, ProviderError, Registry, Result
from providers.testing.base import BEHAVIOUR
from providers.testing.crud import CrudConformance

ALIAS = "production"


def content_of(path: Path) -> bytes | dict[str, bytes]:
    """A materialized version: a file's bytes, or a directory's files by relative path."""
    if path.is_dir():
        return {
            str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
        }
    return path.read_bytes()


class RegistryConformance(CrudConformance):
    #: Attempts the half-way sweep makes at most (one per call an update may be cut at).
    max_fault_points: ClassVar[int] = 60

    # -- hooks -----------------------------------------------------------------------------
    def stored_fingerprints(self, provider: Provider, desired: Desired) -> list[str]:
        raise NotImplementedError("the Registry suite needs stored_fingerprints()")

    def broken(self, provider: Provider, after: int) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError("the Registry suite needs broken(provider, after)")

    # -- helpers ---------------------------------------------------------------------------
    def registry(self, provider: Provider) -> Registry:
        assert isinstance(provider, Registry), f"{type(provider).__name__} is not a Registry"
        return provider

    def fetch(self, provider: Provider, prior: Prior, tmp_path: Path, tag: str) -> Any:
        reg = self.registry(provider)
        assert reg.has_version(prior.section, prior.name, prior.outputs), f"{tag} is gone"
        target = tmp_path / ".kit-fetch" / tag
        got = reg.materialize(prior.section, prior.name, prior.outputs, target)
        return content_of(got)

    def counts(self, provider: Provider, prior: Prior) -> Counter[str]:
        desired = self.desired_of(prior)
        return Counter(self.stored_fingerprints(provider, desired))

    @staticmethod
    def desired_of(prior: Prior) -> Desired:
        return Desired(prior.address, prior.section, prior.name, prior.attributes)

    def alias_fingerprint(self, provider: Provider, prior: Prior) -> Any:
        found = self.registry(provider).get_alias(prior.section, prior.name, ALIAS)
        return None if found is None else found.get("fingerprint")

    def history(self, provider: Provider, tmp_path: Path) -> tuple[Prior, Prior]:
        """v1 created, then v2 by a behaviour update."""
        p1 = self.create(provider, tmp_path, "v1")
        return p1, self.update(provider, p1, tmp_path, "v2", BEHAVIOUR)

    def assert_kept(
        self, provider: Provider, tmp_path: Path, kept: Mapping[str, tuple[Prior, Any]]
    ) -> None:
        for tag, (prior, content) in kept.items():
            assert self.fetch(provider, prior, tmp_path, f"{tag}-again") == content, (
                f"{tag} no longer holds its content"
            )

    # -- the suite -------------------------------------------------------------------------
    def test_fingerprints_tell_versions_apart(self, provider: Provider, tmp_path: Path) -> None:
        self.registry(provider)
        prints = [self.planned(provider, tmp_path, v).fingerprint for v in ("v1", "v2", "v3")]
        assert all(prints), "a registry fingerprints what the spec points at"
        assert len(set(prints)) == 3, "v1, v2 and v3 must have different content"

    def test_versions_are_content_addressed(self, provider: Provider, tmp_path: Path) -> None:
        p1, p2 = self.history(provider, tmp_path)
        back = self.update(provider, p2, tmp_path, "v1", BEHAVIOUR)
        assert self.version(back) == self.version(p1), "the same content made a second version"
        counts = self.counts(provider, back)
        assert counts[p1.outputs["fingerprint"]] == 1
        assert counts[p2.outputs["fingerprint"]] == 1

    def test_restore_brings_back_an_earlier_version(
        self, provider: Provider, tmp_path: Path
    ) -> None:
        """A rollback: ``Desired.restore`` names v1 while the spec's files hold v2."""
        p1, p2 = self.history(provider, tmp_path)
        v1 = self.fetch(provider, p1, tmp_path, "v1")
        current = self.planned(provider, tmp_path, "v2")
        restoring = replace(
            current, restore=dict(p1.outputs), fingerprint=p1.outputs.get("fingerprint")
        )
        back = self.recorded(
            restoring, self.ok(provider.update(p2, restoring, BEHAVIOUR), "restore", "v1")
        )
        assert self.version(back) == self.version(p1)
        assert back.outputs.get("fingerprint") == p1.outputs.get("fingerprint")
        assert self.fetch(provider, back, tmp_path, "restored") == v1
        assert self.counts(provider, back)[p1.outputs["fingerprint"]] == 1

    def test_every_version_stays_fetchable(self, provider: Provider, tmp_path: Path) -> None:
        p1 = self.create(provider, tmp_path, "v1")
        v1 = self.fetch(provider, p1, tmp_path, "v1")
        p2 = self.update(provider, p1, tmp_path, "v2", BEHAVIOUR)
        v2 = self.fetch(provider, p2, tmp_path, "v2")
        assert v1 != v2
        self.assert_kept(provider, tmp_path, {"v1": (p1, v1), "v2": (p2, v2)})

    def test_aliases_point_at_versions(self, provider: Provider, tmp_path: Path) -> None:
        reg = self.registry(provider)
        p1, p2 = self.history(provider, tmp_path)
        assert reg.get_alias(p1.section, p1.name, ALIAS) is None
        for prior in (p2, p1):  # a release, then a rollback
            reg.set_alias(prior.section, prior.name, ALIAS, prior.outputs)
            found = reg.get_alias(prior.section, prior.name, ALIAS)
            assert found is not None
            assert found.get("fingerprint") == prior.outputs.get("fingerprint")
            if self.version_key in found:
                assert self.version(found) == self.version(prior)
        reg.set_alias(p1.section, p1.name, ALIAS, {self.version_key or "version": None})
        assert reg.get_alias(p1.section, p1.name, ALIAS) is None

    def test_delete_keeps_every_version(self, provider: Provider, tmp_path: Path) -> None:
        """``delete`` retires the object: the aliases mlx set go, every version stays, and a
        later ``create`` of the same name adopts it (no version lost, none duplicated)."""
        reg = self.registry(provider)
        p1 = self.create(provider, tmp_path, "v1")
        v1 = self.fetch(provider, p1, tmp_path, "v1")
        p2 = self.update(provider, p1, tmp_path, "v2", BEHAVIOUR)
        v2 = self.fetch(provider, p2, tmp_path, "v2")
        reg.set_alias(p2.section, p2.name, ALIAS, p2.outputs)
        provider.delete(p2)
        self.assert_kept(provider, tmp_path, {"v1": (p1, v1), "v2": (p2, v2)})
        assert reg.get_alias(p2.section, p2.name, ALIAS) is None, "delete left mlx's alias"
        back = self.create(provider, tmp_path, "v1")
        assert self.version(back) == self.version(p1), "re-creating made a second v1"
        assert self.drift(provider, back) == []
        counts = self.counts(provider, back)
        assert counts[p1.outputs["fingerprint"]] == 1
        assert counts[p2.outputs["fingerprint"]] == 1

    def test_create_adopts_an_existing_object(self, provider: Provider, tmp_path: Path) -> None:
        """``create`` on an object that exists — a forced replacement, or a failed create
        retried — adopts it: existing versions reused, new content a new version, aliases kept."""
        reg = self.registry(provider)
        p1, p2 = self.history(provider, tmp_path)
        v1 = self.fetch(provider, p1, tmp_path, "v1")
        reg.set_alias(p2.section, p2.name, ALIAS, p2.outputs)
        again = self.create(provider, tmp_path, "v2")
        assert self.version(again) == self.version(p2)
        p3 = self.create(provider, tmp_path, "v3")
        assert self.version(p3) not in (self.version(p1), self.version(p2))
        assert self.alias_fingerprint(provider, p3) == p2.outputs.get("fingerprint")
        self.assert_kept(provider, tmp_path, {"v1": (p1, v1)})
        counts = self.counts(provider, p3)
        for prior in (p1, p2, p3):
            assert counts[prior.outputs["fingerprint"]] == 1, counts

    def test_failed_update_then_retry_loses_nothing(
        self, provider: Provider, tmp_path: Path
    ) -> None:
        reg = self.registry(provider)
        p1 = self.create(provider, tmp_path, "v1")
        v1 = self.fetch(provider, p1, tmp_path, "v1")
        p2 = self.update(provider, p1, tmp_path, "v2", BEHAVIOUR)
        v2 = self.fetch(provider, p2, tmp_path, "v2")
        reg.set_alias(p2.section, p2.name, ALIAS, p2.outputs)
        d3 = self.planned(provider, tmp_path, "v3")
        failures = self.sweep(provider, lambda: provider.update(p2, d3, BEHAVIOUR))
        assert failures, "broken() never made the update fail"
        # the next apply: the record still says v2, and the update is retried
        p3 = self.recorded(d3, self.ok(provider.update(p2, d3, BEHAVIOUR), "update", "v3"))
        assert self.version(p3) not in (self.version(p1), self.version(p2))
        assert self.drift(provider, p3) == []
        self.assert_kept(provider, tmp_path, {"v1": (p1, v1), "v2": (p2, v2)})
        assert self.fetch(provider, p3, tmp_path, "v3") not in (v1, v2)
        counts = self.counts(provider, p3)
        for prior in (p1, p2, p3):
            assert counts[prior.outputs["fingerprint"]] == 1, counts
        assert self.alias_fingerprint(provider, p3) == p2.outputs.get("fingerprint")

    def test_failed_create_then_create_again(self, provider: Provider, tmp_path: Path) -> None:
        """A create cut half-way leaves a tainted record; the next apply calls create again."""
        d1 = self.planned(provider, tmp_path, "v1")
        failures = self.sweep(provider, lambda: provider.create(d1))
        assert failures, "broken() never made the create fail"
        p1 = self.recorded(d1, self.ok(provider.create(d1), "create", "v1"))
        assert self.drift(provider, p1) == []
        self.fetch(provider, p1, tmp_path, "v1")
        assert self.counts(provider, p1)[p1.outputs["fingerprint"]] == 1

    def sweep(self, provider: Provider, call: Callable[[], Result]) -> list[str]:
        """Run ``call`` with the backend failing after 0, 1, 2, … calls until one attempt
        gets through; the failures, as the one-line messages the user would see."""
        failures = []
        for after in range(self.max_fault_points):
            with self.broken(provider, after):
                try:
                    result = call()
                except ProviderError as exc:
                    failures.append(self.one_line(exc))
                    continue
            if not result.failed:
                break
            failures.append(str(result.message))
        return failures
