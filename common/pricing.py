"""What an LLM call cost: its usage x a dated price table, and which price that was.

Prices come from the route document's ``pricing`` first (per model, ``input_per_1k`` /
``output_per_1k`` / ``cached_input_per_1k`` USD: the endpoint's own override, e.g. a
negotiated rate or a self-hosted model), then from ``genai-prices``, whose price data is
bundled in the package and dated (the price in force at the request's time is used). Nothing
is ever fetched at run time: ``genai_prices.UpdatePrices`` is never started. A model neither
knows is priced ``None`` (unknown), never 0: the record's ``price_source`` is then null too.

Cached input tokens are billed as the provider bills them: OpenAI's
``usage.prompt_tokens_details.cached_tokens`` (and the ``cache_read_input_tokens`` some
OpenAI-compatible proxies send for Anthropic models) are a *subset* of ``prompt_tokens``; they
are priced at the cache-read rate and only the remainder at the input rate. A cached count
larger than the prompt is clamped to it, so a cost is never negative and no token is billed
twice. A spec price without ``cached_input_per_1k`` bills cached tokens at the input rate
(what the spec author wrote is never undercut).

The model is looked up as the upstream answered it (``gpt-4o-mini-2024-07-18``), then as
requested (the spec's override: as requested first, the name its author wrote). The gateway
prices after the caller's answer is sent; a lookup costs about a quarter of a millisecond, and
repeated ones are memoised. ``mlx logs --reprice`` prices stored records with the same code.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Protocol


class Price(Protocol):
    """A spec's price override (``dataplane.route.Price``): USD per 1,000 tokens."""

    @property
    def input_per_1k(self) -> float: ...

    @property
    def output_per_1k(self) -> float: ...

    @property
    def cached_input_per_1k(self) -> float | None: ...


log = logging.getLogger("mlx.gateway")

#: ``price_source`` of a price from the endpoint's own ``pricing``.
SPEC = "spec"
#: ``price_source`` of a cache hit: no upstream call was made, its cost is a true 0.
CACHE = "cache"


@dataclass(frozen=True, slots=True)
class Usage:
    """The raw token counts an upstream reported (None: it did not say)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None

    @property
    def known(self) -> bool:
        return self.input_tokens is not None or self.output_tokens is not None


@dataclass(frozen=True, slots=True)
class Priced:
    """A cost and the price behind it: rates in USD per million tokens as applied."""

    cost_usd: float | None
    source: str | None = None
    input_per_1m: float | None = None
    output_per_1m: float | None = None
    cached_input_per_1m: float | None = None

    def fields(self) -> dict[str, Any]:
        """The record's fields (``gateway.records.record`` keywords)."""
        return {
            "cost_usd": self.cost_usd,
            "price_source": self.source,
            "price_input_per_1m": self.input_per_1m,
            "price_output_per_1m": self.output_per_1m,
            "price_cached_input_per_1m": self.cached_input_per_1m,
        }


UNPRICED = Priced(None)
CACHED = Priced(0.0, CACHE)


def usage_of(usage: Any) -> Usage:
    """The counts of an OpenAI ``usage`` object (anything else: nothing known)."""
    if not isinstance(usage, dict):
        return Usage()
    cached = None
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict):
        cached = _int(details.get("cached_tokens"))
    if cached is None:
        cached = _int(usage.get("cache_read_input_tokens"))
    return Usage(_int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")), cached)


def split(usage: Usage) -> tuple[int, int, int]:
    """(uncached input, cached input, output) tokens: never negative, never counted twice."""
    tin, tout = max(usage.input_tokens or 0, 0), max(usage.output_tokens or 0, 0)
    cached = min(max(usage.cached_input_tokens or 0, 0), tin)
    return tin - cached, cached, tout


def price(
    pricing: Mapping[str, Price],
    requested: str | None,
    answered: str | None,
    usage: Usage,
    ts: float,
) -> Priced:
    """The cost of ``usage`` for the model the upstream answered (or was asked for)."""
    if not usage.known:
        return UNPRICED
    uncached, cached, tout = split(usage)
    for model in (requested, answered):
        found = pricing.get(model) if model else None
        if found is not None:
            return spec_price(found, uncached, cached, tout)
    hour = int(ts // 3600)
    for model in (answered, requested):
        if model:
            value = _table_price(model, uncached + cached, cached, tout, hour)
            if value is not None:
                return value
    return UNPRICED


def spec_price(found: Price, uncached: int, cached: int, tout: int) -> Priced:
    cached_rate = found.cached_input_per_1k
    if cached_rate is None:
        cached_rate = found.input_per_1k
    per_1k = uncached * found.input_per_1k + cached * cached_rate + tout * found.output_per_1k
    cost = per_1k / 1000
    return Priced(
        cost, SPEC, found.input_per_1k * 1000, found.output_per_1k * 1000, cached_rate * 1000
    )


def cost_usd(
    pricing: Mapping[str, Price],
    requested: str,
    answered: str | None,
    input_tokens: int | None,
    output_tokens: int | None,
    ts: float,
) -> float | None:
    """The cost alone, of a usage without cached tokens."""
    return price(pricing, requested, answered, Usage(input_tokens, output_tokens), ts).cost_usd


def table_source() -> str | None:
    """``genai-prices <version>``: the bundled table's ``price_source`` (None: not installed)."""
    try:
        import genai_prices
    except ImportError:  # pragma: no cover - a dependency of the serve extra
        return None
    return f"genai-prices {getattr(genai_prices, '__version__', 'unknown')}"


def known(pricing: Mapping[str, Price], model: str, ts: float) -> bool:
    """Whether a call to ``model`` can be priced (the spec's override or the table)."""
    if model in pricing:
        return True
    return _table_price(model, 1, 0, 1, int(ts // 3600)) is not None


@lru_cache(maxsize=4096)
def _table_price(model: str, tin: int, cached: int, tout: int, hour: int) -> Priced | None:
    if model in _unknown:
        return None
    try:
        from genai_prices import Usage as TableUsage
        from genai_prices import calc_price
    except ImportError:  # pragma: no cover - a dependency of the serve extra
        return None
    try:
        result = calc_price(
            TableUsage(input_tokens=tin, output_tokens=tout, cache_read_tokens=cached or None),
            model,
            genai_request_timestamp=datetime.fromtimestamp(hour * 3600, UTC),
        )
    except LookupError:
        _unknown.add(model)
        return None
    except Exception as exc:  # a price-table quirk must never fail a request
        log.warning("pricing %s failed: %s", model, exc)
        return None
    mp = result.model_price
    cache_read = mp.cache_read_mtok if mp.cache_read_mtok is not None else mp.input_mtok
    return Priced(
        float(result.total_price),
        table_source(),
        _rate(mp.input_mtok, tin),
        _rate(mp.output_mtok, tin),
        _rate(cache_read, tin),
    )


def _rate(value: Any, input_tokens: int) -> float | None:
    """A per-1M rate as applied: a tiered price's tier is chosen by the input tokens (the
    cliff model genai-prices applies)."""
    if value is None:
        return None
    if isinstance(value, Decimal | int | float):
        return float(value)
    rate = value.base
    for tier in getattr(value, "tiers", ()):
        if input_tokens > tier.start:
            rate = tier.price
    return float(rate)


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


_unknown: set[str] = set()


def warm() -> None:
    """Load the bundled table now (0.2 s), not on the first request."""
    _table_price("gpt-4o-mini", 1, 0, 1, 0)
