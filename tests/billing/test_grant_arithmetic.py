"""The call core's quota grants against the rater: a grant never holds less than rating charges for its seconds.

An anti-overdraft call may talk only on money its reservation holds (DOMAIN.md, "the anti-overdraft
guarantee"); the reservation is ``decide.grant_cost`` of the talk so far plus the next grant. If it ever
held less than ``billing.rating`` charges for the same seconds, concurrent calls could overdraw.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from billing import rating
from callcore import contract
from callcore.decide import Grant, grant_cost, renewed_grant

RATES = [
    pytest.param("0.1000", 60, 60, "0.0000", id="60/60"),
    pytest.param("0.6000", 30, 6, "0.0000", id="30/6"),
    pytest.param("0.1000", 6, 6, "0.0000", id="6/6"),
    pytest.param("0.0100", 1, 1, "0.0000", id="1/1 cheap: rounding dominates"),
    pytest.param("0.6000", 30, 6, "0.0500", id="30/6 with a connect fee"),
    pytest.param("0.0300", 60, 1, "0.0150", id="half a cent connect fee"),
    pytest.param("4.0156", 1, 1, "0.0000", id="a price that does not divide by sixty"),
    pytest.param("0.0000", 60, 60, "0.2500", id="connect fee only"),
]
SECONDS = [1, 2, 5, 6, 7, 29, 30, 31, 36, 37, 59, 60, 61, 66, 90, 119, 120, 121, 599, 3601]


def _both(price, first, nxt, connect):
    billing_rate = rating.Rate("44", "UK", D(price), first, nxt, D(connect))
    grant_rate = contract.GrantRate(connect, price, first, nxt)
    return billing_rate, grant_rate


@pytest.mark.parametrize("price, first, nxt, connect", RATES)
@pytest.mark.parametrize("precision", [0, 1, 2, 4])
@pytest.mark.parametrize("free_time", [0, 5])
def test_a_grant_never_holds_less_than_rating_charges_for_its_seconds(price, first, nxt, connect, precision, free_time):
    billing_rate, grant_rate = _both(price, first, nxt, connect)
    params = rating.RatingParameters(fee_precision=precision, free_time=free_time)
    for seconds in SECONDS:
        charged = rating.charge(billing_rate, seconds * 1000, params).amount
        held = grant_cost(grant_rate, seconds, precision)
        assert held >= charged, (seconds, held, charged)
        # Not wildly more either: at most one rounding step of the fee's places above the exact cost.
        exact = rating.charge(billing_rate, seconds * 1000, rating.RatingParameters(fee_precision=4)).amount
        assert held - exact < D(1).scaleb(-precision) + D("0.0001"), (seconds, held, exact)


def test_half_a_cent_is_held_as_the_cent_rating_rounds_it_up_to():
    billing_rate, grant_rate = _both("0.0300", 60, 1, "0.0150")  # 0.015 + 0.03 = 0.045 -> 0.05
    assert rating.charge(billing_rate, 60_000).amount == D("0.05")
    assert grant_cost(grant_rate, 60, 2) == D("0.05")
    assert grant_cost(grant_rate, 60, 4) == D("0.0450")


@pytest.mark.parametrize("price, first, nxt, connect", RATES)
def test_each_renewal_holds_what_rating_charges_for_the_talk_up_to_its_end(price, first, nxt, connect):
    """Renewals from the answer on: the reservation always covers the whole talk to the grant's end."""
    billing_rate, grant_rate = _both(price, first, nxt, connect)
    answer = 1_700_000_000_000
    grant = Grant(1, 1, 1, answer, answer + 7_000, 0, grant_rate, 7, 2, 0, 0)
    for tick in range(12):
        grant, units = renewed_grant(grant, grant.end_ms - 3_000 + tick * 137)
        talk_ms = grant.end_ms - answer
        assert contract.from_units(units) >= rating.charge(billing_rate, talk_ms).amount
