"""The live state's Lua scripts against the real Redis: slots, CPS, dynamic blacklist, balance, routes, teardown.

Every test works under a prefix of its own and passes ``now_ms`` explicitly,
so the CPS windows and expiries are the test's, not the wall clock's.
"""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal

import pytest

from callcore.contract import (
    PENDING_DEBIT_HOLD_MS,
    RELEASE_LOST_LUA,
    RELEASE_PENDING_LUA,
    AnsweredCall,
    BillingMode,
    EndDirection,
    RouteState,
    encode_answered,
    encode_cdr,
    lost_call_record,
    pending_debit_field,
    release_lost_args,
    release_lost_keys,
)
from callcore.live import LiveState, LiveStatus, RouteLimit, SetupRequest
from callcore.resp import Script

D = Decimal
NOW = 1_900_000_000_000  # ms; a whole second, so NOW + 999 is the same second and NOW + 1000 the next
EXPIRY = NOW + 3_600_000
CALL = "call-1"


def request(call_id=CALL, **changes) -> SetupRequest:
    values = {
        "mapping_gateway_id": 1,
        "account_id": 1,
        "caller": "15551230000",
        "callee": "447700900123",
        "expiry_ms": EXPIRY,
        "routes": [RouteLimit(1, 0, 0)],
        "registry": {"account_id": 1, "caller": "15551230000", "start_ms": NOW},
    }
    values.update(changes)
    return SetupRequest(call_id=call_id, **values)


def dump(client, prefix) -> dict:
    """Every key under the prefix with its whole content, to compare before and after."""
    out = {}
    for key in sorted(client.scan_iter(f"{prefix}:*", count=1000)):
        kind = client.type(key).decode()
        if kind == "zset":
            out[key] = client.zrange(key, 0, -1, withscores=True)
        elif kind == "hash":
            out[key] = client.hgetall(key)
        elif kind == "string":
            out[key] = client.get(key)
        else:
            out[key] = (kind, client.xlen(key) if kind == "stream" else None)
    return out


def occupy(client, key, *members, expiry=EXPIRY):
    client.zadd(key, {member: expiry for member in members})


# ---------------------------------------------------------------------------
# Setup


def test_setup_takes_every_slot_and_registers_the_call(live, client):
    registry = {"account_id": 1, "caller": "15551230000", "start_ms": NOW}
    result = live.setup(request(phone_id=3, routes=[RouteLimit(7, 0, 0)], registry=registry), now_ms=NOW)
    assert (result.status, result.route_index, result.available) == (LiveStatus.OK, 0, None)
    k = live.keys
    for key in (k.slots("mgw", 1), k.slots("account", 1), k.slots("phone", 3), k.slots("rgw", 7)):
        assert client.zscore(key, CALL) == EXPIRY, key
    assert json.loads(client.hget(k.live_calls, CALL)) == registry
    assert client.zscore(k.live_calls_expiry, CALL) == EXPIRY


def test_a_phone_call_writes_no_mapping_gateway_key(live, client, prefix):
    result = live.setup(request(mapping_gateway_id=None, phone_id=3, mapping_cps=0), now_ms=NOW)
    assert result.status is LiveStatus.OK
    keys = [key.decode() for key in client.scan_iter(f"{prefix}:*")]
    assert live.keys.slots("phone", 3) in keys
    assert not [key for key in keys if ":mgw:" in key]


CAPACITIES = [
    pytest.param({"mapping_capacity": 2}, ("mgw", 1), LiveStatus.MAPPING_CAPACITY, id="mapping gateway"),
    pytest.param({"account_capacity": 2}, ("account", 1), LiveStatus.ACCOUNT_CAPACITY, id="account"),
    pytest.param({"phone_id": 3, "phone_capacity": 2}, ("phone", 3), LiveStatus.PHONE_CAPACITY, id="phone"),
]


