"""The routing simulator against the real switch: for each skip reason, what it predicts is what a call does.

One configuration with a routing gateway per reason (schedule, margin, no rate, capacity, CPS, switch limit,
prefix) ahead of the vendor that should get the call; the live counters of the full and the over-CPS vendor are
set in Redis, where the set-up's script reads them. The simulator's rows (through the API, as a NOC tool would
ask) and the real call's CDR (its decision trace and its vendor) must tell the same story.
"""

import datetime as dt
import time
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from billing.models import Account, Rate, RateTable
from softswitch_portal.switching.models import RoutingGateway, RoutingSchedule

from .conftest import VENDOR_A, keys, needs_sip, wait_for_cdrs

pytestmark = [pytest.mark.sip, needs_sip, pytest.mark.django_db(transaction=True)]

CALLEE = "4420794960"


def skip_world(switch_config, live_redis):
    """Gateways ahead of Vendor A, one per reason it must be passed over; Vendor B after it, Vendor C past the
    switch limit, and one serving another prefix only."""
    cfg = switch_config
    dear = RateTable.objects.create(name="Dear")
    Rate.objects.create(rate_table=dear, prefix="44", price_per_minute=Decimal("0.0900"), first_period=1, next_period=1)
    dear_vendor = Account.objects.create(name="Dear vendor", account_type="vendor", rate_table=dear)
    today = timezone.localtime().weekday()
    # Two days away: the whole of another weekday, never now (a test near midnight stays clear of it).
    elsewhere = RoutingSchedule.objects.create(
        name="Another day", weekdays=[(today + 2) % 7], start_time=dt.time(0, 0), end_time=dt.time(23, 59)
    )

    def gateway(name, priority, **fields):
        fields.setdefault("clearing_account", cfg.vendor_a)
        return RoutingGateway.objects.create(
            name=name, host="127.0.0.1", port=VENDOR_A + 50, priority=priority, **fields
        )

    world = {
        "schedule": gateway("Out of hours", 1),
        "margin": gateway("Dearer vendor", 2, clearing_account=dear_vendor),
        # Rated on the number as sent (SERVER_BILLING_GATEWAY_ROUTE_PREFIX 1): the customer has no rate for 999...
        "no_rate": gateway("Tech prefix", 3, tech_prefix="999"),
        "capacity": gateway("Full vendor", 4, capacity=1),
        "cps": gateway("Busy vendor", 5, cps_limit=1),
        "first": cfg.route_a,
        "kept": cfg.route_b,
        "switch_limit": gateway("Fifth in line", 30),
        "prefix": gateway("China only", 1, prefixes=["86"]),
    }
    world["schedule"].schedules.add(elsewhere)
    cfg.set_parameter("SERVER_BILLING_GATEWAY_ROUTE_PREFIX", 1)
    # Of the vendors planned (full, busy, A, B, fifth) the first four are tried at most.
    cfg.set_parameter("SS_GATEWAY_SWITCH_LIMIT", 4)
    cfg.publish()
    # The full vendor holds a call on another node for the next minute; the busy one had its attempt this
    # second, and every second of the next half minute (the counters the set-up script reads).
    k = keys()
    now_ms = int(time.time() * 1000)
    live_redis.zadd(k.slots("rgw", world["capacity"].id), {"held-elsewhere": now_ms + 60_000})
    for second in range(now_ms // 1000, now_ms // 1000 + 30):
        live_redis.set(f"{k.cps('rgw', world['cps'].id)}:{second}", 1, ex=60)
    return world


def live_state(client) -> dict:
    """Every key of the tests' prefix with its value, but the snapshot's (a publish may land meanwhile) and the
    nodes' heartbeats (each beats every 2 s)."""
    skip = (b":snapshot", keys().heartbeats.encode())
    return {key: client.dump(key) for key in client.scan_iter(f"{keys().prefix}:*") if not key.endswith(skip[1])
            and skip[0] not in key}  # fmt: skip


def test_simulator_rows_for_each_skip_reason_agree_with_what_the_real_call_does(
    callcore, switch_config, sipp, live_redis, client
):
    world = skip_world(switch_config, live_redis)
    names = {gateway.id: reason for reason, gateway in world.items()}
    user = get_user_model().objects.create_superuser("noc", "noc@example.com", "a-long-password-1")
    client.force_login(user)
    raw = redis.Redis.from_url(settings.REDIS_URL)
    before = live_state(raw)

    answer = client.post(
        "/api/switching/simulate/",
        {"mapping_gateway": switch_config.gateway.id, "caller": "15551230001", "callee": CALLEE},
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.content
    simulation = answer.json()
    rows = {row["gateway_id"]: row for row in simulation["rows"]}
    assert {names[pk]: row["reason"] for pk, row in rows.items() if row["reason"]} == {
        "schedule": "schedule",
        "margin": "margin",
        "no_rate": "no_rate",
        "capacity": "capacity",
        "cps": "cps",
        "switch_limit": "switch_limit",
        "prefix": "prefix",
    }
    assert rows[world["first"].id]["first"] and rows[world["kept"].id]["kept"]
    assert simulation["first_vendor"] == "Vendor A"
    assert simulation["rate_prefix"] == "44" and simulation["rate_price"] == "0.0200"
    assert simulation["max_duration_s"] == 7200
    # It read the live state and wrote nothing there.
    assert live_state(raw) == before

    # The real call, the same second or so later.
    sipp.vendor("uas_answer.xml", VENDOR_A)
    result = sipp.customer("uac_call.xml", CALLEE, hold_ms=300)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert sipp.wait_vendors() == [0]
    [record] = wait_for_cdrs(live_redis, 1)
    assert record["routing_gateway_id"] == world["first"].id
    trace = record["decision_trace"]
    parts = dict(part.split("=", 1) for part in trace.split(";"))
    recorded = {int(pk): reason for pk, reason in (item.split(":") for item in parts["skip"].split(","))}
    recorded |= {int(pk): "busy" for pk in parts["busy"].split(",")}
    # The CDR says "busy" where the set-up saw capacity or CPS (its one round trip does not say which);
    # a gateway of another prefix was never a candidate for this callee, so the call does not name it.
    simulated = {
        pk: "busy" if row["reason"] in ("capacity", "cps") else row["reason"]
        for pk, row in rows.items()
        if row["reason"] and row["reason"] != "prefix"
    }
    assert recorded == simulated
    assert parts["max"] == "7200:default"
    assert parts["policy"] == simulation["policy"] == "priority"
    planned = [int(pk) for pk in parts["routes"].split(",")]
    kept_in_order = sorted((row["order"], pk) for pk, row in rows.items() if row["order"])
    assert planned == [pk for _, pk in kept_in_order]
