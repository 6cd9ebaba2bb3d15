"""Traffic statistics against figures worked out by hand on generated CDRs (real PostgreSQL)."""

import datetime as dt
from decimal import Decimal as D

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import CDR, Account
from softswitch_portal.live import stats
from softswitch_portal.switching.models import MappingGateway, RoutingGateway

NOW = timezone.make_aware(dt.datetime(2026, 3, 2, 12, 0, 30))


@pytest.fixture
def traffic(db):
    acme = Account.objects.create(name="Acme")
    a = MappingGateway.objects.create(name="gw-a", account=acme, remote_ips=["192.0.2.10"])
    b = MappingGateway.objects.create(name="gw-b", account=acme, remote_ips=["192.0.2.20"])
    one = RoutingGateway.objects.create(name="one", host="198.51.100.1")
    two = RoutingGateway.objects.create(name="two", host="198.51.100.2")

    def call(uuid, minutes_ago, mapping, route, hold_ms, status, pdd_ms, tried):
        start = NOW - dt.timedelta(minutes=minutes_ago)
        CDR.objects.create(
            call_uuid=uuid, start_time=start, billing_mode=1, mapping_gateway=mapping, hold_time_ms=hold_ms,
            answer_time=start if hold_ms else None, sip_status=status, pdd_ms=pdd_ms, routing_gateway=route,
            vendors_tried=[{"gateway_id": g.pk, "gateway": g.name, "ip": g.host, "status": s} for g, s in tried],
        )  # fmt: skip

    call("c1", 2, a, one, 60_000, 200, 2000, [(one, 200)])
    call("c2", 4, a, one, 0, 486, 3000, [(one, 486)])
    call("c3", 10, a, one, 120_000, 200, 1000, [(two, 503), (one, 200)])
    call("c4", 30, a, two, 0, 503, None, [(two, 503)])
    call("c5", 70, a, one, 30_000, 200, 500, [(one, 200)])  # an hour and more ago: the hourly chart only
    call("c6", 1, b, None, 0, 403, None, [])  # refused by the switch
    # Nonsense in vendors_tried is skipped, not an error.
    CDR.objects.create(call_uuid="odd", start_time=NOW - dt.timedelta(minutes=3), billing_mode=1,
                       vendors_tried=[{"gateway_id": "x"}, 7, {"status": 200}])  # fmt: skip
    return {"a": a, "b": b, "one": one, "two": two}


def figures(row, minutes):
    f = row["windows"][minutes]
    return f["attempts"], f["connected"], f["asr"], f["ner"], f["acd"], f["pdd"], f["minutes"]


def by_name(rows):
    return {row["name"]: row for row in rows}


def test_mapping_gateways_over_the_last_5_15_and_60_minutes(traffic):
    rows = by_name(stats.recent(stats.MAPPING, now=NOW))
    assert list(rows) == ["gw-a", "gw-b"]  # busiest first
    # 5 min: c1 (answered, 60 s, PDD 2 s) and c2 (busy: the user answered it, PDD 3 s).
    assert figures(rows["gw-a"], 5) == (2, 1, D("50.0"), D("100.0"), D("60.0"), D("2.50"), D("1.00"))
    # 15 min: + c3 (answered after a failover, 120 s, PDD 1 s).
    assert figures(rows["gw-a"], 15) == (3, 2, D("66.7"), D("100.0"), D("90.0"), D("2.00"), D("3.00"))
    # 60 min: + c4 (every vendor failed: the network's fault, no ringing).
    assert figures(rows["gw-a"], 60) == (4, 2, D("50.0"), D("75.0"), D("90.0"), D("2.00"), D("3.00"))
    assert figures(rows["gw-b"], 5) == (1, 0, D("0.0"), D("0.0"), None, None, D("0.00"))