@pytest.mark.parametrize(("limits", "slots", "status"), CAPACITIES)
def test_a_full_entity_refuses_the_call_and_nothing_is_written(live, client, prefix, limits, slots, status):
    # Every other kind of write is asked for too, so a refusal that wrote anything would show.
    full = request(
        **limits,
        mapping_cps=10,
        switch_cps=10,
        check_balance=True,
        snapshot_balance=D("50"),
        reservation=D("1"),
        routes=[RouteLimit(1, 5, 5)],
    )
    occupy(client, live.keys.slots(*slots), "other-1", "other-2")
    before = dump(client, prefix)
    result = live.setup(full, now_ms=NOW)
    assert result.status is status
    assert result.available is None  # refused before the balance was looked at
    assert dump(client, prefix) == before


@pytest.mark.parametrize(("limits", "slots", "status"), CAPACITIES)
def test_an_entity_below_its_capacity_takes_the_call(live, client, limits, slots, status):
    occupy(client, live.keys.slots(*slots), "other-1")
    assert live.setup(request(**limits), now_ms=NOW).status is LiveStatus.OK
    assert client.zcard(live.keys.slots(*slots)) == 2


def test_calls_of_a_crashed_node_leave_the_registry_once_expired_a_few_per_setup(live, client):
    k = live.keys
    for n in range(10):
        client.hset(k.live_calls, f"lost-{n}", "{}")
        client.zadd(k.live_calls_expiry, {f"lost-{n}": NOW - 1000 + n})  # expired
    client.hset(k.live_calls, "still-up", "{}")
    client.zadd(k.live_calls_expiry, {"still-up": NOW + 1})
    assert live.setup(request(), now_ms=NOW).status is LiveStatus.OK
    # The eight oldest go at once; the rest with the next setup; a call still within its expiry stays.
    assert sorted(client.hkeys(k.live_calls)) == [b"call-1", b"lost-8", b"lost-9", b"still-up"]
    live.setup(request("call-2"), now_ms=NOW)
    assert sorted(client.hkeys(k.live_calls)) == [b"call-1", b"call-2", b"still-up"]
    assert client.zcard(k.live_calls_expiry) == 3


@pytest.mark.parametrize("limits", [{"mapping_capacity": 1}, {"account_capacity": 1}])
def test_the_slots_of_a_crashed_call_expire(live, client, limits):
    key = live.keys.slots("mgw" if "mapping_capacity" in limits else "account", 1)
    occupy(client, key, "crashed", expiry=NOW)  # expiry reached: no longer counted
    assert live.setup(request(**limits), now_ms=NOW).status is LiveStatus.OK
    assert client.zrange(key, 0, -1) == [CALL.encode()]


def test_expired_slots_are_dropped_even_where_no_capacity_is_counted(live, client):
    key = live.keys.slots("account", 1)
    occupy(client, key, "crashed", expiry=NOW - 1)
    assert live.setup(request(account_capacity=0), now_ms=NOW).status is LiveStatus.OK
    assert client.zrange(key, 0, -1) == [CALL.encode()]


@pytest.mark.parametrize(
    ("limit", "status"),
    [("mapping_cps", LiveStatus.MAPPING_CPS), ("switch_cps", LiveStatus.SWITCH_CPS)],
)
def test_cps_refuses_the_attempt_over_the_limit_in_a_second_and_allows_the_next_second(
    live, client, prefix, limit, status
):
    def attempt(n, now):
        return live.setup(request(f"call-{n}", **{limit: 2}), now_ms=now).status

    assert attempt(1, NOW) is LiveStatus.OK
    assert attempt(2, NOW + 500) is LiveStatus.OK
    before = dump(client, prefix)
    assert attempt(3, NOW + 999) is status
    assert dump(client, prefix) == before  # a refused attempt does not count
    assert attempt(4, NOW + 1000) is LiveStatus.OK


def test_a_route_over_its_cps_is_passed_over(live, client):
    client.set(f"{live.keys.cps('rgw', 1)}:{NOW // 1000}", 1)
    result = live.setup(request(routes=[RouteLimit(1, 0, 1), RouteLimit(2, 0, 1)]), now_ms=NOW)
    assert (result.status, result.route_index) == (LiveStatus.OK, 1)
    assert client.get(f"{live.keys.cps('rgw', 2)}:{NOW // 1000}") == b"1"


# ---------------------------------------------------------------------------
# Dynamic blacklist


