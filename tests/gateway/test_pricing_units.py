"""Pricing decisions, one row per branch: raw usage read from OpenAI / Anthropic-style usage,
cached tokens split off the prompt (never negative, never counted twice), the spec's override
(with and without a cache-read price), the bundled table with its version as the source, and
an unknown model priced None, never 0."""

from __future__ import annotations

from typing import Any

import pytest

from common import pricing
from common.pricing import Usage, price, split, usage_of
from dataplane.route import Price

#: 2026-06-01, inside the bundled table's current gpt-4o-mini price ($0.15 / $0.60 / $0.075 per
#: 1M input / output / cached input tokens)
TS = 1.78e9
TABLE = pricing.table_source()


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (None, Usage()),
        ("nope", Usage()),
        ({"prompt_tokens": 10, "completion_tokens": 3}, Usage(10, 3, None)),
        (
            {
                "prompt_tokens": 10,
                "completion_tokens": 3,
                "prompt_tokens_details": {"cached_tokens": 4},
            },
            Usage(10, 3, 4),
        ),
        (
            {"prompt_tokens": 10, "completion_tokens": 3, "cache_read_input_tokens": 6},
            Usage(10, 3, 6),
        ),
        (
            {
                "prompt_tokens": 10,
                "prompt_tokens_details": {"cached_tokens": 2},
                "cache_read_input_tokens": 6,
            },
            Usage(10, None, 2),  # OpenAI's own field wins
        ),
        ({"prompt_tokens": True, "completion_tokens": "3"}, Usage(None, None, None)),
        ({"prompt_tokens": 10, "prompt_tokens_details": None}, Usage(10, None, None)),
    ],
)
def test_usage_is_read_from_openai_and_anthropic_style_fields(usage: Any, expected: Usage) -> None:
    assert usage_of(usage) == expected


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (Usage(1000, 100, None), (1000, 0, 100)),
        (Usage(1000, 100, 400), (600, 400, 100)),
        (Usage(1000, 100, 1000), (0, 1000, 100)),
        (Usage(1000, 100, 5000), (0, 1000, 100)),  # more cached than prompt: clamped
        (Usage(1000, 100, -5), (1000, 0, 100)),  # negative: nothing cached
        (Usage(None, 100, 7), (0, 0, 100)),
        (Usage(-3, -1, None), (0, 0, 0)),
    ],
)
def test_cached_tokens_are_a_subset_of_the_prompt(
    usage: Usage, expected: tuple[int, int, int]
) -> None:
    assert split(usage) == expected


SPEC = {
    "mine": Price(input_per_1k=1.0, output_per_1k=2.0, cached_input_per_1k=0.25),
    "flat": Price(input_per_1k=1.0, output_per_1k=2.0),  # no cache-read price
}


@pytest.mark.parametrize(
    ("requested", "answered", "usage", "cost", "source", "rates"),
    [
        # the spec's override: uncached x input + cached x cache read + output
        ("mine", None, Usage(1000, 500, None), 2.0, "spec", (1000.0, 2000.0, 250.0)),
        (
            "mine",
            "mine-v2",
            Usage(1000, 500, 400),
            0.6 + 0.1 + 1.0,
            "spec",
            (1000.0, 2000.0, 250.0),
        ),
        # no cached_input_per_1k: cached tokens at the input price, never undercut
        ("flat", None, Usage(1000, 500, 400), 2.0, "spec", (1000.0, 2000.0, 1000.0)),
        # the override is looked up by the requested name first, then the answered one
        ("alias", "mine", Usage(1000, 0, None), 1.0, "spec", (1000.0, 2000.0, 250.0)),
        # the bundled table, as the upstream answered, with its version as the source
        (
            "gpt-4o-mini",
            "gpt-4o-mini-2024-07-18",
            Usage(1_000_000, 0, None),
            0.15,
            TABLE,
            (0.15, 0.6, 0.075),
        ),
        (
            "gpt-4o-mini",
            None,
            Usage(1_000_000, 1_000_000, 400_000),
            0.6 * 0.15 + 0.4 * 0.075 + 0.6,
            TABLE,
            (0.15, 0.6, 0.075),
        ),
        # cached > prompt: clamped, the whole prompt at the cache-read price, never negative
        ("gpt-4o-mini", None, Usage(1_000_000, 0, 9_000_000), 0.075, TABLE, (0.15, 0.6, 0.075)),
        # an unknown model, or no usage at all: None, never 0
        ("no-such-model-anywhere", None, Usage(10, 10, None), None, None, (None, None, None)),
        ("gpt-4o-mini", None, Usage(), None, None, (None, None, None)),
        (None, None, Usage(10, 10, None), None, None, (None, None, None)),
    ],
)
def test_price_and_its_source(
    requested: str | None,
    answered: str | None,
    usage: Usage,
    cost: float | None,
    source: str | None,
    rates: tuple[float | None, ...],
) -> None:
    got = price(SPEC, requested, answered, usage, TS)
    if cost is None:
        assert got.cost_usd is None
    else:
        assert got.cost_usd is not None and got.cost_usd >= 0
        assert got.cost_usd == pytest.approx(cost)
    assert got.source == source
    assert (got.input_per_1m, got.output_per_1m, got.cached_input_per_1m) == (
        pytest.approx(rates[0]) if rates[0] is not None else None,
        pytest.approx(rates[1]) if rates[1] is not None else None,
        pytest.approx(rates[2]) if rates[2] is not None else None,
    )


def test_the_table_source_names_the_installed_version() -> None:
    import genai_prices

    assert f"genai-prices {genai_prices.__version__}" == TABLE


@pytest.mark.parametrize(
    ("model", "known"),
    [("mine", True), ("gpt-4o-mini", True), ("gpt-4o-mini-2024-07-18", True), ("nope-7b", False)],
)
def test_known_models(model: str, known: bool) -> None:
    assert pricing.known(SPEC, model, TS) is known


def test_a_tiered_table_price_records_the_tier_that_applied() -> None:
    """gemini-1.5-pro bills every token at a higher rate past 128k input tokens."""
    small = price({}, "gemini-1.5-pro", None, Usage(1000, 0), TS)
    large = price({}, "gemini-1.5-pro", None, Usage(200_000, 0), TS)
    assert small.input_per_1m is not None and large.input_per_1m is not None
    assert large.input_per_1m > small.input_per_1m
    assert large.cost_usd == pytest.approx(200_000 * large.input_per_1m / 1e6)
