"""The rollout provider (the controller's adapter) passes the kit's CRUD suite with the
kit's fake Peers as its registry: a direct rollout moves its subject's alias there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from contract import Desired, Prior, Provider, ProviderError
from controller.rollouts.provider import RolloutProvider
from providers.testing import CrudConformance

SUBJECT = "models.fraud"


class TestDirectRollouts(CrudConformance):
    section = "rollouts"
    version_key = "released_version"

    def make_provider(self, tmp_path: Path) -> Provider:
        return RolloutProvider({"type": "rollout"}, self.context(tmp_path))

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        number = 2 if variant == "v2" else 1
        outputs = self.peers.register(SUBJECT, f"weights-v{number}".encode(), number)
        spec: dict[str, Any] = {"subject": SUBJECT, "alias": "production", "strategy": "direct"}
        if variant == "meta":
            spec["description"] = "the fraud model's release"
        if variant == "bad":
            del spec["alias"]
        return Desired("rollouts.fraud", "rollouts", "fraud", spec, inputs={SUBJECT: outputs})

    def tamper(self, provider: Provider, prior: Prior) -> None:
        # somebody pointed the alias at another version by hand
        other = self.peers.register(SUBJECT, b"hand-made", 9)
        self.peers.aliases[(SUBJECT, "production")] = other

    def test_delete_forgets_the_object(self, provider: Provider, tmp_path: Path) -> None:
        """Overrides the kit: a rollout's object is its subject's alias. ``delete`` removes
        the alias, and ``read()`` reports that (a note) rather than ``None``."""
        prior = self.create(provider, tmp_path)
        assert self.peers.get_alias(SUBJECT, "production") is not None
        provider.delete(prior)
        assert self.peers.get_alias(SUBJECT, "production") is None
        observed = provider.read(prior)
        assert observed is not None and observed.outputs["released_version"] is None
        assert observed.notes == ("alias 'production' was removed",)

    def test_delete_is_idempotent(self, provider: Provider, tmp_path: Path) -> None:
        """Overrides the kit for the same reason: the second delete removes nothing more."""
        prior = self.create(provider, tmp_path)
        provider.delete(prior)
        provider.delete(prior)
        assert self.peers.get_alias(SUBJECT, "production") is None

    def test_the_release_is_the_alias(self, provider: Provider, tmp_path: Path) -> None:
        prior = self.create(provider, tmp_path)
        behind = self.peers.get_alias(SUBJECT, "production")
        assert behind is not None
        assert behind["fingerprint"] == prior.outputs["fingerprint"]
        assert ("set_alias", SUBJECT) in self.peers.calls

    def test_an_unreachable_registry_is_a_clear_error(
        self, provider: Provider, tmp_path: Path
    ) -> None:
        desired = self.planned(provider, tmp_path, "v1")
        with self.peers.broken(), pytest.raises(ProviderError) as err:
            provider.create(desired)
        self.one_line(err.value)
        prior = self.recorded(desired, provider.create(desired))  # the next apply
        assert self.drift(provider, prior) == []
