"""Rating is exact: DOMAIN.md's worked examples, every parameter it depends on, and properties that always hold."""

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.rating import (
    Rate,
    RateIndex,
    RatingParameters,
    charge,
    hold_seconds,
    price,
    rate_call,
    rated_number,
)
from callcore.contract import fee_time


def ms(*args):
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp() * 1000)


def rate(price_per_minute="0.10", first=60, nxt=60, connect_fee="0", prefix="1", area="", **validity):
    return Rate(prefix, area, Decimal(price_per_minute), first, nxt, Decimal(connect_fee), **validity)


@pytest.mark.parametrize(
    ("first", "nxt", "billed", "fee"),
    [(60, 60, 120, "0.20"), (30, 6, 66, "0.11"), (6, 6, 66, "0.11"), (1, 1, 61, "0.10")],
)
def test_domain_worked_examples_61_seconds_at_ten_cents_a_minute(first, nxt, billed, fee):
    result = charge(rate("0.10", first, nxt), 61_000)
    assert result.fee_time == billed
    assert result.amount == Decimal(fee)
    assert str(result.amount) == fee  # two places, as SERVER_BILLING_FEE_PRECISION's default says


@pytest.mark.parametrize(
    ("precision", "fee"), [(0, "0"), (1, "0.1"), (2, "0.13"), (3, "0.125"), (4, "0.1255")]
)  # fmt: skip
def test_the_fee_is_rounded_to_the_fee_precision(precision, fee):
    # 0.1234 x 61 / 60 = 0.125456...
    result = charge(rate("0.1234", 1, 1), 61_000, RatingParameters(fee_precision=precision))
    assert str(result.amount) == fee


@pytest.mark.parametrize(
    ("per_minute", "seconds", "precision", "fee"),
    [("0.25", 60, 1, "0.3"), ("0.35", 60, 1, "0.4"), ("0.0030", 10, 3, "0.001"), ("0.0001", 30, 4, "0.0001")],
)
def test_a_half_rounds_up_never_to_even(per_minute, seconds, precision, fee):
    result = charge(rate(per_minute, 1, 1), seconds * 1000, RatingParameters(fee_precision=precision))
    assert str(result.amount) == fee


def test_a_precision_outside_0_to_4_is_refused():
    with pytest.raises(ValueError):
        price(rate(), 60, fee_precision=5)


@pytest.mark.parametrize(
    ("hold_ms", "precision", "seconds"),
    [
        (60_049, 50, 60),
        (60_050, 50, 61),
        (60_000, 0, 60),
        (60_001, 0, 61),
        (60_998, 999, 60),
        (60_999, 999, 61),
        (49, 50, 0),
        (50, 50, 1),
    ],
)
def test_the_millisecond_remainder_rounds_up_at_the_hold_time_precision(hold_ms, precision, seconds):
    assert hold_seconds(hold_ms, precision) == seconds
    result = charge(rate("0.60", 1, 1), hold_ms, RatingParameters(hold_time_precision=precision))
    assert result.fee_time == seconds
    assert result.amount == Decimal("0.01") * seconds


def test_free_time_comes_off_before_the_periods():
    params = RatingParameters(free_time=5)
    assert charge(rate("0.10", 60, 60), 61_000, params).fee_time == 60
    assert charge(rate("0.10", 1, 1), 61_000, params).amount == Decimal("0.09")


def test_a_call_inside_the_free_time_costs_nothing_not_even_the_connect_fee():
    result = charge(rate("0.10", 60, 60, connect_fee="0.05"), 4_999, RatingParameters(free_time=5))
    assert (result.fee_time, result.amount) == (0, Decimal("0"))


def test_the_connect_fee_is_added_before_rounding():
    assert charge(rate("0.10", 60, 60, connect_fee="0.05"), 1_000).amount == Decimal("0.15")
    # 0.0049 + 0.0001 x 60/60 = 0.005: rounds up only because the two are summed first.
    assert charge(rate("0.0001", 60, 60, connect_fee="0.0049"), 1_000).amount == Decimal("0.01")


def test_zero_hold_time_costs_nothing():
    result = charge(rate("9.99", 60, 60, connect_fee="1"), 0)
    assert (result.fee_time, result.amount) == (0, Decimal(0))
    assert result.rate is not None  # still says which rate the destination has


def test_the_longest_prefix_wins_and_a_catch_all_prefix_matches_the_rest():
    index = RateIndex([rate("0.10", prefix="44"), rate("0.30", prefix="447"), rate("0.90", prefix="")])
    assert index.lookup("447700900123", 0).price_per_minute == Decimal("0.30")
    assert index.lookup("441632960000", 0).price_per_minute == Decimal("0.10")
    assert index.lookup("33123", 0).price_per_minute == Decimal("0.90")
    assert RateIndex([rate(prefix="44")]).lookup("33123", 0) is None


def test_a_rate_applies_from_valid_from_up_to_but_not_including_valid_to():
    january = rate("0.10", prefix="44", valid_from_ms=ms(2026, 1, 1), valid_to_ms=ms(2026, 2, 1))
    february = rate("0.20", prefix="44", valid_from_ms=ms(2026, 2, 1))
    index = RateIndex([january, february])
    assert index.lookup("4420", ms(2026, 2, 1) - 1) is january
    assert index.lookup("4420", ms(2026, 2, 1)) is february
    assert index.lookup("4420", ms(2025, 12, 31)) is None


