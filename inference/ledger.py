"""The budget ledger: spend capped atomically across gateway replicas (issue 22, point 2).

Every replica of a gateway shares the inference log's database (SQLite file or PostgreSQL),
so the ledger lives there (``inference.schema``, version 4). Spend is kept per (environment,
budget, period start) in integer micro-dollars and tokens (``inference.money``,
``inference.periods``), never floats.

A request's life, each step one transaction whose decision is made by the database, not by a
read in Python followed by a write (the check-then-increment race of litellm#34732). On
PostgreSQL each of ``reserve``, ``settle``, ``release`` and ``record`` is ONE statement run in
autocommit (one round trip: data-modifying ``WITH`` clauses join its parts); on SQLite, where
a statement costs no round trip, the parts run in one transaction.

* ``reserve``: an upsert of the period's row, ``INSERT … ON CONFLICT DO UPDATE SET reserved =
  reserved + amount WHERE spent + reserved + amount <= limit RETURNING …`` (the first use of a
  period creates its row; PostgreSQL evaluates the condition on the row as a concurrent
  writer committed it, SQLite has one writer at a time), and with it the reservation's row.
  No replica can reserve what another already holds, so spend never exceeds a hard limit by
  more than what settled above its reservation.
* ``settle``: ``DELETE`` the reservation ``RETURNING`` its amount and state first, then move
  the amount from reserved to spent. The reservation row is the single source: settling
  twice finds no row and changes nothing.
* ``release``: a failed or cancelled call; the amount is unreserved, nothing spent.
* ``expire``: a crashed replica never settles. Its reservations past ``expires_at`` are
  released by any replica's sweep; their rows stay (state ``expired``) for ``keep_s`` so a
  late settle of a call that did finish counts its spend once, without unreserving twice.
* ``record``: spend with no reservation (``on_exceed: alert`` budgets: accounting only).

Spend is counted in the period its reservation was made in, even when it settles after the
period rolled over.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)

from inference import periods
from inference.schema import budgets as B
from inference.schema import reservations as R

if TYPE_CHECKING:
    from inference.store import LogStore

#: Expire sweeps take this advisory lock on PostgreSQL (the state uses 7243100, the log's
#: migrations 7243101): two sweeps never lock the same reservation rows in different orders.
_SWEEP_KEY = 7243102

#: How long a reservation released by the sweep is remembered, so that a late ``settle``
#: counts its spend once (a day: far longer than any upstream call).
KEEP_EXPIRED_S = 86_400.0


class Held(StrEnum):
    """The state of a reservation's row."""

    HELD = "held"  # its amount is in ``reserved``
    EXPIRED = "expired"  # a sweep released it; remembered for a late settle


class Closing(StrEnum):
    """What ``settle`` or ``release`` found."""

    ON_TIME = "on_time"  # the reservation was held: its amount is unreserved now
    AFTER_EXPIRY = "after_expiry"  # a sweep had released it: only a settle's spend counts
    ALREADY = "already"  # settled or released before: nothing changed


@dataclass(frozen=True)
class Reservation:
    id: str
    budget: str
    period_start: int  # epoch seconds
    amount_micro: int
    tokens: int
    expires_at: float


@dataclass(frozen=True)
class Refused:
    """A reservation that would have crossed a hard limit; the figures for the 429."""

    budget: str
    period_start: int
    amount_micro: int
    tokens: int
    spent_micro: int
    reserved_micro: int
    limit_micro: int | None
    spent_tokens: int
    reserved_tokens: int
    limit_tokens: int | None

    @property
    def over_usd(self) -> bool:
        used = self.spent_micro + self.reserved_micro + self.amount_micro
        return self.limit_micro is not None and used > self.limit_micro

    @property
    def over_tokens(self) -> bool:
        used = self.spent_tokens + self.reserved_tokens + self.tokens
        return self.limit_tokens is not None and used > self.limit_tokens


@dataclass(frozen=True)
class Status:
    spent_micro: int
    reserved_micro: int
    spent_tokens: int
    reserved_tokens: int
    reservations: int  # held (not settled, released nor expired)


def _key(period_start: int | datetime) -> int:
    if isinstance(period_start, datetime):
        return periods.epoch(period_start)
    if isinstance(period_start, bool) or not isinstance(period_start, int):
        raise ValueError(f"period_start must be epoch seconds or a datetime: {period_start!r}")
    return period_start


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a whole number >= 0, not {value!r}")
    return value


