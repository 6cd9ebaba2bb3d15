"""The number rated is the one the switch routed on: a strip-00 callee is rated on 44..., not on 0044....

SERVER_BILLING_GATEWAY_ROUTE_PREFIX 0 rates the callee after the mapping
gateway's transforms (the CDR's ``callee_number_routed``), 1 the callee as sent
to the vendor; a record or row from before the CDR carried the routed callee
falls back to the callee as received, a leading + dropped.
"""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import connection

from billing import ingest, rerating
from billing.catalogue import RATED_FROM, Catalog
from billing.models import CDR, Account, Rate, RateTable, RerateChange, RerateJob
from billing.rating import Rate as PriceLine
from billing.rating import RateIndex, RatingParameters, rate_call, rated_number
from softswitch_portal.core.models import SystemParameter
from tests.billing.streams import call_record, push

RECEIVED, ROUTED, SENT = "00447911123456", "447911123456", "0101447911123456"
MODE_1 = RatingParameters(gateway_route_prefix=1)


def line(prefix, per_minute, first=60, nxt=60):
    return PriceLine(prefix, "", Decimal(per_minute), first, nxt)


# ---------------------------------------------------------------------------
# rated_number and rate_call


def test_mode_0_rates_the_routed_callee_and_mode_1_the_sent_one():
    assert rated_number(RECEIVED, SENT, callee_number_routed=ROUTED) == ROUTED
    assert rated_number(RECEIVED, SENT, MODE_1, callee_number_routed=ROUTED) == SENT


def test_without_a_routed_callee_the_received_one_is_rated_a_plus_dropped():
    assert rated_number("+447911123456", SENT) == "447911123456"
    assert rated_number(RECEIVED, SENT) == RECEIVED


def test_a_strip_00_callee_is_charged_at_the_44_rate():
    index = RateIndex([line("44", "0.10"), line("0101", "0.50")])
    call = {
        "callee_number": RECEIVED,
        "callee_number_out": SENT,
        "start_ms": 0,
        "hold_time_ms": 61_000,
        "customer_rates": index,
        "vendor_rates": index,
    }
    routed = rate_call(**call, callee_number_routed=ROUTED)
    assert (routed.fee, routed.vendor_cost, routed.customer.prefix) == (Decimal("0.20"), Decimal("0.20"), "44")
    assert rate_call(**call, callee_number_routed=ROUTED, params=MODE_1).fee == Decimal("1.00")
    # The rule before: 0044... matches no rate, so the call cost nothing.
    assert rate_call(**call).fee == Decimal("0.00")


@pytest.mark.django_db
def test_the_catalogue_rates_a_cdr_row_on_its_routed_callee():
    table = RateTable.objects.create(name="Retail")
    Rate.objects.create(rate_table=table, prefix="44", price_per_minute="0.10", first_period=60, next_period=60)
    customer = Account.objects.create(name="Acme", rate_table=table)
    assert "callee_number_routed" in RATED_FROM
    row = {
        "callee_number": RECEIVED,
        "callee_number_routed": ROUTED,
        "callee_number_out": SENT,
        "start_ms": 0,
        "hold_time_ms": 61_000,
        "billing_mode": 1,
        "account_id": customer.pk,
        "vendor_account_id": None,
    }
    catalog = Catalog(recheck=0)
    with connection.cursor() as cursor:
        catalog.prepare(cursor, [customer.pk])
    rated = catalog.rate_row(row)
    assert (rated.fee, rated.customer.prefix) == (Decimal("0.20"), "44")


# ---------------------------------------------------------------------------
# The ingest and re-rating


@pytest.fixture
def book(db):
    retail = RateTable.objects.create(name="Retail")
    cost = RateTable.objects.create(name="Vendor cost")
    Rate.objects.bulk_create(
        [
            Rate(rate_table=retail, prefix="44", area="UK", price_per_minute="1.20", first_period=60, next_period=60),
            Rate(rate_table=retail, prefix="0101", area="Tech", price_per_minute="3.00", first_period=60,
                 next_period=60),
            Rate(rate_table=cost, prefix="44", area="UK", price_per_minute="0.60", first_period=1, next_period=1),
            Rate(rate_table=cost, prefix="0101", area="Tech", price_per_minute="1.20", first_period=1,
                 next_period=1),
        ]
    )  # fmt: skip
    return {
        "acme": Account.objects.create(name="Acme", rate_table=retail, credit_limit=50),
        "vendor": Account.objects.create(name="Vendor A", account_type="vendor", rate_table=cost),
    }