def test_an_expired_longer_prefix_falls_back_to_a_valid_shorter_one():
    index = RateIndex([rate("0.10", prefix="44"), rate("0.30", prefix="447", valid_to_ms=ms(2026, 1, 1))])
    assert index.lookup("4477", ms(2025, 6, 1)).prefix == "447"
    assert index.lookup("4477", ms(2026, 6, 1)).prefix == "44"


def test_among_overlapping_windows_the_one_that_started_last_wins():
    open_ended = rate("0.10", prefix="44")
    newer = rate("0.20", prefix="44", valid_from_ms=ms(2026, 3, 1))
    index = RateIndex([newer, open_ended])
    assert index.lookup("44", ms(2026, 3, 2)) is newer
    assert index.lookup("44", ms(2026, 2, 28)) is open_ended


def test_gateway_route_prefix_chooses_the_callee_as_received_or_as_sent():
    index = RateIndex([rate("0.10", prefix="44"), rate("0.50", prefix="9999")])
    call = {
        "callee_number": "+447700900123",
        "callee_number_out": "9999447700900123",
        "start_ms": 0,
        "hold_time_ms": 60_000,
        "customer_rates": index,
        "vendor_rates": None,
    }
    assert rate_call(**call).fee == Decimal("0.10")
    assert rate_call(**call, params=RatingParameters(gateway_route_prefix=1)).fee == Decimal("0.50")
    assert rated_number("+4477", "99994477") == "4477"


def test_the_customer_and_the_vendor_are_rated_each_against_their_own_table():
    customer = RateIndex([rate("0.10", 30, 6, prefix="44", area="UK")])
    vendor = RateIndex([rate("0.06", 1, 1, prefix="4", area="Europe")])
    rated = rate_call(
        callee_number="4420",
        callee_number_out="4420",
        start_ms=0,
        hold_time_ms=61_000,
        customer_rates=customer,
        vendor_rates=vendor,
    )
    assert (rated.customer.fee_time, rated.fee, rated.customer.prefix, rated.customer.area) == (
        66,
        Decimal("0.11"),
        "44",
        "UK",
    )
    assert (rated.vendor.fee_time, rated.vendor_cost, rated.vendor.prefix) == (61, Decimal("0.06"), "4")
    assert rated.margin == Decimal("0.05")


def test_a_call_with_no_rate_costs_nothing_and_names_no_prefix():
    rated = rate_call(
        callee_number="1",
        callee_number_out="1",
        start_ms=0,
        hold_time_ms=60_000,
        customer_rates=RateIndex([]),
        vendor_rates=None,
    )
    assert (rated.fee, rated.vendor_cost, rated.customer.prefix, rated.customer.fee_time) == (0, 0, "", 0)


def test_parameters_come_from_stored_values_with_the_vos_spelling_and_bad_values_ignored():
    params = RatingParameters.from_values(
        {"SERVER_BILLING_FEE_PRECISTION": "3", "SERVER_BILLING_FREE_TIME": "oops", "SS_MAX_CPS": "5"}
    )
    assert params == RatingParameters(fee_precision=3)


# ---------------------------------------------------------------------------
# Properties

money = st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False)
periods = st.sampled_from([1, 6, 30, 60]) | st.integers(1, 600)
hold_ms = st.integers(0, 4 * 3600 * 1000)
parameters = st.builds(
    RatingParameters,
    fee_precision=st.integers(0, 4),
    hold_time_precision=st.integers(0, 999),
    free_time=st.integers(0, 120),
)
rates = st.builds(
    Rate,
    prefix=st.just("1"),
    area=st.just(""),
    price_per_minute=money,
    first_period=periods,
    next_period=periods,
    connect_fee=money,
)


@given(rates, hold_ms, parameters)
def test_the_fee_is_never_negative(a_rate, hold, params):
    assert charge(a_rate, hold, params).amount >= 0


@given(rates, hold_ms, hold_ms, parameters)
def test_the_fee_never_falls_as_the_call_gets_longer(a_rate, one, other, params):
    shorter, longer = sorted((one, other))
    assert charge(a_rate, shorter, params).amount <= charge(a_rate, longer, params).amount


@given(st.integers(0, 20_000), periods, periods)
def test_fee_time_is_the_first_period_plus_whole_next_periods_covering_the_hold_time(seconds, first, nxt):
    billed = fee_time(seconds, first, nxt)
    if seconds == 0:
        assert billed == 0
        return
    assert billed >= seconds
    assert billed >= first
    assert (billed - first) % nxt == 0
    # Not a period more than needed.
    assert billed == first or billed - nxt < seconds


@given(rates, hold_ms, parameters)
def test_rounding_is_half_up_of_the_exact_amount(a_rate, hold, params):
    result = charge(a_rate, hold, params)
    if result.fee_time == 0:
        assert result.amount == 0
        return
    exact = Fraction(a_rate.connect_fee) + Fraction(a_rate.price_per_minute) * result.fee_time / 60
    step = Fraction(1, 10**params.fee_precision)
    # Half-up for a non-negative amount: floor(x / step + 1/2) steps.
    steps = (exact / step + Fraction(1, 2)).__floor__()
    assert Fraction(result.amount) == steps * step
    assert -result.amount.as_tuple().exponent == params.fee_precision


@given(st.integers(0, 10_000_000), st.integers(0, 999), st.integers(0, 600))
def test_hold_seconds_round_the_remainder_at_the_precision(hold, precision, free):
    seconds, remainder = divmod(hold, 1000)
    expected = seconds + (1 if remainder and remainder >= precision else 0)
    assert hold_seconds(hold, precision, free) == max(expected - free, 0)
