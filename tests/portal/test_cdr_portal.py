"""The CDR portal on real data: totals of the filtered set, keyset pages, the decision trace."""

import datetime as dt
import html
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.models import CDR, Account
from softswitch_portal.generic.keyset import encode_key
from softswitch_portal.switching.models import RoutingGateway

NOW = timezone.now().replace(second=0, microsecond=0)


def local(moment):
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def text(response):
    return html.unescape(response.content.decode())


# Totals


@pytest.fixture
def day_of_calls(db):
    acme = Account.objects.create(name="Acme")
    other = Account.objects.create(name="Other")

    def cdr(uuid, minutes_ago, account, hold_ms, fee_time, fee, cost, mode=1):
        return CDR.objects.create(
            call_uuid=uuid, start_time=NOW - dt.timedelta(minutes=minutes_ago), billing_mode=mode, account=account,
            hold_time_ms=hold_ms, fee_time=fee_time, fee=Decimal(fee), vendor_cost=Decimal(cost),
        )  # fmt: skip

    cdr("a1", 10, acme, 61_000, 66, "0.11", "0.07")
    cdr("a2", 20, acme, 0, 0, "0", "0")
    cdr("a3", 30, acme, 125_000, 126, "0.21", "0.25")
    cdr("a-old", 60 * 24 * 3, acme, 60_000, 60, "9.00", "1.00")  # outside the window below
    cdr("o1", 15, other, 30_000, 30, "0.05", "0.01")
    cdr("x1", 5, None, 0, 0, "0", "0", mode=-2)
    return {"acme": acme, "other": other}


def test_the_list_totals_the_filtered_set_in_one_query(operator_client, day_of_calls):
    params = {"account": day_of_calls["acme"].pk, "start_time_after": local(NOW - dt.timedelta(hours=2))}
    with CaptureQueriesContext(connection) as queries:
        response = operator_client.get(reverse("billing:cdr_list"), params)
    totals = response.context["totals"]
    assert (totals["attempts"], totals["connected"], totals["asr"], totals["acd"]) == (3, 2, Decimal("66.7"), 93)
    assert (totals["billed_minutes"], totals["revenue"], totals["cost"], totals["margin"]) == (
        Decimal("3.20"),
        Decimal("0.32"),
        Decimal("0.32"),
        Decimal("0"),
    )
    aggregates = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"] and "billing_cdr" in q["sql"]]
    assert len(aggregates) == 1
    page = text(response)
    assert "Billed minutes" in page and "3.20" in page and "66.7" in page


def test_totals_follow_every_filter(operator_client, day_of_calls):
    window = {"start_time_after": local(NOW - dt.timedelta(hours=2)), "start_time_before": local(NOW)}
    everything = operator_client.get(reverse("billing:cdr_list"), window).context["totals"]
    assert (everything["attempts"], everything["revenue"]) == (5, Decimal("0.37"))
    illegal = operator_client.get(reverse("billing:cdr_list"), {**window, "billing_mode": "-2"}).context["totals"]
    assert (illegal["attempts"], illegal["connected"], illegal["asr"]) == (1, 0, Decimal("0.0"))


def test_without_a_time_range_the_list_asks_for_one_instead_of_totalling(operator_client, day_of_calls):
    with CaptureQueriesContext(connection) as queries:
        response = operator_client.get(reverse("billing:cdr_list"), {"account": day_of_calls["acme"].pk})
    assert response.context["totals"] is None
    assert not any("COUNT(" in q["sql"] for q in queries.captured_queries)
    page = text(response)
    assert "Set a time range" in page and "Last hour" in page
    # The shortcut keeps the filters and sets the window.
    assert f"account={day_of_calls['acme'].pk}&amp;start_time_after=" in response.content.decode()


def test_a_window_longer_than_a_week_is_not_totalled(operator_client, day_of_calls):
    params = {"start_time_after": local(NOW - dt.timedelta(days=30))}
    response = operator_client.get(reverse("billing:cdr_list"), params)
    assert response.context["totals"] is None
    assert "at most 7 days" in text(response)
    bounded = {
        "start_time_after": local(NOW - dt.timedelta(days=30)),
        "start_time_before": local(NOW - dt.timedelta(days=24)),
    }
    assert operator_client.get(reverse("billing:cdr_list"), bounded).context["totals"]["attempts"] == 0


# Keyset pages


