"""``mlx logs ENDPOINT --reprice``: recompute the cost of logged LLM answers from their usage.

Prices get corrected (a spec's negotiated rate was wrong, a model was missing from the price
table and is now in it); the log keeps each answer's raw usage and the models asked for and
answered, so its cost can be computed again instead of being wrong forever. What is priced
again: the endpoint's records in the window that have usage (``input_tokens`` or
``output_tokens``) and a model (records from before schema 5 have none: they are left alone,
as are records without usage), and that were not cache hits (a hit made no upstream call: its
0 is true). The price comes from ``price_of`` — the gateway's pricing with the spec's current
``pricing`` — so a repriced record is what the gateway would log today, ``price_source`` and
rates included.

Rows are read and rewritten in batches by row id, each batch in one transaction: a batch is
repriced entirely or not at all, and the gateway keeps appending meanwhile (new rows are priced
by the gateway; rows are never rewritten by it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import and_, or_, select, update

from inference.records import DEFAULT_ENVIRONMENT
from inference.schema import inference as T

if TYPE_CHECKING:
    from inference.store import LogStore


class Price(Protocol):
    """What ``common.pricing.price`` answers (kept structural: the log does not import the
    gateway)."""

    @property
    def cost_usd(self) -> float | None: ...
    @property
    def source(self) -> str | None: ...
    @property
    def input_per_1m(self) -> float | None: ...
    @property
    def output_per_1m(self) -> float | None: ...
    @property
    def cached_input_per_1m(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Usage:
    """One stored record's usage and models, as the pricing reads them."""

    requested_model: str | None
    model: str | None
    input_tokens: int | None
    output_tokens: int | None
    cached_input_tokens: int | None
    ts: float


@dataclass(frozen=True, slots=True)
class Repriced:
    """What a reprice did. Totals sum the priced records' ``cost_usd`` (an unpriced record adds
    nothing and is counted in ``unpriced_*`` instead, never as 0)."""

    records: int
    changed: int
    before_usd: float
    after_usd: float
    unpriced_before: int
    unpriced_after: int

    def to_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "changed": self.changed,
            "before_usd": self.before_usd,
            "after_usd": self.after_usd,
            "unpriced_before": self.unpriced_before,
            "unpriced_after": self.unpriced_after,
        }


_PRICE_COLUMNS = (
    "cost_usd",
    "price_source",
    "price_input_per_1m",
    "price_output_per_1m",
    "price_cached_input_per_1m",
)


def reprice(
    store: LogStore,
    endpoint: str,
    price_of: Callable[[Usage], Price],
    *,
    environment: str = DEFAULT_ENVIRONMENT,
    since: float | None = None,
    batch: int = 500,
) -> Repriced:
    """Price the endpoint's records again (see the module's docstring); one transaction per
    ``batch`` rows."""
    where = [
        T.c.environment == environment,
        T.c.endpoint == endpoint,
        T.c.cache_hit.is_(False),
        or_(T.c.input_tokens.is_not(None), T.c.output_tokens.is_not(None)),
        or_(T.c.model.is_not(None), T.c.requested_model.is_not(None)),
    ]
    if since is not None:
        where.append(T.c.ts >= since)
    columns = [T.c.id, T.c.requested_model, T.c.model, T.c.input_tokens, T.c.output_tokens]
    columns += [T.c.cached_input_tokens, T.c.ts, *(T.c[name] for name in _PRICE_COLUMNS)]
    after_id = -1
    records = changed = unpriced_before = unpriced_after = 0
    before_usd = after_usd = 0.0
    while True:
        with store.engine.begin() as conn:
            rows = conn.execute(
                select(*columns)
                .where(and_(*where), T.c.id > after_id)
                .order_by(T.c.id)
                .limit(batch)
            ).all()
            if not rows:
                break
            updates = []
            for row in rows:
                usage = Usage(
                    row.requested_model,
                    row.model,
                    row.input_tokens,
                    row.output_tokens,
                    row.cached_input_tokens,
                    row.ts,
                )
                new = price_of(usage)
                values = {
                    "cost_usd": new.cost_usd,
                    "price_source": new.source,
                    "price_input_per_1m": new.input_per_1m,
                    "price_output_per_1m": new.output_per_1m,
                    "price_cached_input_per_1m": new.cached_input_per_1m,
                }
                old = {name: getattr(row, name) for name in _PRICE_COLUMNS}
                records += 1
                if old["cost_usd"] is None:
                    unpriced_before += 1
                else:
                    before_usd += old["cost_usd"]
                if new.cost_usd is None:
                    unpriced_after += 1
                else:
                    after_usd += new.cost_usd
                if any(not _same(old[name], values[name]) for name in _PRICE_COLUMNS):
                    updates.append((row.id, values))
            for row_id, values in updates:
                conn.execute(update(T).where(T.c.id == row_id).values(**values))
            changed += len(updates)
            after_id = rows[-1].id
    return Repriced(records, changed, before_usd, after_usd, unpriced_before, unpriced_after)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)
    return bool(a == b)
