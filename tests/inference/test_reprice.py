"""``inference.reprice`` on SQLite and PostgreSQL: the window's LLM answers priced again from
their stored usage with the gateway's pricing, in batches; what has no usage, no model, or was
a cache hit is left alone."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from common import pricing
from dataplane.route import Price
from inference import query, schema
from inference.records import InferenceRecord
from inference.reprice import Usage, reprice
from inference.store import LogStore
from tests.inference.conftest import T0, rec

#: the corrected price: $1 / $2 / $0.25 per 1k input / output / cached input tokens
FIXED = {"house-model": Price(input_per_1k=1.0, output_per_1k=2.0, cached_input_per_1k=0.25)}


def price_of(u: Usage) -> pricing.Priced:
    used = pricing.Usage(u.input_tokens, u.output_tokens, u.cached_input_tokens)
    return pricing.price(FIXED, u.requested_model, u.model, used, u.ts)


def llm(request_id: str, **kw: Any) -> InferenceRecord:
    values: dict[str, Any] = {
        "input_tokens": 1000,
        "output_tokens": 100,
        "cached_input_tokens": 400,
        "requested_model": "house-model",
        "model": "house-model-2026",
        "cost_usd": 9.0,  # the wrong price
        "price_source": "spec",
    }
    values.update(kw)
    return rec(request_id, endpoint="chat", **values)


#: (600 x 1 + 400 x 0.25 + 100 x 2) / 1000
RIGHT = 0.9


def test_reprice_fixes_the_window_and_leaves_the_rest_alone(store: LogStore) -> None:
    store.write(
        [
            llm("a", ts=T0 + 10),
            llm("b", ts=T0 + 20),
            llm(
                "c",
                ts=T0 + 30,
                cost_usd=RIGHT,
                price_input_per_1m=1000.0,
                price_output_per_1m=2000.0,
                price_cached_input_per_1m=250.0,
            ),  # already right
            llm(
                "unknown",
                ts=T0 + 40,
                requested_model="nope",
                model="nope",
                cost_usd=None,
                price_source=None,
            ),  # still nobody prices it: stays null
            llm("old-row", ts=T0 + 50, requested_model=None, model=None, cost_usd=0.5),  # schema 3
            llm("no-usage", ts=T0 + 60, input_tokens=None, output_tokens=None, cost_usd=None),
            llm("hit", ts=T0 + 70, cache_hit=True, cost_usd=0.0, price_source="cache"),
            llm("before", ts=T0 - 10),  # outside --since
            rec(
                "other-endpoint",
                endpoint="other",
                input_tokens=5,
                model="house-model",
                cost_usd=9.0,
            ),
        ]
    )
    done = reprice(store, "chat", price_of, since=T0, batch=2)
    assert (done.records, done.changed) == (4, 2)  # a, b changed; c same; unknown same
    assert done.before_usd == pytest.approx(9.0 + 9.0 + RIGHT)
    assert done.after_usd == pytest.approx(3 * RIGHT)
    assert (done.unpriced_before, done.unpriced_after) == (1, 1)
    got = {x.record.request_id: x.record for x in query.tail(store, "chat", limit=None)}
    for name in ("a", "b", "c"):
        r = got[name]
        assert r.cost_usd == pytest.approx(RIGHT) and r.price_source == "spec"
        rates = (r.price_input_per_1m, r.price_output_per_1m, r.price_cached_input_per_1m)
        assert rates == pytest.approx((1000.0, 2000.0, 250.0))
    assert got["unknown"].cost_usd is None and got["unknown"].price_source is None
    assert got["old-row"].cost_usd == 0.5
    assert got["no-usage"].cost_usd is None
    assert got["hit"].cost_usd == 0.0 and got["hit"].price_source == "cache"
    assert got["before"].cost_usd == 9.0
    other = query.tail(store, "other", limit=None)
    assert [x.record.cost_usd for x in other] == [9.0]
    # a second run finds nothing to change
    again = reprice(store, "chat", price_of, since=T0)
    assert (again.records, again.changed) == (4, 0)
    assert again.before_usd == pytest.approx(again.after_usd)


def test_a_model_priced_since_gets_a_cost(store: LogStore) -> None:
    """A record logged unpriced gets its cost once a price exists (here: the override)."""
    store.write([llm("late", cost_usd=None, price_source=None)])
    done = reprice(store, "chat", price_of)
    assert (done.changed, done.unpriced_before, done.unpriced_after) == (1, 1, 0)
    with store.engine.connect() as conn:
        row = conn.execute(
            select(schema.inference.c.cost_usd, schema.inference.c.price_source)
        ).one()
    assert row.cost_usd == pytest.approx(RIGHT) and row.price_source == "spec"


def test_a_batch_is_all_or_nothing(store: LogStore) -> None:
    """A pricing failure mid-batch rolls the batch back: no row of it is half repriced."""
    store.write([llm("x1", ts=T0 + 1), llm("x2", ts=T0 + 2), llm("x3", ts=T0 + 3)])
    seen: list[str | None] = []

    def failing(u: Usage) -> pricing.Priced:
        seen.append(u.model)
        if len(seen) == 3:  # the first row of the second batch
            raise RuntimeError("price table broke")
        return price_of(u)

    with pytest.raises(RuntimeError):
        reprice(store, "chat", failing, batch=2)
    costs = [x.record.cost_usd for x in query.tail(store, "chat", limit=None)]
    assert costs == [pytest.approx(RIGHT), pytest.approx(RIGHT), 9.0]
