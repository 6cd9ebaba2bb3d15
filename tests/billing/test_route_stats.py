"""The Best ASR route policy's figures: the CDR ingest counts each vendor's attempts per minute, once, by the
routing gateway bill's definition, and the beat task publishes the window's sums for the call core.

Real Redis (a prefix of its own per test) and real PostgreSQL; records in the call core's format.
"""

import datetime as dt
import time

import pytest
from django.conf import settings
from django.utils import timezone

from billing import ingest, reports, route_stats, tasks
from billing.models import CDR
from callcore import contract
from callcore.contract import ROUTE_STATS_MAX_MINUTES, Keys, RouteStats
from softswitch_portal.celery import app
from softswitch_portal.core.models import SystemParameter
from tests.billing.streams import call_record, push

pytestmark = pytest.mark.django_db(transaction=True)

NOW_MS = int(time.time() * 1000)
# A whole minute some way back: every call below starts in it unless told otherwise.
MINUTE = NOW_MS // 60_000 - 30
A, B, C = 701, 702, 703  # routing gateway ids; the counts need no gateway rows


def call(n, routing_gateway_id, tried, hold_ms=0, start_ms=None):
    """A call that tried ``tried`` ((gateway id, SIP answer) pairs, or raw list elements) and ended on
    ``routing_gateway_id``; nobody is billed, so no rates are needed."""
    start = start_ms if start_ms is not None else MINUTE * 60_000 + n * 10
    return call_record(
        f"asr-{n}@192.0.2.10",
        start,
        callee_number="442071838750",
        caller_ip="192.0.2.10",
        routing_gateway_id=routing_gateway_id,
        answer_ms=start + 1500 if hold_ms else None,
        stop_ms=start + 1500 + hold_ms,
        hold_time_ms=hold_ms,
        end_reason="normal_clearing" if hold_ms else "vendor_failed",
        sip_status=200 if hold_ms else 503,
        vendors_tried=[
            {"gateway_id": item[0], "gateway": f"gw {item[0]}", "ip": "198.51.100.7", "status": item[1]}
            if isinstance(item, tuple)
            else item
            for item in tried
        ],
    )


def drain(**kwargs):
    ingester = ingest.Ingester("test", batch_size=kwargs.pop("batch_size", 100), block_ms=0, **kwargs)
    ingester.run(drain=True)
    ingester.client.close()
    return ingester.totals


def minute_counts(client, minute=MINUTE):
    return {
        k.decode(): int(v) for k, v in client.hgetall(Keys(settings.REDIS_PREFIX).route_stats_minute(minute)).items()
    }


def test_a_failover_counts_a_failed_attempt_for_the_first_vendor_and_a_connected_one_for_the_second(
    prefix, redis_client
):
    push(
        redis_client,
        call(1, B, [(A, 503), (B, 200)], hold_ms=20_000),
        # Refused before routing (an illegal call): no vendor, no attempt.
        call(2, None, [], start_ms=(MINUTE + 1) * 60_000),
    )
    assert drain().inserted == 2
    assert minute_counts(redis_client) == {f"a:{A}": 1, f"a:{B}": 1, f"c:{B}": 1}
    assert not redis_client.exists(Keys(prefix).route_stats_minute(MINUTE + 1))


def test_a_minute_is_kept_as_long_as_the_longest_window_from_when_it_began(prefix, redis_client):
    push(redis_client, call(1, A, [(A, 200)], hold_ms=1000))
    drain()
    expire_at = redis_client.expiretime(Keys(prefix).route_stats_minute(MINUTE))
    assert expire_at == (MINUTE + ROUTE_STATS_MAX_MINUTES + 1) * 60


def test_calls_add_up_per_minute_and_gateway_across_batches(prefix, redis_client):
    push(redis_client, call(1, A, [(A, 200)], hold_ms=5000), call(2, A, [(A, 486)]))
    drain()
    push(redis_client, call(3, B, [(A, 503), (B, 200)], hold_ms=1000), call(4, A, [], start_ms=(MINUTE - 1) * 60_000))
    drain()
    assert minute_counts(redis_client) == {f"a:{A}": 3, f"c:{A}": 1, f"a:{B}": 1, f"c:{B}": 1}
    assert minute_counts(redis_client, MINUTE - 1) == {f"a:{A}": 1}