@pytest.mark.parametrize(
    ("number", "status"),
    [("15551230000", LiveStatus.CALLER_DYNAMIC_BLACKLISTED), ("447700900123", LiveStatus.CALLEE_DYNAMIC_BLACKLISTED)],
)
def test_a_number_on_the_central_dynamic_blacklist_is_refused(live, client, prefix, number, status):
    client.zadd(live.keys.dynamic_blacklist(), {number: NOW + 60_000})
    before = dump(client, prefix)
    assert live.setup(request(), now_ms=NOW).status is status
    assert dump(client, prefix) == before


def test_a_gateway_blacklist_applies_only_when_the_gateway_keeps_one(live, client):
    client.zadd(live.keys.dynamic_blacklist(1), {"447700900123": NOW + 60_000})
    assert live.setup(request("call-1"), now_ms=NOW).status is LiveStatus.OK
    standalone = request("call-2", dynamic_blacklist_gateway=1)
    assert live.setup(standalone, now_ms=NOW).status is LiveStatus.CALLEE_DYNAMIC_BLACKLISTED
    other_gateway = request("call-3", mapping_gateway_id=2, dynamic_blacklist_gateway=2)
    assert live.setup(other_gateway, now_ms=NOW).status is LiveStatus.OK


@pytest.mark.parametrize("until", [NOW, NOW - 1])
def test_an_expired_blacklist_entry_does_not_block(live, client, until):
    client.zadd(live.keys.dynamic_blacklist(), {"15551230000": until})
    client.zadd(live.keys.dynamic_blacklist(1), {"447700900123": until})
    assert live.setup(request(dynamic_blacklist_gateway=1), now_ms=NOW).status is LiveStatus.OK


# ---------------------------------------------------------------------------
# Balance


def reserve(client, live, call_id, amount: str, until=EXPIRY, account_id=1):
    """A reservation as another live call's setup leaves it: entry, running total, expiry index."""
    key, units = live.keys.reservations(account_id), int(D(amount) * 10_000)
    client.hset(key, call_id, f"{units}:{until}")
    client.incrby(f"{key}:sum", units)
    client.zadd(f"{key}:exp", {call_id: until})


def money(**changes):
    return request(check_balance=True, **changes)


def test_available_money_is_the_live_balance_plus_credit_minus_other_calls_reservations(live, client):
    client.set(live.keys.balance(1), 100_000)  # 10.0000 in ten-thousandths
    reserve(client, live, "other-1", "3.0000")
    reserve(client, live, "other-2", "0.5000")
    result = live.setup(money(credit_limit=D("5"), snapshot_balance=D("99"), reservation=D("1.2500")), now_ms=NOW)
    assert (result.status, result.available) == (LiveStatus.OK, D("11.5"))
    assert client.hget(live.keys.reservations(1), CALL) == f"12500:{EXPIRY}".encode()


def test_the_snapshot_balance_counts_when_the_live_balance_is_missing(live):
    result = live.setup(money(credit_limit=D("1"), snapshot_balance=D("2.5")), now_ms=NOW)
    assert (result.status, result.available) == (LiveStatus.OK, D("3.5"))


def test_a_call_whose_reservation_exceeds_the_available_money_is_refused_and_nothing_is_written(live, client, prefix):
    reserve(client, live, "other-1", "1.0000")
    before = dump(client, prefix)
    result = live.setup(money(snapshot_balance=D("3.5"), reservation=D("2.5001")), now_ms=NOW)
    assert (result.status, result.available) == (LiveStatus.BALANCE_INSUFFICIENT, D("2.5"))
    assert dump(client, prefix) == before
    assert live.setup(money(snapshot_balance=D("3.5"), reservation=D("2.5")), now_ms=NOW).status is LiveStatus.OK


def test_a_call_is_refused_below_its_minimum_even_with_the_reservation_covered(live, client, prefix):
    before = dump(client, prefix)
    result = live.setup(money(snapshot_balance=D("0.30"), reservation=D("0.10"), minimum_available=D("0.35")), NOW)
    assert result.status is LiveStatus.BALANCE_INSUFFICIENT
    assert dump(client, prefix) == before