def _limit(value: Any, what: str) -> int | None:
    return None if value is None else _count(value, what)


class Ledger:
    """Budgets of one environment in the log's database. Thread- and process-safe: every
    operation is one transaction on a connection of ``engine``'s pool."""

    def __init__(self, engine: Engine, environment: str = "default", *, owner: Any = None):
        self.engine = engine
        self.environment = environment
        self._owner = owner  # what to close with the ledger (open_ledger's LogStore)
        self._postgresql = engine.dialect.name == "postgresql"

    def close(self) -> None:
        if self._owner is not None:
            self._owner.close()

    # -- one budget row ----------------------------------------------------------------
    def _row(self, budget: str, start: int) -> tuple[Any, ...]:
        return (
            B.c.environment == self.environment,
            B.c.budget == budget,
            B.c.period_start == start,
        )

    def _insert(self) -> Any:
        from sqlalchemy.dialects import postgresql, sqlite

        return postgresql.insert if self._postgresql else sqlite.insert

    @contextmanager
    def _statement(self) -> Iterator[Connection]:
        """Where an operation's one statement runs: on PostgreSQL in autocommit (the statement
        is its own transaction: one round trip, no BEGIN nor COMMIT); on SQLite in a
        transaction (its statements run in-process, the lock is what counts)."""
        if self._postgresql:
            with self.engine.connect() as conn:
                yield conn.execution_options(isolation_level="AUTOCOMMIT")
        else:
            with self.engine.begin() as conn:
                yield conn

    # -- operations --------------------------------------------------------------------
    def reserve(
        self,
        budget: str,
        period_start: int | datetime,
        amount_micro: int,
        tokens: int,
        limit_micro: int | None,
        limit_tokens: int | None,
        ttl_s: float,
        now: float,
    ) -> Reservation | Refused:
        """Hold ``amount_micro`` and ``tokens`` if spent + reserved + them stays within each
        limit given (None: no limit of that kind).

        The decision is one upsert: ``INSERT`` the period's row holding the amount, or ``ON
        CONFLICT DO UPDATE … WHERE spent + reserved + amount <= limit RETURNING``; the
        database evaluates the condition on the row as the last writer committed it. On
        PostgreSQL the reservation's row is inserted by the same statement (a data-modifying
        ``WITH``); on SQLite by a second statement of the same transaction.
        """
        start = _key(period_start)
        amount, toks = _count(amount_micro, "amount_micro"), _count(tokens, "tokens")
        lim_usd, lim_tok = _limit(limit_micro, "limit_micro"), _limit(limit_tokens, "limit_tokens")
        if not ttl_s > 0:
            raise ValueError(f"ttl_s must be > 0 seconds, not {ttl_s!r}")
        reservation = Reservation(uuid.uuid4().hex, budget, start, amount, toks, now + ttl_s)
        if (lim_usd is None or amount <= lim_usd) and (lim_tok is None or toks <= lim_tok):
            with self._statement() as conn:
                if self._hold(conn, reservation, lim_usd, lim_tok, now):
                    return reservation
        with self.engine.connect() as conn:
            return self._refused(conn, reservation, lim_usd, lim_tok)

    def _hold(
        self,
        conn: Connection,
        r: Reservation,
        lim_usd: int | None,
        lim_tok: int | None,
        now: float,
    ) -> bool:
        """Reserve ``r`` if it fits (see ``reserve``); whether it did."""
        within = []
        if lim_usd is not None:
            within.append(B.c.spent_micro + B.c.reserved_micro + r.amount_micro <= lim_usd)
        if lim_tok is not None:
            within.append(B.c.spent_tokens + B.c.reserved_tokens + r.tokens <= lim_tok)
        hold = (
            self._insert()(B)
            .values(
                environment=self.environment,
                budget=r.budget,
                period_start=r.period_start,
                spent_micro=0,
                reserved_micro=r.amount_micro,
                spent_tokens=0,
                reserved_tokens=r.tokens,
                updated_at=now,
            )
            .on_conflict_do_update(
                index_elements=["environment", "budget", "period_start"],
                set_={
                    "reserved_micro": B.c.reserved_micro + r.amount_micro,
                    "reserved_tokens": B.c.reserved_tokens + r.tokens,
                    "updated_at": now,
                },
                where=and_(*within) if within else None,
            )
            .returning(B.c.period_start)
        )
        row = {
            "id": r.id,
            "environment": self.environment,
            "budget": r.budget,
            "period_start": r.period_start,
            "amount_micro": r.amount_micro,
            "tokens": r.tokens,
            "state": Held.HELD.value,
            "created_at": now,
            "expires_at": r.expires_at,
        }
        if not self._postgresql:
            if conn.execute(hold).first() is None:
                return False
            conn.execute(insert(R).values(**row))
            return True
        held = hold.cte("held")
        values = select(*(literal(v, R.c[k].type).label(k) for k, v in row.items()))
        both = (
            insert(R)
            .from_select(list(row), values.select_from(held))
            .add_cte(held)
            .returning(R.c.id)
        )
        return conn.execute(both).first() is not None

    def _refused(
        self, conn: Connection, r: Reservation, lim_usd: int | None, lim_tok: int | None
    ) -> Refused:
        """The figures of a refusal, read just after it (for the message: by then another
        replica may have moved them)."""
        row = conn.execute(
            select(
                B.c.spent_micro, B.c.reserved_micro, B.c.spent_tokens, B.c.reserved_tokens
            ).where(*self._row(r.budget, r.period_start))
        ).first()
        spent, reserved, spent_tokens, reserved_tokens = row if row is not None else (0, 0, 0, 0)
        return Refused(
            budget=r.budget,
            period_start=r.period_start,
            amount_micro=r.amount_micro,
            tokens=r.tokens,
            spent_micro=spent,
            reserved_micro=reserved,
            limit_micro=lim_usd,
            spent_tokens=spent_tokens,
            reserved_tokens=reserved_tokens,
            limit_tokens=lim_tok,
        )

    def _close(
        self, reservation: Reservation | str, spent: int, tokens: int, now: float | None
    ) -> Closing:
        """Delete the reservation's row first (the single source of what it held), then
        unreserve what it still held and add ``spent`` / ``tokens``: on PostgreSQL one
        statement (``WITH gone AS (DELETE … RETURNING …) UPDATE … FROM gone``), on SQLite two
        in one transaction."""
        rid = reservation.id if isinstance(reservation, Reservation) else reservation
        gone = (
            delete(R)
            .where(R.c.id == rid)
            .returning(
                R.c.environment,
                R.c.budget,
                R.c.period_start,
                R.c.amount_micro,
                R.c.tokens,
                R.c.state,
            )
        )
        with self._statement() as conn:
            if self._postgresql:
                g = gone.cte("gone")
                was_held = g.c.state == Held.HELD.value
                values: dict[str, Any] = {
                    "reserved_micro": B.c.reserved_micro
                    - case((was_held, g.c.amount_micro), else_=0),
                    "reserved_tokens": B.c.reserved_tokens - case((was_held, g.c.tokens), else_=0),
                    "spent_micro": B.c.spent_micro + spent,
                    "spent_tokens": B.c.spent_tokens + tokens,
                }
                if now is not None:
                    values["updated_at"] = now
                closed = conn.execute(
                    update(B)
                    .where(
                        B.c.environment == g.c.environment,
                        B.c.budget == g.c.budget,
                        B.c.period_start == g.c.period_start,
                    )
                    .values(**values)
                    .add_cte(g)
                    .returning(g.c.state)
                ).first()
                if closed is None:
                    return Closing.ALREADY
                return Closing.ON_TIME if closed.state == Held.HELD.value else Closing.AFTER_EXPIRY
            row = conn.execute(gone).first()
            if row is None:
                return Closing.ALREADY
            held = row.state == Held.HELD.value
            values = {
                "reserved_micro": B.c.reserved_micro - (row.amount_micro if held else 0),
                "reserved_tokens": B.c.reserved_tokens - (row.tokens if held else 0),
                "spent_micro": B.c.spent_micro + spent,
                "spent_tokens": B.c.spent_tokens + tokens,
            }
            if now is not None:
                values["updated_at"] = now
            conn.execute(
                update(B)
                .where(
                    B.c.environment == row.environment,
                    B.c.budget == row.budget,
                    B.c.period_start == row.period_start,
                )
                .values(**values)
            )
        return Closing.ON_TIME if held else Closing.AFTER_EXPIRY

    def settle(
        self, reservation: Reservation | str, actual_micro: int, actual_tokens: int, now: float
    ) -> Closing:
        """The call finished: its reservation becomes ``actual_micro`` / ``actual_tokens`` of
        spend (in the reservation's period). Idempotent; after a sweep released the
        reservation the spend still counts, once."""
        spent = _count(actual_micro, "actual_micro")
        return self._close(reservation, spent, _count(actual_tokens, "actual_tokens"), now)

    def release(self, reservation: Reservation | str) -> Closing:
        """The call failed or was cancelled: unreserve, spend nothing. Idempotent."""
        return self._close(reservation, 0, 0, None)

    def expire(self, now: float, *, keep_s: float = KEEP_EXPIRED_S) -> int:
        """Release every reservation (of any environment) whose ``expires_at`` is at or before
        ``now``; forget those released more than ``keep_s`` ago. How many were released."""
        if not keep_s >= 0:
            raise ValueError(f"keep_s must be >= 0 seconds, not {keep_s!r}")
        with self.engine.begin() as conn:
            if self._postgresql:
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SWEEP_KEY})")
            rows = conn.execute(
                update(R)
                .where(R.c.state == Held.HELD.value, R.c.expires_at <= now)
                .values(state=Held.EXPIRED.value)
                .returning(
                    R.c.environment, R.c.budget, R.c.period_start, R.c.amount_micro, R.c.tokens
                )
            ).all()
            totals: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0])
            for row in rows:
                total = totals[(row.environment, row.budget, row.period_start)]
                total[0] += row.amount_micro
                total[1] += row.tokens
            for (environment, budget, start), (amount, toks) in sorted(totals.items()):
                conn.execute(
                    update(B)
                    .where(
                        B.c.environment == environment,
                        B.c.budget == budget,
                        B.c.period_start == start,
                    )
                    .values(
                        reserved_micro=B.c.reserved_micro - amount,
                        reserved_tokens=B.c.reserved_tokens - toks,
                        updated_at=now,
                    )
                )
            conn.execute(
                delete(R).where(R.c.state == Held.EXPIRED.value, R.c.expires_at <= now - keep_s)
            )
        return len(rows)

    def record(
        self,
        budget: str,
        period_start: int | datetime,
        actual_micro: int,
        tokens: int,
        now: float,
    ) -> None:
        """Add spend with no reservation (a budget that only alerts: nothing is refused), by
        one upsert."""
        start = _key(period_start)
        spent, toks = _count(actual_micro, "actual_micro"), _count(tokens, "tokens")
        add = (
            self._insert()(B)
            .values(
                environment=self.environment,
                budget=budget,
                period_start=start,
                spent_micro=spent,
                reserved_micro=0,
                spent_tokens=toks,
                reserved_tokens=0,
                updated_at=now,
            )
            .on_conflict_do_update(
                index_elements=["environment", "budget", "period_start"],
                set_={
                    "spent_micro": B.c.spent_micro + spent,
                    "spent_tokens": B.c.spent_tokens + toks,
                    "updated_at": now,
                },
            )
        )
        with self._statement() as conn:
            conn.execute(add)

    def status(self, budget: str, period_start: int | datetime) -> Status:
        """Spend, reservations and tokens of one budget in one period (zeros before any)."""
        start = _key(period_start)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    B.c.spent_micro, B.c.reserved_micro, B.c.spent_tokens, B.c.reserved_tokens
                ).where(*self._row(budget, start))
            ).first()
            held = conn.execute(
                select(func.count())
                .select_from(R)
                .where(
                    R.c.environment == self.environment,
                    R.c.budget == budget,
                    R.c.period_start == start,
                    R.c.state == Held.HELD.value,
                )
            ).scalar_one()
        if row is None:
            return Status(0, 0, 0, 0, held)
        return Status(
            row.spent_micro, row.reserved_micro, row.spent_tokens, row.reserved_tokens, held
        )


def open_ledger(url: str, environment: str = "default") -> Ledger:
    """The ledger in the log at ``url`` (opened and migrated as ``inference.store.open_log``
    does; ``LogError`` if it cannot be)."""
    from inference.store import open_log

    store: LogStore = open_log(url)
    return Ledger(store.engine, environment, owner=store)
