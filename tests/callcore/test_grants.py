"""Quota grants: the answered call's entry (decide.answer_grant), its renewal, and the Lua that moves its
reservation against the real Redis (callcore.live), across calls of one account on several nodes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from callcore import contract
from callcore import decide as dec
from callcore.contract import EndDirection, EndReason
from callcore.live import EXHAUSTED, GONE, RENEWED, RouteLimit, SetupRequest

from . import factories as F
from .test_call_state import routed

D = Decimal
NOW = 1_900_000_000_000
EXPIRY = NOW + 3_600_000
RATE = contract.GrantRate("0.0000", "0.6000", 1, 1)  # 0.01 a second


# ---------------------------------------------------------------------------
# The pure part


def _state(**world):
    facts, decision = routed(**world)
    return dec.call_state(facts, decision)


def test_the_first_route_answering_talks_on_the_set_up_reservation_for_a_whole_grant():
    state = _state(params={"SERVER_BILLING_PREVENT_OVERDRAFT_ADVANCE_TIME": 20})
    grant = dec.answer_grant(state, 0, NOW, 5, 6)
    assert (grant.end_ms, grant.limit_ms, grant.seconds, grant.rate) == (NOW + 20_000, 0, 20, state.grant.rates[0])
    assert (grant.h_entry, grant.h_id, grant.account_id) == (5, 6, state.account_id)
    assert grant.due_ms == NOW + 20_000 - dec.GRANT_RENEW_MARGIN_MS


def test_a_route_answering_after_failover_gets_its_own_rate_and_limit_at_once():
    world = {
        "routing_gateways": [
            F.routing_gateway(1, priority=1, conversation_limit=0),
            F.routing_gateway(2, priority=2, conversation_limit=30),
        ],
    }
    state = _state(**world)
    assert state.route_max_s == [7200, 30]
    grant = dec.answer_grant(state, 1, NOW, 1, 1)
    assert grant.limit_ms == NOW + 30_000
    assert grant.end_ms == NOW  # priced now at the answering route's rate
    assert grant.rate == state.grant.rates[1]
    assert grant.due_ms == NOW - dec.GRANT_RENEW_MARGIN_MS


def test_a_postpaid_call_is_indexed_only_for_a_route_limit_shorter_than_its_timeout():
    world = {
        "customer": {"anti_overdraft": False},
        "routing_gateways": [F.routing_gateway(1, priority=1), F.routing_gateway(2, priority=2, conversation_limit=30)],
    }
    state = _state(**world)
    assert state.grant is None
    assert dec.answer_grant(state, 0, NOW, 1, 1) is None
    grant = dec.answer_grant(state, 1, NOW, 1, 1)
    assert (grant.rate, grant.limit_ms, grant.due_ms) == (None, NOW + 30_000, NOW + 30_000 - dec.LIMIT_LEAD_MS)
    assert dec.limit_reached(grant, grant.due_ms) and not dec.limit_reached(grant, grant.due_ms - 1)
    assert dec.limit_timeout_s(grant, grant.due_ms) == 2


def test_a_renewal_covers_the_talk_so_far_and_the_next_grant():
    grant = dec.Grant(1, 1, 1, NOW, NOW + 10_000, 0, RATE, 10, 2, 0, 0)
    renewed, units = dec.renewed_grant(grant, NOW + 7_000)
    assert renewed.end_ms == NOW + 20_000
    assert units == 2000  # 20 s at 0.01
    late, units = dec.renewed_grant(grant, NOW + 15_500)  # the timer ran late: from now on
    assert late.end_ms == NOW + 25_500
    assert units == 2600  # 26 whole seconds


def test_the_grant_reads_back_as_it_was_written():
    grant = dec.Grant(1, 2, 3, NOW, NOW + 1, NOW + 2, RATE, 4, 2, 5, 6)
    assert dec.decode_grant(dec.encode_grant(grant)) == grant


@pytest.mark.parametrize(
    "cut, keepalive, expected",
    [
        (EndReason.BALANCE_EXHAUSTED, False, EndReason.BALANCE_EXHAUSTED),
        (EndReason.BALANCE_EXHAUSTED, True, EndReason.BALANCE_EXHAUSTED),  # well before the max: not keep-alives
        (EndReason.MAX_DURATION, True, EndReason.MAX_DURATION),  # the answering route's shorter limit
        (None, True, EndReason.KEEPALIVE_FAILED),
    ],
)
def test_a_call_the_grant_timer_ended_says_why(cut, keepalive, expected):
    facts = dec.EndFacts(
        event=dec.DIALOG_TIMEOUT,
        now_ms=NOW + 40_000,
        answered_ms=NOW,
        max_duration_s=7200,
        keepalive=keepalive,
        cut=cut,
    )
    decision = dec.end_of_call(facts)
    assert (decision.reason, decision.direction, decision.record, decision.acknowledged) == (
        expected, EndDirection.SERVER, True, True,
    )  # fmt: skip


def test_the_plan_reserves_a_first_grant_rounded_up_to_the_fee_precision():
    rates = [F.customer_rates(F.rate("44", "0.0300", first=60, next=1, connect="0.0150")), F.vendor_rates()]
    plan = dec.plan_call(F.facts(), F.indexed(rate_tables=rates))
    assert dec.live_request(plan).reservation == D("0.05")  # 0.045 charged as 0.05


# ---------------------------------------------------------------------------
# The Lua, against the real Redis


def _set_up(live, call_id, reservation, balance="1.00", credit="0"):
    req = SetupRequest(
        call_id=call_id, mapping_gateway_id=1, account_id=1, caller="1", callee="44", expiry_ms=EXPIRY,
        routes=[RouteLimit(1, 0, 0)], registry={"account_id": 1}, check_balance=True,
        snapshot_balance=D(balance), credit_limit=D(credit), reservation=D(reservation),
    )  # fmt: skip
    return live.setup(req, now_ms=NOW)


def _answered(live, node, call_id, seconds=10, answer=NOW):
    grant = dec.Grant(1, 1, 1, answer, answer + seconds * 1000, 0, RATE, seconds, 2, 0, 10_000)
    assert live.grant_start(live.keys.grants(node), call_id, grant.due_ms, dec.encode_grant(grant))
    return grant


def _renew(live, node, call_id, grant, now):
    renewed, units = dec.renewed_grant(grant, now)
    answer = live.renew_grant(
        live.keys.grants(node), call_id, 1, units, grant.credit_units, grant.balance_units,
        renewed.due_ms, dec.encode_grant(renewed),
    )  # fmt: skip
    return answer, renewed


def _held(client, live, call_id):
    return int(client.hget(live.keys.reservations(1), call_id).split(b":")[0])


def test_a_renewal_moves_the_reservation_and_the_due_time(live, client):
    assert _set_up(live, "a", "0.10").status.name == "OK"
    grant = _answered(live, "n1", "a")
    index = live.keys.grants("n1")
    assert live.grants_due(index, grant.due_ms - 1) == []
    [(call_id, raw)] = live.grants_due(index, grant.due_ms)
    assert (call_id, dec.decode_grant(raw)) == ("a", grant)
    answer, renewed = _renew(live, "n1", "a", grant, grant.due_ms)
    assert answer == RENEWED
    assert _held(client, live, "a") == 2000  # 20 s at 0.01
    assert int(client.get(f"{live.keys.reservations(1)}:sum")) == 2000
    assert client.zscore(index, "a") == renewed.due_ms
    assert dec.decode_grant(client.hget(f"{index}:calls", "a")) == renewed


def test_calls_on_two_nodes_share_the_account_and_the_last_grant_is_refused(live, client):
    """1.00 at 0.01/s: three calls hold 0.10 each; each renewal needs 0.10 more, so only so many fit."""
    for call_id in ("a", "b", "c"):
        assert _set_up(live, call_id, "0.10").status.name == "OK"
    grants = {"a": _answered(live, "n1", "a"), "b": _answered(live, "n2", "b"), "c": _answered(live, "n1", "c")}
    answers = {}
    for _turn in range(3):
        for call_id, node in (("a", "n1"), ("b", "n2"), ("c", "n1")):
            if answers.get(call_id) == EXHAUSTED:
                continue
            answer, renewed = _renew(live, node, call_id, grants[call_id], grants[call_id].due_ms)
            answers[call_id] = answer
            if answer == RENEWED:
                grants[call_id] = renewed
    total = int(client.get(f"{live.keys.reservations(1)}:sum"))
    assert total <= 10_000  # never more held than the balance
    assert sorted(answers.values()) == [EXHAUSTED, EXHAUSTED, RENEWED]
    # An exhausted call leaves the index but keeps its reservation until its teardown.
    exhausted = [c for c, a in answers.items() if a == EXHAUSTED]
    for call_id in exhausted:
        node = "n2" if call_id == "b" else "n1"
        assert client.zscore(live.keys.grants(node), call_id) is None
        assert _held(client, live, call_id) > 0


def test_credit_counts_and_the_live_balance_wins_over_the_snapshot(live, client):
    assert _set_up(live, "a", "0.10", balance="0.10", credit="0.10").status.name == "OK"
    grant = dec.Grant(1, 1, 1, NOW, NOW + 10_000, 0, RATE, 10, 2, 1000, 1000)
    live.grant_start(live.keys.grants("n1"), "a", grant.due_ms, dec.encode_grant(grant))
    assert _renew(live, "n1", "a", grant, grant.due_ms)[0] == RENEWED  # 0.10 + 0.10 credit pays 20 s
    client.set(live.keys.balance(1), 0)
    grant = dec.decode_grant(client.hget(f"{live.keys.grants('n1')}:calls", "a"))
    assert _renew(live, "n1", "a", grant, grant.due_ms)[0] == EXHAUSTED


def test_a_call_torn_down_is_gone_from_the_index_and_never_reserved_again(live, client):
    assert _set_up(live, "a", "0.10").status.name == "OK"
    grant = _answered(live, "n1", "a")
    index = live.keys.grants("n1")
    assert live.teardown("a", 1, live.keys.call_slots(1, 1, None, [1]), "", index)
    assert client.zscore(index, "a") is None and client.hget(f"{index}:calls", "a") is None
    assert _renew(live, "n1", "a", grant, grant.due_ms)[0] == GONE
    assert client.hget(live.keys.reservations(1), "a") is None
    assert int(client.get(f"{live.keys.reservations(1)}:sum")) == 0
    # An answer arriving after its teardown (another worker) indexes nothing.
    assert not live.grant_start(index, "a", grant.due_ms, dec.encode_grant(grant))
    assert client.zcard(index) == 0


def test_an_index_entry_whose_reservation_is_gone_is_dropped(live, client):
    """A node restarted and released its calls: their grant entries go at the timer's first look."""
    index = live.keys.grants("n1")
    client.hset(live.keys.live_calls, "ghost", "{}")
    grant = _answered(live, "n1", "ghost")
    assert _renew(live, "n1", "ghost", grant, grant.due_ms)[0] == GONE
    assert client.zcard(index) == 0 and not client.exists(f"{index}:calls")