def test_nothing_available_refuses_even_a_call_that_reserves_nothing(live):
    result = live.setup(money(snapshot_balance=D("-5"), credit_limit=D("5"), reservation=D("0")), now_ms=NOW)
    assert (result.status, result.available) == (LiveStatus.BALANCE_INSUFFICIENT, D("0"))


def test_a_calls_own_reservation_does_not_count_against_it(live, client):
    reserve(client, live, CALL, "90.0000")  # left by an earlier attempt of the same call
    result = live.setup(money(snapshot_balance=D("10"), reservation=D("5")), now_ms=NOW)
    assert (result.status, result.available) == (LiveStatus.OK, D("10"))


def test_expired_reservations_are_purged_and_not_counted(live, client):
    reserve(client, live, "gone-1", "4.0000", until=NOW)
    reserve(client, live, "gone-2", "4.0000", until=NOW - 1)
    reserve(client, live, "live-1", "1.0000", until=NOW + 1)
    result = live.setup(money(snapshot_balance=D("5")), now_ms=NOW)
    assert result.available == D("4")
    assert set(client.hkeys(live.keys.reservations(1))) == {b"live-1", CALL.encode()}
    assert int(client.get(f"{live.keys.reservations(1)}:sum")) == 10_000  # live-1's; the new call reserves 0


def test_the_running_total_follows_setups_and_teardowns(live, client):
    for n in range(5):
        assert live.setup(money(call_id=f"c{n}", snapshot_balance=D("10"), reservation=D("1")), NOW).status is (
            LiveStatus.OK
        )
    total = f"{live.keys.reservations(1)}:sum"
    assert int(client.get(total)) == 50_000
    result = live.setup(money(call_id="c5", snapshot_balance=D("10"), reservation=D("1")), NOW)
    assert result.available == D("5")
    for n in range(6):
        assert live.teardown(f"c{n}", 1, [])
    assert int(client.get(total)) == 0
    assert client.zcard(f"{live.keys.reservations(1)}:exp") == 0


def test_a_charged_calls_teardown_keeps_its_money_held_as_the_pending_debit_of_its_cdr(live, client):
    key = live.keys.reservations(1)
    for call_id in ("talked", "other"):
        assert live.setup(money(call_id=call_id, snapshot_balance=D("3"), reservation=D("1")), NOW).status is (
            LiveStatus.OK
        )
    assert live.teardown("talked", 1, [], pending="uuid-talked", now_ms=NOW)
    field = pending_debit_field("uuid-talked")
    # Still counted, now under the CDR's name, with the pending debit's own bounded expiry.
    assert int(client.get(f"{key}:sum")) == 20_000
    assert client.hget(key, "talked") is None
    assert client.hget(key, field).split(b":")[0] == b"10000"
    assert client.zscore(f"{key}:exp", field) == NOW + PENDING_DEBIT_HOLD_MS
    assert client.zscore(f"{key}:exp", "talked") is None
    # So the third call sees the money the first one spent as gone, though no debit has reached the balance.
    result = live.setup(money(call_id="third", snapshot_balance=D("3"), reservation=D("1.5")), NOW)
    assert (result.status, result.available) == (LiveStatus.BALANCE_INSUFFICIENT, D("1"))
    # A call that never talked gives its reservation back at once.
    assert live.teardown("other", 1, [])
    assert int(client.get(f"{key}:sum")) == 10_000


def test_the_ingest_release_drops_exactly_the_named_pending_debits_once(live, client):
    key = live.keys.reservations(1)
    for call_id in ("a", "b"):
        live.setup(money(call_id=call_id, snapshot_balance=D("5"), reservation=D("1")), NOW)
        live.teardown(call_id, 1, [], pending=f"uuid-{call_id}", now_ms=NOW)
    release = client.register_script(RELEASE_PENDING_LUA)
    fields = [pending_debit_field("uuid-a"), pending_debit_field("never-held")]
    assert release(keys=[key], args=fields) == 10_000
    assert release(keys=[key], args=fields) == 0  # a batch read again releases nothing twice
    assert int(client.get(f"{key}:sum")) == 10_000
    assert set(client.hkeys(key)) == {pending_debit_field("uuid-b").encode()}


