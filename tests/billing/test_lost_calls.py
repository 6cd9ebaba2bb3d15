"""The calls of a call-core node whose heartbeat stopped are recorded, charged up to that heartbeat and released by
the worker's job, once, whoever else gets there; real Redis (a prefix of the test's own) and real PostgreSQL."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.conf import settings

from billing import ingest, lost_calls, tasks
from billing.models import CDR, Account, Rate, RateTable
from callcore.contract import AnsweredCall, BillingMode, Keys, RouteState, encode_answered
from callcore.live import LiveState, RouteLimit, SetupRequest

pytestmark = pytest.mark.django_db(transaction=True)

NOW = int(dt.datetime.now(dt.UTC).timestamp() * 1000) - 600_000  # the CDR's day has its partition
THRESHOLD_MS = lost_calls.STALE_AFTER_S * 1000


@pytest.fixture
def book(db):
    retail = RateTable.objects.create(name="Retail")
    cost = RateTable.objects.create(name="Vendor cost")
    Rate.objects.create(rate_table=retail, prefix="44", price_per_minute="1.20", first_period=1, next_period=1)
    Rate.objects.create(rate_table=cost, prefix="44", price_per_minute="0.60", first_period=1, next_period=1)
    return {
        "acme": Account.objects.create(name="Acme", rate_table=retail, credit_limit=50),
        "vendor": Account.objects.create(name="Vendor A", account_type="vendor", rate_table=cost),
    }


def live_call(live, book, call_id, node, answer_ms=None):
    registry = {
        "account_id": book["acme"].pk, "mapping_gateway_id": 1, "phone_id": None, "route_gateway_ids": [9],
        "billing_mode": int(BillingMode.MAPPING_GATEWAY), "caller": "15551230000", "callee": "447911123456",
        "source_ip": "192.0.2.10", "start_ms": NOW, "snapshot_version": 3, "node": node,
    }  # fmt: skip
    request = SetupRequest(
        call_id=call_id, mapping_gateway_id=1, account_id=book["acme"].pk, caller="15551230000",
        callee="447911123456", expiry_ms=NOW + 7_260_000, routes=[RouteLimit(9, 0, 0)], registry=registry,
    )  # fmt: skip
    assert live.setup(request, now_ms=NOW).status.name == "OK"
    if answer_ms is not None:
        route = RouteState(9, "Vendor A", "198.51.100.9", 5060, "udp", "15551230000", "447911123456", 0, 0,
                           frozenset(), 0, book["vendor"].pk, "44", "UK", "44", "UK")  # fmt: skip
        live.resp.execute("HSET", live.keys.live_answered, call_id, encode_answered(AnsweredCall(answer_ms, route)))


def drain():
    ingester = ingest.Ingester("test", batch_size=100, block_ms=0)
    ingester.run(drain=True)
    ingester.client.close()


def test_a_gone_nodes_answered_call_is_charged_up_to_its_last_heartbeat_once(prefix, redis_client, book):
    live = LiveState(settings.REDIS_URL, prefix)
    keys = Keys(prefix)
    live_call(live, book, "gone-1", "gone", answer_ms=NOW + 1_000)
    live_call(live, book, "alive-1", "alive", answer_ms=NOW + 1_000)
    last_beat = NOW + 31_000  # 30 s talked
    redis_client.hset(keys.heartbeats, mapping={"gone": last_beat, "alive": NOW + THRESHOLD_MS + 60_000})
    now = last_beat + THRESHOLD_MS + 1

    assert lost_calls.release_gone_nodes(now_ms=now) == 1
    assert redis_client.hkeys(keys.live_calls) == [b"alive-1"]  # a node that still beats keeps its calls
    assert redis_client.hkeys(keys.live_answered) == [b"alive-1"]
    assert redis_client.zscore(keys.slots("rgw", 9), "gone-1") is None
    assert not redis_client.hexists(keys.heartbeats, "gone")  # forgotten once its calls are recorded
    # Again, and the node itself starting again: nothing recorded twice.
    assert lost_calls.release_gone_nodes(now_ms=now + 15_000) == 0
    assert live.release_node("gone", now_ms=now + 30_000) == 0
    [(_id, fields)] = redis_client.xrange(keys.cdr_stream)
    record = json.loads(fields[b"cdr"])
    assert (record["node"], record["stop_ms"], record["hold_time_ms"], record["estimated"]) == (
        "gone", last_beat, 30_000, True,
    )  # fmt: skip

    drain()
    cdr = CDR.objects.get(call_uuid=record["call_uuid"])
    # 30 s at 1.20/min for the customer, at 0.60/min for the vendor, billed by the second.
    assert (cdr.fee_time, cdr.fee, cdr.vendor_cost, cdr.estimated) == (30, Decimal("0.60"), Decimal("0.30"), True)
    assert (cdr.end_reason, cdr.routing_gateway_id) == ("switch_restart", 9)
    book["acme"].refresh_from_db()
    assert book["acme"].balance == Decimal("-0.60")


def test_a_node_silent_for_less_than_the_threshold_keeps_its_calls(prefix, redis_client, book):
    live = LiveState(settings.REDIS_URL, prefix)
    live_call(live, book, "slow-1", "slow", answer_ms=NOW + 1_000)
    redis_client.hset(live.keys.heartbeats, "slow", NOW + 10_000)
    assert lost_calls.release_gone_nodes(now_ms=NOW + 10_000 + THRESHOLD_MS) == 0
    assert redis_client.hkeys(live.keys.live_calls) == [b"slow-1"]
    assert not redis_client.exists(live.keys.cdr_stream)


def test_the_beat_runs_the_job(prefix, redis_client, book):
    assert settings.CELERY_BEAT_SCHEDULE["release-lost-calls"]["task"] == "billing.tasks.release_lost_calls"
    live = LiveState(settings.REDIS_URL, prefix)
    live_call(live, book, "gone-2", "gone")
    redis_client.hset(live.keys.heartbeats, "gone", NOW)  # NOW is ten minutes ago
    assert tasks.release_lost_calls() == 1
    [(_id, fields)] = redis_client.xrange(live.keys.cdr_stream)
    assert (json.loads(fields[b"cdr"])["hold_time_ms"], json.loads(fields[b"cdr"])["stop_ms"]) == (0, NOW)
