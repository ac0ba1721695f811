"""The LLM upstream's API key of a prompt endpoint, resolved by this replica.

The route document holds no secret. Its ``client.api_key`` says where the key is
(``dataplane.route.KeyRef``), and each replica resolves that itself:

* ``{"env": NAME}`` (the spec wrote ``${env.NAME}``): ``NAME`` of this process's environment;
* null: no key (a local upstream: vLLM, Ollama);
* ``{"spec": true}`` (the spec writes the key another way: literal text, a variable, text
  around ``${env.X}``), or no ``api_key`` at all (a document written by a release before the
  reference existed): only the spec can say. The replica asks ``SpecKeys``, which the
  composition root gives it (``cli.spec_keys``: the spec directory ``mlx serve -C DIR``
  serves, resolved as a plan would); the gateway itself never reads a spec.

An endpoint whose key this replica cannot resolve — ``NAME`` unset (or empty) where ``mlx
serve`` runs — is *refused*, never called without its key: ``UpstreamKey.refusal`` says why
(naming the variable, never a value), its requests get 503, ``/healthz`` says degraded, and
stderr says so whenever its route loads, start included. A process's environment is fixed when
it starts, so exporting ``NAME`` takes a restart of ``mlx serve``. The reference changes with
the spec only through ``mlx apply`` (it is written into the document).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from dataplane.route import RouteDoc

log = logging.getLogger("mlx.gateway")


@dataclass(frozen=True, slots=True)
class UpstreamKey:
    """What this replica knows of one endpoint's upstream key."""

    value: str | None = field(default=None, repr=False)
    #: a problem to report (``/healthz``): the spec does not load, the key does not resolve
    problem: str | None = None
    #: why the endpoint must not be called at all (a declared key this replica lacks)
    refusal: str | None = None


class SpecKeys(Protocol):
    """Keys only the spec can resolve, by endpoint address (``cli.spec_keys``)."""

    def begin_round(self) -> None:
        """Read the spec again at the next lookup (a round of route reloads begins)."""
        ...

    def resolve(self, address: str) -> UpstreamKey: ...


class KeyResolver:
    """The upstream key of a prompt route, from its reference and this process's environment."""

    def __init__(self, environ: Mapping[str, str] | None = None, spec: SpecKeys | None = None):
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.spec = spec

    def begin_round(self) -> None:
        if self.spec is not None:
            self.spec.begin_round()

    def resolve(self, route: RouteDoc) -> UpstreamKey:
        address = route.address_text
        client = route.client
        if client is None or not client.key_written:  # written before the reference existed
            return self.spec.resolve(address) if self.spec is not None else UpstreamKey()
        ref = client.api_key
        if ref is None:
            return UpstreamKey()
        if ref.env is None:  # {"spec": true}
            if self.spec is None:
                why = "written other than as ${env.NAME}, and this replica reads no spec"
                return refused(address, (), f"{address}.client.api_key: {why}")
            return self.spec.resolve(address)
        value = self.environ.get(ref.env)
        if not value:
            return refused(address, (ref.env,))
        return UpstreamKey(value=value)


def refused(address: str, unset: tuple[str, ...], problem: str | None = None) -> UpstreamKey:
    """The endpoint at ``address`` is not called: its key needs the environment variables
    ``unset`` (or, with none named, does not resolve: ``problem`` says why)."""
    name = address.removeprefix("endpoints.")
    if unset:
        listed = ", ".join(unset)
        refusal = (
            f"endpoint {name!r} cannot call its LLM upstream: its client.api_key needs the "
            f"environment variable {listed}, which is not set where mlx serve runs"
        )
        fix = f"restart mlx serve with {listed} exported"
    else:
        refusal = (
            f"endpoint {name!r} cannot call its LLM upstream: its client.api_key does not resolve"
        )
        fix = "fix the spec"
    log.warning("mlx serve: %s: its requests get 503 (%s)", refusal, fix)
    return UpstreamKey(problem=problem or refusal, refusal=refusal)
