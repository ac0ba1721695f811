"""``mlx plan``: a warning (``--strict-prices``: an error) for every model a served prompt names
that the gateway could not price.

The gateway logs ``cost_usd = null`` (never 0) for an answer it has no price for
(``common.pricing``); budgets and ``$ / success`` then miss it. The plan says so before any
traffic: for each endpoint that serves a prompt, each model the prompt names — ``model``,
every ``routing.rules[i].model`` and ``routing.default`` (the endpoint client's ``model`` when
the prompt names none) — must be in the endpoint's ``pricing`` or in genai-prices' bundled
table. A prompt no endpoint serves is not priced by the gateway and is not checked (an eval
gate has its own ``pricing``). Models are read from the plan's resolved bodies (``${var.x}``
filled in); one still unknown (known after apply) is not checked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from common.diagnostics import Diagnostic, Source
from engine.load.spec_set import SpecSet

#: ``known(pricing, model)``: whether the gateway can price ``model`` with that ``pricing``
Known = Callable[[Mapping[str, Any], str], bool]


@dataclass(frozen=True)
class Unpriced:
    """A model a served prompt names that the serving endpoint cannot price."""

    prompt: str  # prompts.x
    path: tuple[str | int, ...]  # where in the prompt (or the endpoint) the model is named
    model: str
    endpoint: str  # endpoints.y
    where: Source

    @property
    def message(self) -> str:
        """The plan warning: where, then what."""
        return f"{self.where}: {self.text}"

    @property
    def text(self) -> str:
        field = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in self.path)
        field = field.replace(".[", "[")
        return (
            f"{self.prompt}.{field} names model {self.model!r}, which "
            f"{self.endpoint} cannot price (neither its `pricing` nor genai-prices knows it): "
            "its answers would be logged with cost_usd null and left out of spend"
        )


def named_models(prompt: Mapping[str, Any]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """(path, model) of every model a prompt's body names."""
    model = prompt.get("model")
    if isinstance(model, str):
        yield ("model",), model
    routing = prompt.get("routing")
    if isinstance(routing, Mapping):
        for i, rule in enumerate(routing.get("rules") or []):
            if isinstance(rule, Mapping) and isinstance(rule.get("model"), str):
                yield ("routing", "rules", i, "model"), rule["model"]
        if isinstance(routing.get("default"), str):
            yield ("routing", "default"), routing["default"]


def unpriced(
    spec: SpecSet, known: Known, resolved: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Unpriced]:
    """Every (endpoint, model) pair the gateway could not price, in address order.
    ``resolved``: the plan's resolved bodies by address (``${var.x}`` filled in), read for the
    models and the pricing when there; which prompt an endpoint serves is read as written."""
    out: list[Unpriced] = []

    def body(address: str) -> Mapping[str, Any]:
        if resolved is not None and address in resolved:
            return resolved[address]
        return spec.decls[address].body

    for address in sorted(spec.decls):
        decl = spec.decls[address]
        if decl.section != "endpoints":
            continue
        served = decl.body.get("serves")
        if not isinstance(served, str) or not served.startswith("${prompts."):
            continue
        prompt_address = served[2:-1]
        prompt = spec.decls.get(prompt_address)
        if prompt is None:
            continue
        pricing = body(address).get("pricing") or {}
        named = list(named_models(body(prompt_address)))
        if not any(path == ("model",) for path, _ in named):
            client = body(address).get("client") or {}
            if isinstance(client.get("model"), str):  # the prompt names none: the client's
                named.insert(0, (("client", "model"), client["model"]))
        for path, model in named:
            if "${" in model or known(pricing, model):
                continue
            owner = address if path[0] == "client" else prompt_address
            where_of = owner
            out.append(Unpriced(owner, path, model, address, spec.source(where_of, *path)))
    return out


def gateway_known(pricing: Mapping[str, Any], model: str) -> bool:
    """The gateway's own answer (``common.pricing.known``), with the price in force now."""
    from common import pricing as prices

    return model in pricing or prices.known({}, model, time.time())


#: said instead of a finding per model when the table is not installed (the serve extra)
NO_TABLE = (
    "genai-prices is not installed (pip install 'mlxctl[serve]'): the models served prompts "
    "name were not checked against its price table"
)


def _without_table(known: Known) -> bool:
    from common.pricing import table_source

    return known is gateway_known and table_source() is None


def price_warnings(
    spec: SpecSet,
    resolved: Mapping[str, Mapping[str, Any]] | None = None,
    known: Known = gateway_known,
) -> list[str]:
    found = unpriced(spec, known, resolved)
    if found and _without_table(known):
        return [NO_TABLE]
    return [u.message for u in found]


def price_errors(
    spec: SpecSet,
    resolved: Mapping[str, Mapping[str, Any]] | None = None,
    known: Known = gateway_known,
) -> list[Diagnostic]:
    """``--strict-prices``: the same findings as errors."""
    found = unpriced(spec, known, resolved)
    if found and _without_table(known):
        return [Diagnostic(f"--strict-prices: {NO_TABLE}")]
    return [
        Diagnostic(
            f"{u.prompt}: model {u.model!r} cannot be priced by {u.endpoint}",
            u.where,
            detail=u.text + ". Add it to the endpoint's `pricing` "
            "({input_per_1k, output_per_1k, cached_input_per_1k}) or drop --strict-prices.",
        )
        for u in found
    ]
