"""Rating: what a call costs the customer (fee) and what it costs us (vendor cost), exactly.

Pure functions over ``Decimal`` and integers, no database: DOMAIN.md's
"Rating" section, step by step.

1. Hold time to seconds: the millisecond remainder rounds up to the next whole
   second when it is at least SERVER_BILLING_HOLD_TIME_PRECISION, then
   SERVER_BILLING_FREE_TIME seconds are taken off.
2. Fee time: the rate's first period, then whole next periods (60/60, 30/6...).
3. Money: connect fee + price per minute x fee time / 60, rounded half-up to
   SERVER_BILLING_FEE_PRECISION places. Zero billable seconds cost nothing,
   connect fee included.

Step 3 is done in integers (ten-thousandths x 60), so the amount is rounded
exactly once: a Decimal division by 60 would round to the context's precision
first and then again to the fee's places.

Which number is rated follows SERVER_BILLING_GATEWAY_ROUTE_PREFIX: 0 the callee
the switch routed on (after the mapping gateway's transforms, so 0044... sent
through a strip-00 rule is rated on 44...), 1 the callee as sent to the vendor
(after the routing gateway's transforms and tech prefix), the numbers the call
core checked the margin and the balance on. The rate is the longest prefix of it with a rate valid at the call's start,
``valid_from <= start < valid_to`` like the call core's snapshot, and among
overlapping windows of one prefix the one that started last wins.
``RateIndex`` does that lookup in memory; ``billing.catalogue`` keeps one per
rate table so a batch of CDRs costs no query per record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from callcore.contract import MONEY_PLACES, PARAMETERS_BY_NAME, TEXT_WIDTHS, default_parameters, fee_time

_NEVER = -(2**63)
_AREA_WIDTH = TEXT_WIDTHS["rate_area"]


@dataclass(frozen=True, slots=True)
class Rate:
    """One price-list line as the rater needs it; validity bounds are epoch milliseconds, None = open."""

    prefix: str
    area: str
    price_per_minute: Decimal
    first_period: int
    next_period: int
    connect_fee: Decimal = Decimal(0)
    valid_from_ms: int | None = None
    valid_to_ms: int | None = None
    # The money in ten-thousandths, worked out once: rating runs thousands of times a second.
    price_units: int = field(init=False, repr=False, compare=False)
    connect_units: int = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        price_units, connect_units = _units(self.price_per_minute), _units(self.connect_fee)
        if price_units < 0 or connect_units < 0:
            raise ValueError("a rate cannot have a negative price or connect fee")
        if self.first_period < 1 or self.next_period < 1:
            raise ValueError("rate periods are at least one second")
        object.__setattr__(self, "price_units", price_units)
        object.__setattr__(self, "connect_units", connect_units)

    def valid_at(self, at_ms: int) -> bool:
        return (self.valid_from_ms is None or self.valid_from_ms <= at_ms) and (
            self.valid_to_ms is None or at_ms < self.valid_to_ms
        )


@dataclass(frozen=True, slots=True)
class RatingParameters:
    """The system parameters rating depends on (defaults as declared in callcore.contract)."""

    fee_precision: int = 2
    hold_time_precision: int = 50
    free_time: int = 0
    gateway_route_prefix: int = 0

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> RatingParameters:
        """From {name: raw value} as stored (VOS's misspelt alias accepted); a bad value falls back to its default."""
        typed = default_parameters()
        for name, raw in values.items():
            declaration = PARAMETERS_BY_NAME.get(name)
            if declaration is None:
                continue
            try:
                typed[declaration.name] = declaration.parse(raw)
            except ValueError:
                continue
        return cls(
            fee_precision=int(typed["SERVER_BILLING_FEE_PRECISION"]),
            hold_time_precision=int(typed["SERVER_BILLING_HOLD_TIME_PRECISION"]),
            free_time=int(typed["SERVER_BILLING_FREE_TIME"]),
            gateway_route_prefix=int(typed["SERVER_BILLING_GATEWAY_ROUTE_PREFIX"]),
        )


def hold_seconds(hold_time_ms: int, hold_time_precision: int = 50, free_time: int = 0) -> int:
    """Whole seconds to bill: the remainder rounds up at ``hold_time_precision`` ms, less the free time."""
    if hold_time_ms <= 0:
        return 0
    seconds, remainder = divmod(hold_time_ms, 1000)
    if remainder and remainder >= hold_time_precision:
        seconds += 1
    return max(seconds - free_time, 0)


def _units(amount: Decimal) -> int:
    scaled = Decimal(amount).scaleb(MONEY_PLACES)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more than {MONEY_PLACES} decimal places")
    return int(scaled)


_ZERO = [Decimal(0).scaleb(-places) for places in range(MONEY_PLACES + 1)]


def price(rate: Rate, billed_seconds: int, fee_precision: int = 2) -> Decimal:
    """Connect fee + price per minute x billed seconds / 60, rounded half-up to ``fee_precision`` places."""
    if not 0 <= fee_precision <= MONEY_PLACES:
        raise ValueError(f"fee precision must be 0-{MONEY_PLACES}, got {fee_precision}")
    if billed_seconds <= 0:
        return _ZERO[fee_precision]
    # In units of 1/(60 x 10^4): every term an exact integer.
    numerator = rate.connect_units * 60 + rate.price_units * billed_seconds
    denominator = 60 * 10 ** (MONEY_PLACES - fee_precision)
    rounded = (2 * numerator + denominator) // (2 * denominator)  # half-up, for a non-negative amount
    return Decimal(rounded).scaleb(-fee_precision)


@dataclass(frozen=True, slots=True)
class Charge:
    """One side of a call rated: the billed seconds, the money, and the rate used (None = no rate found)."""

    fee_time: int
    amount: Decimal
    rate: Rate | None

    @property
    def prefix(self) -> str:
        return self.rate.prefix if self.rate else ""

    @property
    def area(self) -> str:
        return self.rate.area if self.rate else ""


def charge(rate: Rate | None, hold_time_ms: int, params: RatingParameters = RatingParameters()) -> Charge:
    """Rate one side of a call; without a rate it costs nothing (and says so with ``rate=None``)."""
    if rate is None:
        return Charge(0, _ZERO[params.fee_precision], None)
    seconds = hold_seconds(hold_time_ms, params.hold_time_precision, params.free_time)
    billed = fee_time(seconds, rate.first_period, rate.next_period)
    return Charge(billed, price(rate, billed, params.fee_precision), rate)


class RateIndex:
    """Longest-prefix lookup over one rate table: a dict probe per prefix length present, longest first."""

    __slots__ = ("_by_prefix", "_lengths")

    def __init__(self, rates: Iterable[Rate]):
        by_prefix: dict[str, list[Rate]] = {}
        for rate in rates:
            by_prefix.setdefault(rate.prefix, []).append(rate)
        # The latest start first, so an overlapping newer price replaces the older one.
        self._by_prefix = {
            prefix: tuple(sorted(group, key=_start, reverse=True)) for prefix, group in by_prefix.items()
        }
        self._lengths = sorted({len(prefix) for prefix in self._by_prefix}, reverse=True)

    def __len__(self) -> int:
        return sum(len(group) for group in self._by_prefix.values())

    def lookup(self, number: str, at_ms: int) -> Rate | None:
        """The rate of the longest prefix of ``number`` that has one valid at ``at_ms``."""
        size = len(number)
        for length in self._lengths:
            if length > size:
                continue
            group = self._by_prefix.get(number[:length])
            if group is not None:
                for rate in group:
                    if rate.valid_at(at_ms):
                        return rate
        return None


def _start(rate: Rate) -> int:
    return _NEVER if rate.valid_from_ms is None else rate.valid_from_ms


def rated_number(
    callee_number: str,
    callee_number_out: str,
    params: RatingParameters = RatingParameters(),
    callee_number_routed: str = "",
) -> str:
    """The number rated: the callee as routed (mode 0) or as sent out (mode 1).

    A record from before the CDR carried the routed callee has it empty: the
    callee as received stands in, a leading + dropped as the call core does,
    which is right unless the mapping gateway transformed it.
    """
    if params.gateway_route_prefix == 1:
        return callee_number_out
    if callee_number_routed:
        return callee_number_routed
    return callee_number[1:] if callee_number.startswith("+") else callee_number


@dataclass(frozen=True, slots=True)
class Rating:
    """A call rated both ways: the customer's fee and the vendor's cost (VOS agentFee)."""

    customer: Charge
    vendor: Charge

    @property
    def fee(self) -> Decimal:
        return self.customer.amount

    @property
    def vendor_cost(self) -> Decimal:
        return self.vendor.amount

    @property
    def margin(self) -> Decimal:
        return self.customer.amount - self.vendor.amount

    def columns(self) -> dict:
        """The CDR's rated columns (an area cut to its column, as the rate table's may be longer)."""
        return {
            "fee_time": self.customer.fee_time,
            "fee": self.customer.amount,
            "vendor_cost": self.vendor.amount,
            "rate_prefix": self.customer.prefix,
            "rate_area": self.customer.area[:_AREA_WIDTH],
            "vendor_rate_prefix": self.vendor.prefix,
            "vendor_rate_area": self.vendor.area[:_AREA_WIDTH],
        }


def rate_call(
    *,
    callee_number: str,
    callee_number_out: str,
    start_ms: int,
    hold_time_ms: int,
    customer_rates: RateIndex | None,
    vendor_rates: RateIndex | None,
    params: RatingParameters = RatingParameters(),
    callee_number_routed: str = "",
) -> Rating:
    """Rate a call against the customer's table and the vendor clearing account's table.

    A table of None (no account, or an account without a rate table) rates
    that side at nothing. The rate is looked up even for a call that never
    connected, so its CDR still names the destination it was for.
    """
    number = rated_number(callee_number, callee_number_out, params, callee_number_routed)
    customer_rate = customer_rates.lookup(number, start_ms) if customer_rates is not None else None
    vendor_rate = vendor_rates.lookup(number, start_ms) if vendor_rates is not None else None
    return Rating(charge(customer_rate, hold_time_ms, params), charge(vendor_rate, hold_time_ms, params))