def test_a_pending_debit_the_ingest_never_settles_expires_like_a_reservation(live, client):
    key = live.keys.reservations(1)
    live.setup(money(call_id="a", snapshot_balance=D("2"), reservation=D("1")), NOW)
    live.teardown("a", 1, [], pending="uuid-a", now_ms=NOW)
    later = int(client.zscore(f"{key}:exp", pending_debit_field("uuid-a"))) + 1
    result = live.setup(money(call_id="b", snapshot_balance=D("2"), reservation=D("2")), now_ms=later)
    assert (result.status, result.available) == (LiveStatus.OK, D("2"))
    assert client.hget(key, pending_debit_field("uuid-a")) is None


def test_without_a_balance_check_nothing_is_reserved(live, client):
    result = live.setup(request(snapshot_balance=D("-100"), reservation=D("5")), now_ms=NOW)
    assert (result.status, result.available) == (LiveStatus.OK, None)
    assert not client.exists(live.keys.reservations(1))


# ---------------------------------------------------------------------------
# Routes


def test_the_first_route_with_a_free_slot_is_taken(live, client):
    occupy(client, live.keys.slots("rgw", 1), "other-1")
    routes = [RouteLimit(1, 1, 0), RouteLimit(2, 1, 0), RouteLimit(3, 0, 0)]
    result = live.setup(request(routes=routes), now_ms=NOW)
    assert (result.status, result.route_index) == (LiveStatus.OK, 1)
    assert client.zscore(live.keys.slots("rgw", 2), CALL) == EXPIRY
    assert client.zscore(live.keys.slots("rgw", 1), CALL) is None
    assert not client.exists(live.keys.slots("rgw", 3))


def test_every_route_full_refuses_the_call_as_routes_busy_and_nothing_is_written(live, client, prefix):
    occupy(client, live.keys.slots("rgw", 1), "other-1")
    occupy(client, live.keys.slots("rgw", 2), "other-2")
    before = dump(client, prefix)
    result = live.setup(money(snapshot_balance=D("7"), routes=[RouteLimit(1, 1, 0), RouteLimit(2, 1, 0)]), NOW)
    assert (result.status, result.route_index, result.available) == (LiveStatus.ROUTES_BUSY, -1, D("7"))
    assert dump(client, prefix) == before


def test_next_route_releases_the_previous_route_and_takes_the_next_free_one(live, client):
    assert live.setup(request(routes=[RouteLimit(1, 1, 0)]), now_ms=NOW).route_index == 0
    occupy(client, live.keys.slots("rgw", 2), "other-2")
    remaining = [RouteLimit(2, 1, 0), RouteLimit(3, 1, 0)]
    assert live.next_route(CALL, 1, remaining, EXPIRY, now_ms=NOW) == 1
    assert client.zscore(live.keys.slots("rgw", 1), CALL) is None
    assert client.zscore(live.keys.slots("rgw", 3), CALL) == EXPIRY
    assert client.zscore(live.keys.slots("rgw", 2), CALL) is None


def test_next_route_answers_minus_one_when_every_other_route_is_full_yet_releases_the_previous(live, client):
    live.setup(request(routes=[RouteLimit(1, 1, 0)]), now_ms=NOW)
    occupy(client, live.keys.slots("rgw", 2), "other-2")
    assert live.next_route(CALL, 1, [RouteLimit(2, 1, 0)], EXPIRY, now_ms=NOW) == -1
    assert client.zscore(live.keys.slots("rgw", 1), CALL) is None


def test_next_route_without_a_previous_slot_only_takes(live, client):
    occupy(client, live.keys.slots("rgw", 1), CALL)
    assert live.next_route(CALL, None, [RouteLimit(2, 0, 1)], EXPIRY, now_ms=NOW) == 0
    assert client.zscore(live.keys.slots("rgw", 1), CALL) == EXPIRY
    assert client.get(f"{live.keys.cps('rgw', 2)}:{NOW // 1000}") == b"1"


# ---------------------------------------------------------------------------
# Teardown