def test_routing_gateways_count_every_try_and_time_the_calls_they_ended(traffic):
    rows = by_name(stats.recent(stats.ROUTING, now=NOW))
    assert figures(rows["one"], 5) == (2, 1, D("50.0"), D("100.0"), D("60.0"), D("2.50"), D("1.00"))
    assert figures(rows["one"], 15) == (3, 2, D("66.7"), D("100.0"), D("90.0"), D("2.00"), D("3.00"))
    assert figures(rows["one"], 60) == (3, 2, D("66.7"), D("100.0"), D("90.0"), D("2.00"), D("3.00"))
    # Two was tried by c3 (503, then one answered) and c4 (503): two attempts, nothing connected.
    assert figures(rows["two"], 5) == (0, 0, None, None, None, None, D("0.00"))
    assert figures(rows["two"], 60) == (2, 0, D("0.0"), D("0.0"), None, None, D("0.00"))


def hour_of(hours, hour):
    (row,) = [h for h in hours if h["hour"].hour == hour]
    return row["attempts"], row["connected"], row["asr"], row["ner"], row["acd"], row["pdd"], row["minutes"]


def test_per_hour_every_hour_of_the_days_asked_with_its_figures(traffic):
    hours = stats.hourly(days=1, now=NOW)
    assert [h["hour"].hour for h in hours] == list(range(13))  # midnight to the hour now, gaps as zeros
    # All traffic: c1-c4, c6 and the odd record (no gateway at all, still a call).
    assert hour_of(hours, 11) == (6, 2, D("33.3"), D("50.0"), D("90.0"), D("2.00"), D("3.00"))
    assert hour_of(hours, 10) == (1, 1, D("100.0"), D("100.0"), D("30.0"), D("0.50"), D("0.50"))
    assert hour_of(hours, 9) == (0, 0, None, None, None, None, D("0.00"))
    assert len(stats.hourly(days=2, now=NOW)) == 37
    one = stats.hourly(days=1, side=stats.ROUTING, gateway=traffic["one"], now=NOW)
    assert hour_of(one, 11) == (3, 2, D("66.7"), D("100.0"), D("90.0"), D("2.00"), D("3.00"))
    b = stats.hourly(days=1, gateway=traffic["b"], now=NOW)
    assert hour_of(b, 11) == (1, 0, D("0.0"), D("0.0"), None, None, D("0.00"))


def test_the_page_shows_the_windows_and_the_hourly_charts(client, django_user_model, traffic):
    client.force_login(django_user_model.objects.create_superuser("s", "s@example.com", "pw-not-real-42"))
    CDR.objects.create(call_uuid="now", start_time=timezone.now() - dt.timedelta(minutes=1), billing_mode=1,
                       mapping_gateway=traffic["a"], hold_time_ms=61_000)  # fmt: skip
    page = client.get(reverse("live:statistics")).content.decode()
    assert ">gw-a</a>" in page
    for text in ("5 min", "15 min", "60 min", "Attempts", "ASR %", "NER %", "ACD s", "PDD s", "<svg"):
        assert text in page, text
    page = client.get(reverse("live:statistics"), {"side": "routing", "routing_gateway": traffic["one"].pk})
    assert page.status_code == 200 and "Per hour, the last 2 days: one" in page.content.decode()
    both = client.get(reverse("live:statistics"), {"mapping_gateway": traffic["a"].pk,
                                                   "routing_gateway": traffic["one"].pk})  # fmt: skip
    assert "Pick one gateway" in both.content.decode()
    assert "Some choices are not valid" in client.get(reverse("live:statistics"), {"days": "99"}).content.decode()


def test_the_home_page_charts_the_calls_of_each_of_the_last_24_hours(client, django_user_model, traffic):
    client.force_login(django_user_model.objects.create_superuser("h", "h@example.com", "pw-not-real-42"))
    assert "No calls in this period." in client.get(reverse("home")).content.decode()
    for minutes in (1, 2, 61):
        CDR.objects.create(call_uuid=f"h{minutes}", start_time=timezone.now() - dt.timedelta(minutes=minutes),
                           billing_mode=1, mapping_gateway=traffic["a"])  # fmt: skip
    page = client.get(reverse("home")).content.decode()
    assert "Calls per hour, last 24 hours" in page and "<svg" in page
    hour = timezone.localtime(timezone.now() - dt.timedelta(minutes=1))
    # The SVG's tooltip of each bar: its hour and its count (two calls in this hour unless it just began).
    assert f"{hour:%H}:00: " in page