def test_the_same_entries_handled_again_do_not_change_the_counts(prefix, redis_client):
    push(redis_client, call(1, B, [(A, 503), (B, 200)], hold_ms=20_000), call(2, A, [(A, 200)], hold_ms=3000))
    ingester = ingest.Ingester("test", batch_size=10, block_ms=0)
    ingester.ensure_group()
    entries = ingester.read()
    assert ingester.process(entries, read_ahead=False).inserted == 2
    counted = minute_counts(redis_client)
    assert counted == {f"a:{A}": 2, f"c:{A}": 1, f"a:{B}": 1, f"c:{B}": 1}
    # Handled again, as by a consumer that claimed them before the first one's acknowledgement: all duplicates.
    again = ingester.process(entries, read_ahead=False)
    assert (again.inserted, again.duplicates) == (0, 2)
    assert minute_counts(redis_client) == counted
    ingester.client.close()


def test_a_batch_read_again_after_a_crash_counts_nothing_not_even_its_new_calls(prefix, redis_client):
    first = call(1, A, [(A, 200)], hold_ms=3000)
    push(redis_client, first)
    drain()
    # The first call again (its batch stored, then the worker died before acknowledging it) with a new one.
    push(redis_client, first, call(2, B, [(B, 200)], hold_ms=3000))
    totals = drain()
    assert (totals.inserted, totals.duplicates) == (1, 1)
    # Which rows were new the insert does not say: an undercount rather than a call counted twice.
    assert minute_counts(redis_client) == {f"a:{A}": 1, f"c:{A}": 1}


def test_records_set_aside_are_not_counted(prefix, redis_client, monkeypatch):
    # Validation that let a longer number through: PostgreSQL refuses that record, and only that one.
    monkeypatch.setitem(contract.TEXT_WIDTHS, "caller_number", 500)
    refused = call(2, B, [(B, 200)], hold_ms=1000)
    refused["caller_number"] = "1" * 80
    push(redis_client, call(1, A, [(A, 200)], hold_ms=1000), refused, "{not json", call(3, A, [(A, 486)]))
    totals = drain()
    assert (totals.inserted, totals.duplicates, totals.dead) == (2, 0, 2)
    assert minute_counts(redis_client) == {f"a:{A}": 2, f"c:{A}": 1}


def test_a_call_older_than_the_longest_window_is_stored_but_not_counted(prefix, redis_client):
    old_minute = NOW_MS // 60_000 - ROUTE_STATS_MAX_MINUTES - 2
    push(redis_client, call(1, A, [(A, 200)], hold_ms=1000, start_ms=old_minute * 60_000))
    assert drain().inserted == 1
    assert not redis_client.keys(f"{prefix}:routestats:*")


# The definition, held to the report's


def test_the_counting_function_reads_vendors_tried_as_the_report_does():
    assert route_stats.vendor_attempts(B, 1, [{"gateway_id": A}, {"gateway_id": B}]) == [(A, False), (B, True)]
    # Cut short before the vendor the call ended on: both count.
    assert route_stats.vendor_attempts(B, 0, [{"gateway_id": A}]) == [(A, False), (B, False)]
    assert route_stats.vendor_attempts(A, 0, []) == [(A, False)]
    assert route_stats.vendor_attempts(None, 0, []) == []
    assert route_stats.vendor_attempts(A, 0, {"gateway_id": B}) == [(A, False)]  # not a list
    assert route_stats.vendor_attempts(A, 0, [{"gateway_id": "one"}, "junk", {"status": 503}, None]) == [(A, False)]
    assert route_stats.vendor_attempts(A, 0, [{"gateway_id": True}, {"gateway_id": 7.0}, {"gateway_id": -7}]) == [
        (A, False)
    ]
    assert route_stats.vendor_attempts(A, 0, [{"gateway_id": "007"}, {"gateway_id": str(A)}]) == [
        (7, False),
        (A, False),
    ]


# Each (routing gateway, hold ms, vendors tried), the awkward ones included.
AWKWARD = [
    (A, 60_000, [(A, 200)]),
    (B, 20_000, [(A, 503), (B, 200)]),
    (B, 0, [(A, 503), (B, 486)]),
    (B, 0, [(A, 503)]),  # cut short
    (A, 0, []),
    (None, 0, []),
    (None, 0, [(C, 503)]),  # every vendor failed before the call was put on one
    (B, 0, [{"gateway_id": "one"}, "junk", {"status": 503}, None]),
    (B, 5000, [{"gateway_id": str(A)}, {"gateway_id": str(B)}]),
    (B, 0, [{"gateway_id": "0701"}, {"gateway_id": "00702"}]),
    (A, 0, [{"gateway_id": True}, {"gateway_id": 703.0}, {"gateway_id": -703}, {"gateway_id": 10**18}]),
    (A, 0, [{"gateway_id": "1234567890123456789"}, {"gateway_id": 999_999_999_999_999_999}]),
    (A, 1000, [(A, 503), (A, 200)]),  # the same vendor twice
    (A, 0, [(A, 503), (B, 503)]),  # ended on a vendor tried earlier, not last
    (A, 0, [{"gateway_id": 701.0}]),
]


