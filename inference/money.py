"""Money as integer micro-dollars: what the budget ledger adds, compares and stores.

Floats do not add exactly (0.1 + 0.2 != 0.3) and a limit compared against a float sum can be
crossed by rounding alone, so spend is kept in integers (1 USD = 1,000,000 micro-dollars).
A float is converted through its shortest decimal text (``repr``), so 0.1 is 100,000 and not
100,000.0000000000055...

Which way to round depends on what the amount is for (``Rounding``):

* a reservation (the worst case of a request) rounds UP: the ledger never reserves less than
  the request can cost;
* an actual cost rounds HALF UP: over many calls the errors cancel instead of piling up
  in one direction (at most half a micro-dollar a call);
* a limit rounds DOWN: a hard limit is never raised by rounding.

Negative, NaN and infinite amounts are refused: a cost is never negative.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum

MICRO = 1_000_000
_ONE = Decimal(1)


class Rounding(StrEnum):
    RESERVE = "reserve"  # up
    ACTUAL = "actual"  # half up
    LIMIT = "limit"  # down


_MODES = {
    Rounding.RESERVE: ROUND_CEILING,
    Rounding.ACTUAL: ROUND_HALF_UP,
    Rounding.LIMIT: ROUND_FLOOR,
}


def _decimal(usd: Decimal | float | int | str, what: str) -> Decimal:
    if isinstance(usd, bool):
        raise ValueError(f"{what} must be an amount in USD, not {usd!r}")
    try:
        value = (
            usd
            if isinstance(usd, Decimal)
            else Decimal(str(usd) if isinstance(usd, float) else usd)
        )
    except InvalidOperation:
        raise ValueError(f"{what} must be an amount in USD, not {usd!r}") from None
    if not value.is_finite():
        raise ValueError(f"{what} must be a finite amount in USD, not {usd!r}")
    if value < 0:
        raise ValueError(f"{what} cannot be negative: {usd!r} USD")
    return value


def to_micro(
    usd: Decimal | float | int | str, rounding: Rounding, *, what: str = "an amount"
) -> int:
    """``usd`` in whole micro-dollars, rounded as ``rounding`` says (see the module doc)."""
    value = _decimal(usd, what) * MICRO
    try:
        return int(value.quantize(_ONE, rounding=_MODES[rounding]))
    except InvalidOperation:
        raise ValueError(f"{what} is too large: {usd!r} USD") from None


def to_usd(micro: int) -> Decimal:
    """Micro-dollars as an exact ``Decimal`` of USD (for messages and ``mlx show``)."""
    return Decimal(micro).scaleb(-6)