@pytest.fixture
def tied_calls(db):
    """23 calls, several sharing each start time (a burst of calls within one millisecond)."""
    created = []
    for index in range(23):
        start = NOW - dt.timedelta(seconds=index // 4)  # 4 calls per second: ties on start_time
        created.append(CDR.objects.create(call_uuid=f"t{index:02d}", start_time=start, billing_mode=1))
    return created


def page_of(client, **params):
    response = client.get(reverse("billing:cdr_list"), {"per_page": "5", **params})
    assert response.status_code == 200
    return response, [row.record.pk for row in response.context["table"].paginated_rows]


def walk(client, direction, **params):
    """Follow Next (or Previous) links until there is none; return the pages of ids."""
    response, ids = page_of(client, **params)
    pages = [ids]
    for _ in range(20):
        keyset = response.context["keyset"]
        key = keyset.next_key if direction == "after" else keyset.previous_key
        if key is None:
            return pages, response
        response, ids = page_of(client, **{**params, direction: key})
        pages.append(ids)
    raise AssertionError("the pages never end")


def test_keyset_pages_return_every_row_once_newest_first_with_ties(operator_client, tied_calls):
    expected = [c.pk for c in sorted(tied_calls, key=lambda c: (c.start_time, c.pk), reverse=True)]
    pages, last = walk(operator_client, "after")
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    assert [pk for page in pages for pk in page] == expected
    assert last.context["keyset"].next_key is None and 'rel="next"' not in last.content.decode()


def _key_before(calls, pk):
    """The key of the row just above ``pk`` in the list: the Next link that opens ``pk``'s page."""
    ordered = sorted(calls, key=lambda c: (c.start_time, c.pk), reverse=True)
    index = [c.pk for c in ordered].index(pk)
    row = ordered[index - 1]
    return row.start_time, row.pk


def test_previous_from_the_last_page_walks_back_to_the_first(operator_client, tied_calls):
    forward, _ = walk(operator_client, "after")
    last_response, _ = page_of(operator_client, after=encode_key(*_key_before(tied_calls, forward[-1][0])))
    pages = [[row.record.pk for row in last_response.context["table"].paginated_rows]]
    response = last_response
    while response.context["keyset"].previous_key:
        response, ids = page_of(operator_client, before=response.context["keyset"].previous_key)
        pages.append(ids)
    assert pages[::-1] == forward


def test_keyset_pages_oldest_first(operator_client, tied_calls):
    expected = [c.pk for c in sorted(tied_calls, key=lambda c: (c.start_time, c.pk))]
    pages, _ = walk(operator_client, "after", sort="start_time")
    assert [pk for page in pages for pk in page] == expected


def test_a_deep_page_reads_from_its_key_not_an_offset(operator_client, tied_calls):
    row = sorted(tied_calls, key=lambda c: (c.start_time, c.pk), reverse=True)[12]
    with CaptureQueriesContext(connection) as queries:
        response, ids = page_of(operator_client, after=encode_key(row.start_time, row.pk))
    assert len(ids) == 5 and row.pk not in ids
    listing = [q["sql"] for q in queries.captured_queries if 'FROM "billing_cdr"' in q["sql"] and "LIMIT" in q["sql"]]
    assert listing and all("OFFSET" not in sql for sql in listing)
    assert "further down the list" in text(response)


def test_a_mangled_key_shows_the_first_page(operator_client, tied_calls):
    _, first = page_of(operator_client)
    assert page_of(operator_client, after="yesterday_x")[1] == first


# The decision trace


def test_the_detail_page_shows_the_vendors_tried_in_order_with_their_answers(operator_client, db):
    kept = RoutingGateway.objects.create(name="carrier-two", host="198.51.100.2")
    cdr = CDR.objects.create(
        call_uuid="trace", start_time=NOW, billing_mode=1, end_direction=1, end_reason="normal_clearing",
        sip_status=200, hold_time_ms=42_000,
        vendors_tried=[
            {"gateway_id": 999_999, "gateway": "carrier-gone", "ip": "198.51.100.1", "status": 503},
            {"gateway_id": kept.pk, "gateway": "carrier-two", "ip": "198.51.100.2", "status": 408},
            {"gateway_id": kept.pk, "gateway": "carrier-two", "ip": "198.51.100.3", "status": 200},
        ],
    )  # fmt: skip
    response = operator_client.get(reverse("billing:cdr", args=[cdr.pk]))
    page = text(response)
    assert "Decision trace" in page
    assert "Call answered and ended normally" in page and "normal_clearing" in page
    assert "Mapping gateway account" in page and "200 OK" in page
    table = page[page.index("Routing gateway</th>") : page.index("</table>", page.index("Routing gateway</th>"))]
    rows = table.split("<tr>")[1:]
    assert len(rows) == 3
    assert "carrier-gone" in rows[0] and "deleted" in rows[0] and "503 Service Unavailable" in rows[0]
    assert "Failed: tried the next vendor" in rows[0] and "198.51.100.1" in rows[0]
    assert "408 Request Timeout" in rows[1] and reverse("switching:routinggateway", args=[kept.pk]) in rows[1]
    assert "200 OK" in rows[2] and "Answered" in rows[2] and "198.51.100.3" in rows[2]


def test_the_trace_of_an_illegal_call_says_no_vendor_was_tried(operator_client, db):
    cdr = CDR.objects.create(
        call_uuid="scan", start_time=NOW, billing_mode=-2, end_direction=2, end_reason="illegal_source",
        sip_status=403, caller_ip="203.0.113.66",
    )  # fmt: skip
    page = text(operator_client.get(reverse("billing:cdr", args=[cdr.pk])))
    assert "Illegal call" in page and "403 Forbidden" in page
    assert "Source is neither a mapping gateway nor a registered phone" in page
    assert "None: the call ended before any vendor was tried." in page
