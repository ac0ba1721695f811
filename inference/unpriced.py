"""The LLM answers of a window that have no cost: what ``mlx refresh``'s unpriced-model alert
reads (``engine.unpriced``).

An answer is unpriced when it succeeded (status 200), was not a cache hit, names a model (an
LLM answer: schema 5 logs the model of every prompt answer) and has ``cost_usd`` null — the
model was in neither the endpoint's ``pricing`` nor genai-prices, or the upstream reported no
usage. Counted per endpoint and model in the database; ``with_usage`` says how many of them
had usage (those are the ones a price would fix, and ``mlx logs --reprice`` then does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import case, func, or_, select

from inference.records import DEFAULT_ENVIRONMENT
from inference.schema import inference as T

if TYPE_CHECKING:
    from inference.store import LogStore


@dataclass(frozen=True, slots=True)
class Unpriced:
    endpoint: str
    model: str
    answers: int
    with_usage: int


def unpriced(
    store: LogStore, *, since: float, environment: str = DEFAULT_ENVIRONMENT
) -> list[Unpriced]:
    """Unpriced answers since ``since``, per (endpoint, model), in that order."""
    model = func.coalesce(T.c.model, T.c.requested_model)
    has_usage = or_(T.c.input_tokens.is_not(None), T.c.output_tokens.is_not(None))
    query = (
        select(
            T.c.endpoint,
            model.label("model"),
            func.count().label("answers"),
            func.sum(case((has_usage, 1), else_=0)).label("with_usage"),
        )
        .where(
            T.c.environment == environment,
            T.c.ts >= since,
            T.c.status == 200,
            T.c.cache_hit.is_(False),
            T.c.cost_usd.is_(None),
            model.is_not(None),
        )
        .group_by(T.c.endpoint, model)
        .order_by(T.c.endpoint, model)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [Unpriced(r.endpoint, r.model, int(r.answers), int(r.with_usage or 0)) for r in rows]