def record(n, book, start_ms, hold_ms=61_000, **numbers):
    numbers = {"callee_number": RECEIVED, "callee_number_routed": ROUTED, "callee_number_out": SENT, **numbers}
    return call_record(
        f"call-{n}@192.0.2.10",
        start_ms,
        caller_number="15551230000",
        account_id=book["acme"].pk,
        account_name="Acme",
        vendor_account_id=book["vendor"].pk,
        billing_mode=1,
        answer_ms=start_ms + 1000,
        stop_ms=start_ms + 1000 + hold_ms,
        hold_time_ms=hold_ms,
        end_reason="normal_clearing",
        sip_status=200,
        **numbers,
    )


def drain():
    ingester = ingest.Ingester("test", batch_size=100, block_ms=0)
    ingester.run(drain=True)
    ingester.client.close()
    return ingester.totals


def balance(account):
    account.refresh_from_db()
    return account.balance


def rated(n):
    cdr = CDR.objects.get(caller_call_id=f"call-{n}@192.0.2.10")
    return cdr.fee_time, cdr.fee, cdr.rate_prefix, cdr.vendor_cost, cdr.vendor_rate_prefix


@pytest.mark.django_db(transaction=True)
def test_the_ingest_charges_the_routed_callee_in_mode_0_and_the_sent_one_in_mode_1(prefix, redis_client, book):
    acme, vendor = book["acme"], book["vendor"]
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000) - 3_600_000
    push(redis_client, record(1, book, now_ms))
    assert drain().inserted == 1
    # 61 s: two 60 s periods at 1.20 for the customer, 61 s at 0.60 for the vendor.
    assert rated(1) == (120, Decimal("2.40"), "44", Decimal("0.61"), "44")
    assert CDR.objects.get(caller_call_id="call-1@192.0.2.10").callee_number_routed == ROUTED
    assert (balance(acme), balance(vendor)) == (Decimal("-2.40"), Decimal("0.61"))

    SystemParameter.objects.create(name="SERVER_BILLING_GATEWAY_ROUTE_PREFIX", value="1")
    push(redis_client, record(2, book, now_ms + 1000))
    assert drain().inserted == 1
    assert rated(2) == (120, Decimal("6.00"), "0101", Decimal("1.22"), "0101")
    assert (balance(acme), balance(vendor)) == (Decimal("-8.40"), Decimal("1.83"))


@pytest.mark.django_db(transaction=True)
def test_a_record_from_before_the_routed_callee_is_ingested_and_rated_as_received(prefix, redis_client, book):
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000) - 3_600_000
    old = record(1, book, now_ms, callee_number="+447911123456", callee_number_out="447911123456")
    del old["callee_number_routed"]
    push(redis_client, json.dumps(old))
    assert drain().inserted == 1
    assert rated(1) == (120, Decimal("2.40"), "44", Decimal("0.61"), "44")
    assert CDR.objects.get(caller_call_id="call-1@192.0.2.10").callee_number_routed == ""


@pytest.mark.django_db(transaction=True)
def test_rerating_corrects_a_call_rated_on_the_received_callee(book):
    """Two calls stored at 0.00, rated on 0044...: the one whose CDR names the routed callee is charged
    at the 44 rate; the one from before CDRs carried it keeps the old rule, and its 0.00."""
    acme, vendor = book["acme"], book["vendor"]
    day = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=3)
    for n, routed in ((1, ROUTED), (2, "")):
        start = day + dt.timedelta(hours=9, minutes=n)
        CDR.objects.create(
            call_uuid=f"uuid-{n}",
            caller_call_id=f"call-{n}@192.0.2.10",
            start_time=start,
            answer_time=start + dt.timedelta(seconds=1),
            stop_time=start + dt.timedelta(seconds=62),
            hold_time_ms=61_000,
            callee_number=RECEIVED,
            callee_number_routed=routed,
            callee_number_out=SENT,
            account=acme,
            vendor_account=vendor,
            billing_mode=1,
            end_reason="normal_clearing",
            sip_status=200,
        )
    assert rated(1) == rated(2) == (0, Decimal("0.0000"), "", Decimal("0.0000"), "")

    # One job for the customer's fees, one for the vendor's cost: each side is its own job's scope.
    jobs = [
        rerating.run_job(RerateJob.objects.create(account=account, start=day, end=day + dt.timedelta(days=1)).pk)
        for account in (acme, vendor)
    ]

    assert [(job.status, job.done, job.changed) for job in jobs] == [("done", 2, 1)] * 2
    assert rated(1) == (120, Decimal("2.40"), "44", Decimal("0.61"), "44")
    assert rated(2) == (0, Decimal("0.0000"), "", Decimal("0.0000"), "")
    assert (balance(acme), balance(vendor)) == (Decimal("-2.40"), Decimal("0.61"))
    [change] = RerateChange.objects.filter(job=jobs[0])
    assert (change.callee_number, change.old_fee, change.new_fee) == (RECEIVED, Decimal("0"), Decimal("2.40"))
