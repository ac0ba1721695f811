"""The engine's side of ``providers.contract.Peers``: cross-resource access for providers.

A gate needs its subject's previous artifact, a rollout moves its subject's
alias, a monitor alerts a channel: each goes through the provider that owns
the other resource, found here — so no provider imports another.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from providers.contract import AlertMessage, Desired, Notifier, Prior, Provider, ProviderError


class EnginePeers:
    def __init__(
        self,
        provider_for: Callable[[str], tuple[str, Provider]],
        recorded: Callable[[str], Prior | None],
        specs: Callable[[str], Mapping[str, Any] | None],
    ):
        self._provider_for = provider_for
        self._recorded = recorded
        self._specs = specs

    def recorded(self, address: str) -> Prior | None:
        return self._recorded(address)

    def spec(self, address: str) -> Mapping[str, Any] | None:
        return self._specs(address)

    def _split(self, address: str) -> tuple[str, str, Provider]:
        section, name = address.split(".", 1)
        _key, provider = self._provider_for(address)
        return section, name, provider

    def has_version(self, address: str, outputs: Mapping[str, Any]) -> bool:
        section, name, provider = self._split(address)
        return provider.has_version(section, name, outputs)

    def materialize(self, address: str, outputs: Mapping[str, Any] | None, target: Path) -> Path:
        section, name, provider = self._split(address)
        if outputs is not None:
            return provider.materialize(section, name, outputs, target)
        spec = self._specs(address)
        if spec is None:
            raise ProviderError(f"{address} is not declared in the spec")
        return provider.materialize_declared(Desired(address, section, name, spec), target)

    def get_alias(self, address: str, alias: str) -> dict[str, Any] | None:
        section, name, provider = self._split(address)
        return provider.get_alias(section, name, alias)

    def set_alias(self, address: str, alias: str, outputs: Mapping[str, Any]) -> None:
        section, name, provider = self._split(address)
        provider.set_alias(section, name, alias, outputs)

    def notify(self, channel: str, message: AlertMessage) -> None:
        _section, _name, provider = self._split(channel)
        prior = self._recorded(channel)
        if prior is None:
            raise ProviderError(f"alert channel {channel} has not been applied yet")
        if not isinstance(provider, Notifier):
            raise ProviderError(f"the provider of {channel} cannot send alerts")
        provider.send(prior, message)