def test_the_counts_agree_with_the_routing_gateway_bill_on_the_same_cdrs(prefix, redis_client):
    push(redis_client, *(call(n, gateway, tried, hold) for n, (gateway, hold, tried) in enumerate(AWKWARD)))
    assert drain().inserted == len(AWKWARD)
    # A list that is not a list, which only an older row could hold (the ingest refuses one): the gateway alone.
    CDR.objects.create(call_uuid="not-a-list", start_time=timezone.now() - dt.timedelta(minutes=30), billing_mode=-1,
                       routing_gateway_id=A, vendors_tried={"gateway_id": B})  # fmt: skip

    today = timezone.localdate()
    period = reports.Period(today - dt.timedelta(days=1), today + dt.timedelta(days=1), reports.TOTAL)
    bill = {
        row["routing_gateway_id"]: (row["attempts"], row["connected"]) for row in reports.routing_attempts(period).rows
    }
    python = {}
    for gateway, hold, tried in CDR.objects.values_list("routing_gateway_id", "hold_time_ms", "vendors_tried"):
        for gateway_id, connected in route_stats.vendor_attempts(gateway, hold, tried):
            attempts, answered = python.get(gateway_id, (0, 0))
            python[gateway_id] = (attempts + 1, answered + connected)
    assert python == bill == {A: (15, 2), B: (7, 2), C: (1, 0), 999_999_999_999_999_999: (1, 0)}

    # And what the ingest counted is the same, less the row it never saw.
    counted = route_stats.sum_window(redis_client, Keys(prefix), 60, NOW_MS)
    assert counted == {**bill, A: (14, 2)}


# Publishing


def test_the_publisher_sums_the_windows_minutes_only_and_the_figures_expire(prefix, redis_client):
    SystemParameter.objects.create(name="SS_ROUTE_ASR_WINDOW_MINUTES", value="5")
    keys = Keys(prefix)
    now = NOW_MS // 60_000
    for minute, fields in {
        now: {f"a:{A}": 4, f"c:{A}": 3},  # the current minute counts
        now - 4: {f"a:{A}": 6, f"c:{A}": 1, f"a:{B}": 2},  # the window's first minute
        now - 5: {f"a:{A}": 100, f"c:{A}": 100, f"a:{C}": 9},  # just before the window: left out
    }.items():
        redis_client.hset(keys.route_stats_minute(minute), mapping=fields)

    stats = route_stats.publish(now_ms=NOW_MS)
    assert stats == RouteStats(at_ms=NOW_MS, window_minutes=5, gateways={A: (10, 4), B: (2, 0)})
    assert RouteStats.decode(redis_client.get(keys.route_asr)) == stats
    assert 0 < redis_client.ttl(keys.route_asr) <= route_stats.PUBLISHED_TTL_SECONDS
    assert route_stats.published() == stats


def test_the_window_defaults_to_the_parameters_default_and_an_empty_window_publishes_no_gateway(prefix, redis_client):
    stats = route_stats.publish()
    assert (stats.window_minutes, stats.gateways) == (60, {})
    assert RouteStats.decode(redis_client.get(Keys(prefix).route_asr)).gateways == {}


def test_beat_publishes_the_figures_every_thirty_seconds(prefix, redis_client):
    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "billing.tasks.publish_route_asr")
    assert entry["schedule"] == 30 and 0 < entry["options"]["expires"] < entry["schedule"]
    assert entry["task"] in app.tasks
    push(redis_client, call(1, B, [(A, 503), (B, 200)], hold_ms=20_000, start_ms=NOW_MS - 120_000))
    drain()
    assert tasks.publish_route_asr.apply().get() == 2
    published = RouteStats.decode(redis_client.get(Keys(prefix).route_asr))
    assert published.gateways == {A: (1, 0), B: (1, 1)}


def test_a_call_from_a_clock_far_ahead_is_kept_no_longer_than_the_longest_window_from_now(prefix, redis_client):
    ahead = NOW_MS + 10 * 86_400_000
    push(redis_client, call(1, A, [(A, 200)], hold_ms=1000, start_ms=ahead))
    drain()
    expire_at = redis_client.expiretime(Keys(prefix).route_stats_minute(ahead // 60_000))
    assert NOW_MS // 1000 < expire_at <= time.time() + (ROUTE_STATS_MAX_MINUTES + 1) * 60
