"""The Gate suite: a gate judges a candidate, records evidence, changes nothing, fails closed.

For providers with the ``Gate`` capability (``evals``), run with the kit's fake
peers (``self.peers``): ``desired`` declares the gate's subject there
(``self.peers.declare(...)``, ``self.peers.register(...)``). Variants, on top
of the CRUD ones: ``"v1"`` passes; ``"fail"`` runs and does not pass.

A gate lives only in mlx's state (``drifts = False``, ``delete_keeps_object =
True``): nothing outside can drift, and deleting it forgets a verdict.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from contract import Gate, Provider, Result
from providers.testing.base import BEHAVIOUR, METADATA
from providers.testing.crud import CrudConformance


class GateConformance(CrudConformance):
    version_key: ClassVar[str | None] = None
    drifts: ClassVar[bool] = False
    delete_keeps_object: ClassVar[bool] = True

    def gate(self, provider: Provider) -> Gate:
        assert isinstance(provider, Gate), f"{type(provider).__name__} is not a Gate"
        return provider

    def verdict(self, result: Result) -> bool:
        assert isinstance(result, Result)
        passed = result.outputs.get("passed")
        assert isinstance(passed, bool), "a verdict records outputs['passed'] as a bool"
        assert isinstance(result.outputs.get("evidence"), dict), "and its evidence as a dict"
        assert result.failed is (not passed), "Result.failed must be `not passed`"
        return passed

    def test_a_good_candidate_passes(self, provider: Provider, tmp_path: Path) -> None:
        result = self.gate(provider).evaluate(self.planned(provider, tmp_path, "v1"))
        assert self.verdict(result) is True, result.message

    def test_a_bad_candidate_fails_with_evidence(self, provider: Provider, tmp_path: Path) -> None:
        result = self.gate(provider).evaluate(self.planned(provider, tmp_path, "fail"))
        assert self.verdict(result) is False
        assert result.message and result.message.strip(), "a failed gate says why"

    def test_create_and_update_record_the_verdict(self, provider: Provider, tmp_path: Path) -> None:
        first = self.planned(provider, tmp_path, "v1")
        created = provider.create(first)
        assert self.verdict(created) is True
        prior = self.recorded(first, created)
        updated = provider.update(prior, self.planned(provider, tmp_path, "fail"), BEHAVIOUR)
        assert self.verdict(updated) is False

    def test_judging_changes_nothing(self, provider: Provider, tmp_path: Path) -> None:
        gate = self.gate(provider)
        gate.evaluate(self.planned(provider, tmp_path, "v1"))
        gate.evaluate(self.planned(provider, tmp_path, "fail"))
        prior = self.create(provider, tmp_path, "v1")
        provider.update(prior, self.planned(provider, tmp_path, "v2"), BEHAVIOUR)
        assert self.peers.writes() == [], "a gate moved an alias or sent an alert"

    def test_a_metadata_edit_keeps_the_verdict_without_rerunning(
        self, provider: Provider, tmp_path: Path
    ) -> None:
        prior = self.create(provider, tmp_path, "v1")
        meta = self.planned(provider, tmp_path, "meta")
        calls = len(self.peers.calls)
        result = provider.update(prior, meta, METADATA)
        assert self.verdict(result) is True
        assert result.outputs == prior.outputs
        assert len(self.peers.calls) == calls, "a metadata edit re-ran the gate"

    def test_a_gate_that_cannot_run_fails_closed(self, provider: Provider, tmp_path: Path) -> None:
        desired = self.planned(provider, tmp_path, "v1")
        subject = str(desired.spec.get("subject"))
        self.peers.specs.pop(subject, None)
        self.peers.versions.pop(subject, None)
        with self.peers.broken():
            result = self.gate(provider).evaluate(desired)
        assert self.verdict(result) is False, "a gate that cannot run must not pass"
        assert result.message
