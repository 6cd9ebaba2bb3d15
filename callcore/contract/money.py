"""Money as both sides count it: amounts in integer units of 10^-MONEY_PLACES, and billed time."""

from __future__ import annotations

from decimal import Decimal

__all__ = [
    "MONEY_PLACES",
    "MONEY_SCALE",
    "to_units",
    "from_units",
    "fee_time",
]


# The portal's MONEY decimal places: every stored amount is a whole number of units, which Lua's
# doubles (the call core's reservations) hold exactly up to 2^53.
MONEY_PLACES = 4
MONEY_SCALE = 10**MONEY_PLACES


def to_units(amount: Decimal) -> int:
    """An amount in units, rounded to the nearest unit (half-even, Decimal's default)."""
    return int((amount * MONEY_SCALE).to_integral_value())


def from_units(units: int) -> Decimal:
    return Decimal(units) / MONEY_SCALE


def fee_time(seconds: int, first_period: int, next_period: int) -> int:
    """Billed seconds: the first period, then as many whole next periods as the rest needs."""
    if seconds <= 0:
        return 0
    if seconds <= first_period:
        return first_period
    return first_period + -(-(seconds - first_period) // next_period) * next_period