def test_teardown_releases_everything_and_appends_the_cdr_at_once(live, client):
    req = money(phone_id=3, snapshot_balance=D("10"), reservation=D("1"), routes=[RouteLimit(1, 0, 0)])
    assert live.setup(req, now_ms=NOW).status is LiveStatus.OK
    assert live.setup(request("other", routes=[RouteLimit(1, 0, 0)]), now_ms=NOW).status is LiveStatus.OK
    k = live.keys
    slot_keys = [k.slots("mgw", 1), k.slots("account", 1), k.slots("phone", 3), k.slots("rgw", 1)]
    cdr = json.dumps({"call_uuid": "node:call-1:1", "hold_time_ms": 61_000})
    assert live.teardown(CALL, 1, slot_keys, cdr) is True
    for key in slot_keys:
        assert client.zscore(key, CALL) is None, key
    assert client.hget(k.reservations(1), CALL) is None
    assert client.hget(k.live_calls, CALL) is None
    assert client.zscore(k.live_calls_expiry, CALL) is None
    [(_id, fields)] = client.xrange(k.cdr_stream)
    assert fields == {b"cdr": cdr.encode()}
    # The other call keeps its slots.
    assert client.zscore(k.slots("mgw", 1), "other") == EXPIRY
    assert client.hget(k.live_calls, "other") is not None


def test_a_teardown_sent_without_waiting_releases_the_call_and_appends_its_cdr(live, client):
    assert live.setup(money(snapshot_balance=D("10"), reservation=D("1")), now_ms=NOW).status is LiveStatus.OK
    k = live.keys
    cdr = json.dumps({"call_uuid": "node:call-1:1"})
    spooled = []
    live.teardown_later(CALL, 1, [k.slots("mgw", 1), k.slots("account", 1)], cdr, spooled.append)
    assert live.resp.pending() == 1
    assert live.setup(request("call-2"), now_ms=NOW).status is LiveStatus.OK  # reads the teardown's reply
    assert live.resp.pending() == 0
    assert client.zscore(k.slots("mgw", 1), CALL) is None
    assert client.hget(k.reservations(1), CALL) is None
    assert client.hget(k.live_calls, CALL) is None
    assert [f[b"cdr"] for _id, f in client.xrange(k.cdr_stream)] == [cdr.encode()]
    assert spooled == []


def test_a_teardown_redis_does_not_know_the_script_of_is_run_again_by_its_body(live, client):
    live.setup(request(), now_ms=NOW)
    # A teardown script no Redis has loaded: the EVALSHA is refused with NOSCRIPT.
    live._hot["teardown"] = Script(live._hot["teardown"].body + f"\n-- {uuid.uuid4()}")
    spooled = []
    live.teardown_later(CALL, 1, [live.keys.slots("mgw", 1)], '{"x": 1}', spooled.append)
    assert client.zscore(live.keys.slots("mgw", 1), CALL) == EXPIRY  # not run yet
    live.setup(request("call-2"), now_ms=NOW)
    assert client.zscore(live.keys.slots("mgw", 1), CALL) is None
    assert len(client.xrange(live.keys.cdr_stream)) == 1
    assert spooled == []


def test_a_teardown_sent_to_an_unreachable_redis_spools_its_cdr(prefix):
    away = LiveState("redis://127.0.0.1:1", prefix)
    spooled = []
    away.teardown_later(CALL, 1, [away.keys.slots("mgw", 1)], '{"x": 1}', spooled.append)
    assert spooled == ['{"x": 1}']


def test_teardown_without_a_cdr_appends_nothing(live, client):
    live.setup(request(), now_ms=NOW)
    assert live.teardown(CALL, 1, [live.keys.slots("mgw", 1)]) is True
    assert client.zscore(live.keys.slots("mgw", 1), CALL) is None
    assert not client.exists(live.keys.cdr_stream)


