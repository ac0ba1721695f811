"""The budget ledger's operations, each branch on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from inference import schema
from inference.ledger import Closing, Ledger, Refused, Reservation, Status, open_ledger

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
JAN = 1_767_225_600  # the month's start, epoch seconds
FEB = 1_769_904_000  # 2026-02-01T00:00:00Z
TTL = 60.0


@pytest.fixture
def ledger(log_url: str) -> Iterator[Ledger]:
    book = open_ledger(log_url)
    yield book
    book.close()


def held(
    ledger: Ledger,
    amount: int,
    *,
    limit: int | None = None,
    tokens: int = 0,
    limit_tokens: int | None = None,
    budget: str = "b",
    start: int = JAN,
    now: float = T0,
) -> Reservation:
    got = ledger.reserve(budget, start, amount, tokens, limit, limit_tokens, TTL, now)
    assert isinstance(got, Reservation), got
    return got


def test_a_first_reservation_creates_the_period_row(ledger: Ledger) -> None:
    assert ledger.status("b", JAN) == Status(0, 0, 0, 0, 0)
    r = held(ledger, 700, tokens=30, limit=1000, limit_tokens=100)
    assert (r.budget, r.period_start, r.amount_micro, r.tokens) == ("b", JAN, 700, 30)
    assert r.expires_at == T0 + TTL
    assert ledger.status("b", JAN) == Status(0, 700, 0, 30, 1)
    # the period can be given as its datetime
    assert ledger.status("b", datetime(2026, 1, 1, tzinfo=UTC)) == Status(0, 700, 0, 30, 1)


def test_reserving_up_to_the_limit_exactly_and_not_one_micro_more(ledger: Ledger) -> None:
    held(ledger, 600, limit=1000)
    held(ledger, 400, limit=1000)  # 600 + 400 == 1000: allowed
    refused = ledger.reserve("b", JAN, 1, 0, 1000, None, TTL, T0)
    assert refused == Refused(
        budget="b",
        period_start=JAN,
        amount_micro=1,
        tokens=0,
        spent_micro=0,
        reserved_micro=1000,
        limit_micro=1000,
        spent_tokens=0,
        reserved_tokens=0,
        limit_tokens=None,
    )
    assert refused.over_usd and not refused.over_tokens
    assert ledger.status("b", JAN).reservations == 2  # a refusal leaves no reservation row


def test_spent_and_reserved_both_count_against_the_limit(ledger: Ledger) -> None:
    r = held(ledger, 500, limit=1000)
    assert ledger.settle(r, 450, 0, T0 + 1) is Closing.ON_TIME
    held(ledger, 500, limit=1000)  # 450 spent + 500 reserved
    refused = ledger.reserve("b", JAN, 51, 0, 1000, None, TTL, T0)
    assert isinstance(refused, Refused)
    assert (refused.spent_micro, refused.reserved_micro) == (450, 500)
    held(ledger, 50, limit=1000)  # exactly 1000


def test_a_reservation_bigger_than_the_limit_is_refused_on_a_new_period(ledger: Ledger) -> None:
    refused = ledger.reserve("b", FEB, 2000, 0, 1000, None, TTL, T0)
    assert isinstance(refused, Refused) and refused.spent_micro == refused.reserved_micro == 0
    assert ledger.status("b", FEB) == Status(0, 0, 0, 0, 0)
    too_many = ledger.reserve("b", FEB, 0, 101, None, 100, TTL, T0)
    assert isinstance(too_many, Refused) and too_many.over_tokens
    assert ledger.status("b", FEB) == Status(0, 0, 0, 0, 0)


def test_a_token_limit_refuses_on_its_own(ledger: Ledger) -> None:
    held(ledger, 10, tokens=80, limit_tokens=100)  # no usd limit
    refused = ledger.reserve("b", JAN, 10, 21, None, 100, TTL, T0)
    assert isinstance(refused, Refused) and refused.over_tokens and not refused.over_usd
    assert (refused.reserved_tokens, refused.limit_tokens, refused.limit_micro) == (80, 100, None)
    held(ledger, 10**9, tokens=20, limit_tokens=100)  # 100 tokens: allowed; usd unlimited


def test_no_limit_always_reserves(ledger: Ledger) -> None:
    for _ in range(3):
        held(ledger, 10**12)
    assert ledger.status("b", JAN).reserved_micro == 3 * 10**12  # beyond 32 bits


def test_settle_moves_the_reservation_to_spend_once(ledger: Ledger) -> None:
    r = held(ledger, 900, tokens=50, limit=1000)
    assert ledger.settle(r, 420, 33, T0 + 2) is Closing.ON_TIME
    assert ledger.status("b", JAN) == Status(420, 0, 33, 0, 0)
    assert ledger.settle(r, 420, 33, T0 + 3) is Closing.ALREADY  # a retried settle
    assert ledger.settle(r.id, 999, 1, T0 + 3) is Closing.ALREADY  # by id, too
    assert ledger.release(r) is Closing.ALREADY
    assert ledger.status("b", JAN) == Status(420, 0, 33, 0, 0)


def test_settle_above_the_reservation_counts_the_actual_cost(ledger: Ledger) -> None:
    r = held(ledger, 900, limit=1000)
    assert ledger.settle(r, 1300, 0, T0 + 2) is Closing.ON_TIME  # a bad estimate
    assert ledger.status("b", JAN) == Status(1300, 0, 0, 0, 0)
    assert isinstance(ledger.reserve("b", JAN, 0, 0, 1000, None, TTL, T0), Refused)


def test_release_spends_nothing_once(ledger: Ledger) -> None:
    keep = held(ledger, 300, tokens=5)
    r = held(ledger, 700, tokens=9)
    assert ledger.release(r) is Closing.ON_TIME
    assert ledger.status("b", JAN) == Status(0, 300, 0, 5, 1)
    assert ledger.release(r) is Closing.ALREADY
    assert ledger.settle(r, 700, 9, T0) is Closing.ALREADY
    assert ledger.status("b", JAN) == Status(0, 300, 0, 5, 1)
    assert ledger.settle(keep, 100, 5, T0) is Closing.ON_TIME


def test_expire_releases_only_what_is_past_its_ttl(ledger: Ledger) -> None:
    early = held(ledger, 100, tokens=1, now=T0)
    late = held(ledger, 200, tokens=2, now=T0 + 30)
    other = held(ledger, 400, budget="other", now=T0)
    assert ledger.expire(T0 + TTL - 0.5) == 0
    assert ledger.status("b", JAN) == Status(0, 300, 0, 3, 2)
    assert ledger.expire(T0 + TTL) == 2  # at expires_at: early and other, summed per budget
    assert ledger.status("b", JAN) == Status(0, 200, 0, 2, 1)
    assert ledger.status("other", JAN) == Status(0, 0, 0, 0, 0)
    assert ledger.expire(T0 + TTL) == 0  # a second sweep releases nothing twice
    assert ledger.status("b", JAN) == Status(0, 200, 0, 2, 1)
    # a late settle of a call that did finish counts its spend once, unreserves nothing
    assert ledger.settle(early, 90, 1, T0 + 100) is Closing.AFTER_EXPIRY
    assert ledger.status("b", JAN) == Status(90, 200, 1, 2, 1)
    assert ledger.settle(early, 90, 1, T0 + 101) is Closing.ALREADY
    assert ledger.release(other) is Closing.AFTER_EXPIRY  # nothing left to release
    assert ledger.status("other", JAN) == Status(0, 0, 0, 0, 0)
    assert ledger.settle(late, 150, 2, T0 + 40) is Closing.ON_TIME
    assert ledger.status("b", JAN) == Status(240, 0, 3, 0, 0)


def test_expired_reservations_are_forgotten_after_keep_s(ledger: Ledger) -> None:
    r = held(ledger, 100)
    assert ledger.expire(T0 + TTL, keep_s=10) == 1
    assert ledger.expire(T0 + TTL + 9, keep_s=10) == 0
    with ledger.engine.connect() as conn:
        assert conn.execute(select(schema.reservations.c.state)).scalars().all() == ["expired"]
    ledger.expire(T0 + TTL + 10, keep_s=10)
    with ledger.engine.connect() as conn:
        assert conn.execute(select(schema.reservations.c.id)).all() == []
    assert ledger.settle(r, 100, 0, T0 + 999) is Closing.ALREADY  # too late to count
    assert ledger.status("b", JAN) == Status(0, 0, 0, 0, 0)


def test_expire_sweeps_every_environment(log_url: str) -> None:
    prod, dev = open_ledger(log_url, "prod"), open_ledger(log_url, "dev")
    held(prod, 100)
    held(dev, 200)
    assert dev.expire(T0 + TTL) == 2  # a crashed prod replica's reservation, released by dev
    assert prod.status("b", JAN) == Status(0, 0, 0, 0, 0) == dev.status("b", JAN)
    prod.close()
    dev.close()


def test_record_adds_spend_without_a_reservation_or_a_limit(ledger: Ledger) -> None:
    ledger.record("alerting", FEB, 5_000_000, 1200, T0)  # creates the period row
    ledger.record("alerting", FEB, 7, 3, T0 + 1)
    assert ledger.status("alerting", FEB) == Status(5_000_007, 0, 1203, 0, 0)
    assert ledger.status("alerting", JAN) == Status(0, 0, 0, 0, 0)


def test_periods_budgets_and_environments_are_counted_apart(log_url: str) -> None:
    prod, dev = open_ledger(log_url, "prod"), open_ledger(log_url, "dev")
    jan = held(prod, 1000, limit=1000)
    held(prod, 1000, limit=1000, start=FEB)  # a new month: a new row
    held(prod, 1000, limit=1000, budget="c")
    held(dev, 1000, limit=1000)
    # a reservation of January settled after the rollover counts in January
    assert prod.settle(jan, 800, 0, FEB + 5.0) is Closing.ON_TIME
    assert prod.status("b", JAN) == Status(800, 0, 0, 0, 0)
    assert prod.status("b", FEB) == Status(0, 1000, 0, 0, 1)
    assert dev.status("b", JAN) == Status(0, 1000, 0, 0, 1)
    prod.close()
    dev.close()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda book: book.reserve("b", JAN, -1, 0, None, None, TTL, T0), "amount_micro must be"),
        (lambda book: book.reserve("b", JAN, 1.5, 0, None, None, TTL, T0), "amount_micro must be"),
        (lambda book: book.reserve("b", JAN, 1, True, None, None, TTL, T0), "tokens must be"),
        (lambda book: book.reserve("b", JAN, 1, 0, -5, None, TTL, T0), "limit_micro must be"),
        (lambda book: book.reserve("b", JAN, 1, 0, None, 0.5, TTL, T0), "limit_tokens must be"),
        (lambda book: book.reserve("b", JAN, 1, 0, None, None, 0, T0), "ttl_s must be > 0"),
        (lambda book: book.reserve("b", 1.5, 1, 0, None, None, TTL, T0), "period_start must be"),
        (lambda book: book.settle("x", -1, 0, T0), "actual_micro must be"),
        (lambda book: book.record("b", JAN, 0, -2, T0), "tokens must be"),
        (lambda book: book.expire(T0, keep_s=-1), "keep_s must be >= 0"),
    ],
)
def test_bad_input_is_a_clear_error(ledger: Ledger, call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(ledger)  # type: ignore[operator]
    assert ledger.status("b", JAN) == Status(0, 0, 0, 0, 0)
