"""The engine's side of ``contract.Peers``: cross-resource access for providers.

A gate needs its subject's previous artifact, a rollout moves its subject's
alias or an endpoint's traffic, a monitor alerts a channel or re-runs a gate: each goes through
the provider that owns the other resource, asked for the capability it needs
(``Registry``, ``Notifier``, ``Serving``, ``Gate``) — so no provider imports another.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from contract import (
    AlertMessage,
    Desired,
    Gate,
    Notifier,
    Prior,
    Provider,
    ProviderError,
    Registry,
    Released,
    Serving,
    capability,
)


class EnginePeers:
    def __init__(
        self,
        provider_for: Callable[[str], tuple[str, Provider]],
        recorded: Callable[[str], Prior | None],
        specs: Callable[[str], Mapping[str, Any] | None],
        released: Callable[[str, str | None], Released | None] | None = None,
        passed: Callable[[str, str], Mapping[str, Any] | None] | None = None,
    ):
        self._provider_for = provider_for
        self._recorded = recorded
        self._specs = specs
        self._released = released or (lambda _subject, _gate: None)
        self._passed = passed or (lambda _gate, _fingerprint: None)
        #: set when the run has a state database: an alert with a key (a rollout's) goes
        #: through the outbox (``engine.alerting.through_outbox``), kept until delivered
        self.outbox: Callable[[EnginePeers, str, AlertMessage], None] | None = None

    def recorded(self, address: str) -> Prior | None:
        return self._recorded(address)

    def spec(self, address: str) -> Mapping[str, Any] | None:
        return self._specs(address)

    def released(self, subject: str, gate: str | None = None) -> Released | None:
        return self._released(subject, gate)

    def passed_verdict(self, gate: str, subject_fingerprint: str) -> Mapping[str, Any] | None:
        return self._passed(gate, subject_fingerprint)

    def gate(self, address: str) -> Gate:
        _key, provider = self._provider_for(address)
        return capability(provider, Gate, f"run {address}")

    def _registry(self, address: str, what: str) -> tuple[str, str, Registry]:
        section, name = address.split(".", 1)
        _key, provider = self._provider_for(address)
        return section, name, capability(provider, Registry, f"{what} of {address}")

    def has_version(self, address: str, outputs: Mapping[str, Any]) -> bool:
        section, name, registry = self._registry(address, "look up a version")
        return registry.has_version(section, name, outputs)

    def materialize(self, address: str, outputs: Mapping[str, Any] | None, target: Path) -> Path:
        section, name, registry = self._registry(address, "fetch the content")
        if outputs is not None:
            return registry.materialize(section, name, outputs, target)
        spec = self._specs(address)
        if spec is None:
            raise ProviderError(f"{address} is not declared in the spec")
        return registry.materialize_declared(Desired(address, section, name, spec), target)

    def get_alias(self, address: str, alias: str) -> dict[str, Any] | None:
        section, name, registry = self._registry(address, f"read alias {alias!r}")
        return registry.get_alias(section, name, alias)

    def set_alias(self, address: str, alias: str, outputs: Mapping[str, Any]) -> None:
        section, name, registry = self._registry(address, f"move alias {alias!r}")
        registry.set_alias(section, name, alias, outputs)

    def notify(self, channel: str, message: AlertMessage) -> None:
        if self.outbox is not None and message.key and not message.idempotency_key:
            self.outbox(self, channel, message)
            return
        self.send(channel, message)

    def send(self, channel: str, message: AlertMessage) -> None:
        """Deliver ``message`` to ``channel`` now, through the channel's provider."""
        _key, provider = self._provider_for(channel)
        prior = self._recorded(channel)
        if prior is None:
            raise ProviderError(f"alert channel {channel} has not been applied yet")
        capability(provider, Notifier, f"send alerts to {channel}").send(prior, message)

    def serving(self, endpoint: str) -> tuple[Prior, Serving]:
        _key, provider = self._provider_for(endpoint)
        prior = self._recorded(endpoint)
        if prior is None:
            raise ProviderError(f"endpoint {endpoint} has not been applied yet")
        return prior, capability(provider, Serving, f"serve {endpoint}")