def test_a_restarted_node_releases_the_calls_it_lost_and_records_them(live, client):
    def registry(node, **extra):
        return {"account_id": 1, "mapping_gateway_id": 1, "caller": "15551230000", "callee": "447700900123",
                "source_ip": "192.0.2.10", "start_ms": NOW, "snapshot_version": 4, "phone_id": None,
                "route_gateway_ids": [1, 2], "billing_mode": int(BillingMode.MAPPING_GATEWAY), "node": node,
                **extra}  # fmt: skip

    lost = money(snapshot_balance=D("10"), reservation=D("1"), routes=[RouteLimit(1, 0, 0)], registry=registry("a"))
    assert live.setup(lost, now_ms=NOW).status is LiveStatus.OK
    other_node = request("elsewhere", routes=[RouteLimit(2, 0, 0)], registry=registry("b"))
    assert live.setup(other_node, now_ms=NOW).status is LiveStatus.OK
    k = live.keys

    assert live.release_node("a", now_ms=NOW + 5000) == 1

    for key in (k.slots("mgw", 1), k.slots("account", 1), k.slots("rgw", 1)):
        assert client.zscore(key, CALL) is None, key
    assert client.hget(k.reservations(1), CALL) is None
    assert client.hkeys(k.live_calls) == [b"elsewhere"]  # another node's call is not this node's to end
    assert client.zscore(k.slots("rgw", 2), "elsewhere") == EXPIRY
    [(_id, fields)] = client.xrange(k.cdr_stream)
    record = json.loads(fields[b"cdr"])
    assert (record["caller_call_id"], record["node"], record["end_reason"]) == (CALL, "a", "switch_restart")
    assert (record["answer_ms"], record["hold_time_ms"], record["stop_ms"]) == (None, 0, NOW + 5000)
    assert (record["account_id"], record["mapping_gateway_id"]) == (1, 1)
    assert (record["billing_mode"], record["end_direction"]) == (BillingMode.MAPPING_GATEWAY, EndDirection.SERVER)
    assert live.release_node("a") == 0  # nothing twice


def lost_registry(node, **extra):
    return {"account_id": 1, "mapping_gateway_id": 1, "caller": "15551230000", "callee": "447700900123",
            "source_ip": "192.0.2.10", "start_ms": NOW, "snapshot_version": 4, "phone_id": None,
            "route_gateway_ids": [1], "billing_mode": int(BillingMode.MAPPING_GATEWAY), "node": node,
            **extra}  # fmt: skip


def answer(client, live, call_id, answer_ms):
    route = RouteState(1, "vendor-1", "198.51.100.1", 5060, "udp", "15551230000", "447700900123", 0, 0,
                       frozenset(), 0, 2, "44", "UK", "447", "UK mobile")  # fmt: skip
    client.hset(live.keys.live_answered, call_id, encode_answered(AnsweredCall(answer_ms, route)))


def test_a_restarted_node_charges_an_answered_lost_call_up_to_its_last_heartbeat(live, client):
    req = money(snapshot_balance=D("10"), reservation=D("1"), registry=lost_registry("a"))
    assert live.setup(req, now_ms=NOW).status is LiveStatus.OK
    answer(client, live, CALL, NOW + 2_000)
    client.zadd(live.keys.grants("a"), {CALL: NOW + 50_000, "other": NOW + 50_000})  # its quota grant's renewal
    client.hset(live.keys.grants("a") + ":calls", mapping={CALL: "grant", "other": "grant"})
    client.hset(live.keys.heartbeats, "a", NOW + 47_000)
    assert live.release_node("a", now_ms=NOW + 90_000) == 1
    [(_id, fields)] = client.xrange(live.keys.cdr_stream)
    record = json.loads(fields[b"cdr"])
    assert (record["answer_ms"], record["stop_ms"], record["hold_time_ms"]) == (NOW + 2_000, NOW + 47_000, 45_000)
    assert (record["estimated"], record["routing_gateway_id"], record["vendor_account_id"]) == (True, 1, 2)
    assert not client.exists(live.keys.live_answered)  # released with the call
    assert client.zrange(live.keys.grants("a"), 0, -1) == [b"other"]  # no renewal for a call that is gone
    assert client.hkeys(live.keys.grants("a") + ":calls") == [b"other"]
    assert client.hget(live.keys.reservations(1), CALL) is None
    # Charged, so its money stays held as its CDR's pending debit until the ingest has taken the CDR.
    assert client.hget(live.keys.reservations(1), pending_debit_field(record["call_uuid"])) is not None
    assert client.get(live.keys.reservations(1) + ":sum") == b"10000"


