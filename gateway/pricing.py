"""What an LLM call cost: tokens x a dated price table.

Prices come from the route document's ``pricing`` first (per model, ``input_per_1k`` /
``output_per_1k`` USD: the endpoint's own override, e.g. a negotiated rate or a self-hosted
model), then from ``genai-prices``, whose price data is bundled in the package and dated (the
price in force at the request's time is used). Nothing is ever fetched at run time:
``genai_prices.UpdatePrices`` is never started. A model neither knows is priced ``None``
(unknown), not 0.

The model is looked up as the upstream answered it (``gpt-4o-mini-2024-07-18``), then as
requested. The gateway prices after the caller's answer is sent; a lookup costs about a
quarter of a millisecond, and repeated ones are memoised.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache

from dataplane.route import Price

log = logging.getLogger("mlx.gateway")


def cost_usd(
    pricing: Mapping[str, Price],
    requested: str,
    answered: str | None,
    input_tokens: int | None,
    output_tokens: int | None,
    ts: float,
) -> float | None:
    if input_tokens is None and output_tokens is None:
        return None
    tin, tout = input_tokens or 0, output_tokens or 0
    for model in (requested, answered):
        price = pricing.get(model) if model else None
        if price is not None:
            return (tin * price.input_per_1k + tout * price.output_per_1k) / 1000.0
    hour = int(ts // 3600)
    for model in (answered, requested):
        if model:
            value = _table_price(model, tin, tout, hour)
            if value is not None:
                return value
    return None


@lru_cache(maxsize=4096)
def _table_price(model: str, input_tokens: int, output_tokens: int, hour: int) -> float | None:
    if model in _unknown:
        return None
    try:
        from genai_prices import Usage, calc_price
    except ImportError:  # pragma: no cover - a dependency of the serve extra
        return None
    try:
        result = calc_price(
            Usage(input_tokens=input_tokens, output_tokens=output_tokens),
            model,
            genai_request_timestamp=datetime.fromtimestamp(hour * 3600, UTC),
        )
    except LookupError:
        _unknown.add(model)
        return None
    except Exception as exc:  # a price-table quirk must never fail a request
        log.warning("pricing %s failed: %s", model, exc)
        return None
    return float(result.total_price)


_unknown: set[str] = set()


def warm() -> None:
    """Load the bundled table now (0.2 s), not on the first request."""
    _table_price("gpt-4o-mini", 1, 1, 0)