def test_a_lost_call_is_released_and_recorded_once_whichever_path_runs_first(live, client):
    # The restarting node and the worker's job read the same entry; the first release wins, the second is a no-op.
    req = money(snapshot_balance=D("10"), reservation=D("1"), registry=lost_registry("a"))
    assert live.setup(req, now_ms=NOW).status is LiveStatus.OK
    raw = client.hget(live.keys.live_calls, CALL)
    entry = json.loads(raw)
    record = lost_call_record(CALL, entry, "a", NOW + 5_000)
    release = client.register_script(RELEASE_LOST_LUA)
    keys = release_lost_keys(live.keys, entry)
    args = release_lost_args(CALL, raw, record, NOW + 5_000)
    assert release(keys=keys, args=args) == 1
    assert release(keys=keys, args=args) == 0
    assert live.release_node("a", now_ms=NOW + 6_000) == 0
    assert [f[b"cdr"] for _id, f in client.xrange(live.keys.cdr_stream)] == [encode_cdr(record).encode()]
    assert client.hlen(live.keys.live_calls) == 0
    assert client.get(live.keys.reservations(1) + ":sum") == b"0"  # the reservation given back once, not twice


def test_a_lost_release_leaves_a_call_whose_registry_entry_changed_since_it_was_read(live, client):
    assert live.setup(request(registry=lost_registry("a")), now_ms=NOW).status is LiveStatus.OK
    raw = client.hget(live.keys.live_calls, CALL)
    entry = json.loads(raw)
    client.hset(live.keys.live_calls, CALL, json.dumps(lost_registry("b")))  # the same Call-ID set up anew
    release = client.register_script(RELEASE_LOST_LUA)
    record = encode_cdr(lost_call_record(CALL, entry, "a", NOW))
    assert release(keys=release_lost_keys(live.keys, entry), args=[CALL, raw, record]) == 0
    assert client.zscore(live.keys.slots("mgw", 1), CALL) == EXPIRY
    assert not client.exists(live.keys.cdr_stream)


def test_a_call_ended_normally_drops_its_kept_answer(live, client):
    assert live.setup(request(), now_ms=NOW).status is LiveStatus.OK
    answer(client, live, CALL, NOW + 1_000)
    answer(client, live, "other", NOW + 1_000)
    assert live.teardown(CALL, 1, [live.keys.slots("mgw", 1)], "{}") is True
    assert client.hkeys(live.keys.live_answered) == [b"other"]


# ---------------------------------------------------------------------------
# Redis away


def test_an_unreachable_redis_is_reported_quickly_and_never_raises(prefix):
    away = LiveState("redis://127.0.0.1:1", prefix)
    started = time.monotonic()
    result = away.setup(money(snapshot_balance=D("10")), now_ms=NOW)
    assert (result.status, result.available, result.route_index) == (LiveStatus.UNAVAILABLE, None, -1)
    assert away.teardown(CALL, 1, [away.keys.slots("mgw", 1)], "{}") is False
    assert away.next_route(CALL, 1, [RouteLimit(2, 0, 0)], EXPIRY, now_ms=NOW) == -2
    assert time.monotonic() - started < 1.0


def test_a_new_connection_loads_the_scripts_so_a_teardown_sent_first_runs_at_once(private_redis):
    # A Redis that has never run the switch's scripts (new, or restarted): the first teardown of a
    # process must not wait for that process's next command to learn of a NOSCRIPT, because an idle
    # worker may not send one for hours, and the call's CDR and slots would wait as long.
    client = private_redis.client()
    live = LiveState(private_redis.url, "sstest-live")
    spooled = []
    live.teardown_later(CALL, 1, [live.keys.slots("mgw", 1)], '{"x": 1}', spooled.append)
    deadline = time.monotonic() + 2
    while not client.exists(live.keys.cdr_stream) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [f[b"cdr"] for _id, f in client.xrange(live.keys.cdr_stream)] == [b'{"x": 1}']
    assert live.resp.pending() == 1  # nothing else was sent: the reply is still unread
    assert spooled == []
