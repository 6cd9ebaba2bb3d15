"""Re-rating: a price fix applied to a period's CDRs, balances moved by the difference exactly once.

The CDRs are put in by the real ingest (records in the call core's format on
a Redis stream of this test's own prefix), so "re-rated with unchanged rates"
must come out exactly as the ingest rated.
"""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from billing import ingest, rerating
from billing.models import CDR, Account, Payment, Rate, RateTable, RerateChange, RerateJob
from billing.services import apply_payment
from tests.billing.streams import call_record

pytestmark = pytest.mark.django_db(transaction=True)

TODAY = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
DAY1 = TODAY - dt.timedelta(days=3)  # the period re-rated
DAY2 = TODAY - dt.timedelta(days=2)  # outside it


@pytest.fixture
def book(db):
    retail = RateTable.objects.create(name="Retail")
    wholesale = RateTable.objects.create(name="Wholesale")
    cost = RateTable.objects.create(name="Vendor cost")
    Rate.objects.bulk_create(
        [
            Rate(rate_table=retail, prefix="44", area="UK", price_per_minute="0.10", first_period=60, next_period=60),
            Rate(rate_table=wholesale, prefix="44", area="UK", price_per_minute="0.10", first_period=60,
                 next_period=60),
            Rate(rate_table=cost, prefix="44", area="UK", price_per_minute="0.04", first_period=1, next_period=1),
        ]
    )  # fmt: skip
    return {
        "retail": retail,
        "wholesale": wholesale,
        "cost": cost,
        "acme": Account.objects.create(name="Acme", rate_table=retail, credit_limit=50),
        "globex": Account.objects.create(name="Globex", rate_table=wholesale, credit_limit=50),
        "vendor": Account.objects.create(name="Vendor A", account_type="vendor", rate_table=cost),
    }


def record(n, customer, vendor, when, hold_ms=61_000):
    start = int(when.timestamp() * 1000) + n * 1000
    return call_record(
        f"call-{n}@192.0.2.10",
        start,
        caller_number="15551230000",
        callee_number="442071838750",
        callee_number_out="442071838750",
        account_id=customer.pk,
        account_name=customer.name,
        vendor_account_id=vendor.pk,
        billing_mode=1,
        answer_ms=start + 1000,
        stop_ms=start + 1000 + hold_ms,
        hold_time_ms=hold_ms,
        end_reason="normal_clearing",
        sip_status=200,
    )


def ingest_records(client, *records):
    pipe = client.pipeline()
    for r in records:
        pipe.xadd(ingest.stream_key(), {"cdr": r if isinstance(r, str) else json.dumps(r)})
    pipe.execute()
    ingester = ingest.Ingester("test", batch_size=100, block_ms=0)
    ingester.run(drain=True)
    ingester.client.close()
    return ingester.totals


@pytest.fixture
def calls(prefix, redis_client, book):
    """Acme: 3 calls on day 1, 1 on day 2; Globex: 1 on day 1. Each 61 s: fee 0.20, vendor cost 0.0407 -> 0.04."""
    acme, globex, vendor = book["acme"], book["globex"], book["vendor"]
    totals = ingest_records(
        redis_client,
        record(1, acme, vendor, DAY1 + dt.timedelta(hours=9)),
        record(2, acme, vendor, DAY1 + dt.timedelta(hours=10)),
        record(3, acme, vendor, DAY1 + dt.timedelta(hours=23, minutes=59)),
        record(4, acme, vendor, DAY2 + dt.timedelta(hours=1)),
        record(5, globex, vendor, DAY1 + dt.timedelta(hours=11)),
    )
    assert totals.inserted == 5
    return book


def balance(account):
    account.refresh_from_db()
    return account.balance


def fees():
    return {c.caller_call_id.split("@")[0]: (c.fee, c.vendor_cost) for c in CDR.objects.all()}


def make_job(**kwargs):
    kwargs.setdefault("start", DAY1)
    kwargs.setdefault("end", DAY1 + dt.timedelta(days=1))
    return RerateJob.objects.create(**kwargs)


def snapshot():
    return fees(), {a.name: a.balance for a in Account.objects.all()}, RerateChange.objects.count()


def test_a_price_fix_rerates_the_right_cdrs_and_moves_balances_by_the_difference(calls):
    acme, globex, vendor = calls["acme"], calls["globex"], calls["vendor"]
    assert (balance(acme), balance(globex), balance(vendor)) == (Decimal("-0.80"), Decimal("-0.20"), Decimal("0.20"))
    Rate.objects.filter(rate_table=calls["retail"]).update(price_per_minute="0.05")
    Rate.objects.filter(rate_table=calls["wholesale"]).update(price_per_minute="0.05")  # not this job's

    job = rerating.run_job(make_job(account=acme).pk)

    assert (job.status, job.total, job.done, job.changed) == ("done", 3, 3, 3)
    assert fees() == {
        "call-1": (Decimal("0.10"), Decimal("0.04")),
        "call-2": (Decimal("0.10"), Decimal("0.04")),
        "call-3": (Decimal("0.10"), Decimal("0.04")),
        "call-4": (Decimal("0.20"), Decimal("0.04")),  # day 2: outside the period
        "call-5": (Decimal("0.20"), Decimal("0.04")),  # Globex: another account
    }
    assert (balance(acme), balance(globex), balance(vendor)) == (Decimal("-0.50"), Decimal("-0.20"), Decimal("0.20"))
    # Still: balance = payments - fees of its CDRs.
    assert balance(acme) == -sum(CDR.objects.filter(account_id=acme.pk).values_list("fee", flat=True))

    changes = list(RerateChange.objects.filter(job=job))
    assert [(c.old_fee, c.new_fee, c.old_vendor_cost, c.new_vendor_cost) for c in changes] == [
        (Decimal("0.20"), Decimal("0.10"), Decimal("0.04"), Decimal("0.04"))
    ] * 3
    assert rerating.report_totals(job) == {
        "old_fee": Decimal("0.60"),
        "new_fee": Decimal("0.30"),
        "old_vendor_cost": Decimal("0.12"),
        "new_vendor_cost": Decimal("0.12"),
    }
    assert rerating.account_totals(job) == [
        {
            "account_id": acme.pk,
            "account": "Acme",
            "fee_difference": Decimal("-0.30"),
            "cost_difference": Decimal("0"),
            "balance_change": Decimal("0.30"),
        }
    ]


def test_a_correction_that_takes_a_customer_under_its_threshold_mails_the_alarm_once(calls, eager_celery):
    from django.core import mail

    acme = calls["acme"]
    Account.objects.filter(pk=acme.pk).update(alarm_email="noc@acme.example", low_balance_threshold="-1.00")
    Account.objects.filter(pk=calls["globex"].pk).update(alarm_email="noc@globex.example")
    Rate.objects.filter(rate_table=calls["retail"]).update(price_per_minute="0.15")  # 0.20 -> 0.30 a call

    rerating.run_job(make_job(account=acme).pk)
    assert balance(acme) == Decimal("-1.10")  # from -0.80: crossed -1.00
    assert [(m.to, "-1.1" in m.subject) for m in mail.outbox] == [(["noc@acme.example"], True)]

    # Globex goes from -0.20 to -0.30, already under the system-wide threshold (0) before: no e-mail;
    # and running Acme's period again moves nothing and mails nothing.
    rerating.run_job(make_job(account=calls["globex"]).pk)
    rerating.run_job(make_job(account=acme).pk)
    assert len(mail.outbox) == 1


def test_rerating_with_unchanged_rates_changes_nothing(calls):
    before = snapshot()
    job = rerating.run_job(make_job(account=calls["acme"], end=TODAY).pk)
    assert (job.status, job.done, job.changed) == ("done", 4, 0)
    assert snapshot() == before


def test_running_a_job_or_a_chunk_twice_applies_it_once(calls):
    acme = calls["acme"]
    Rate.objects.filter(rate_table=calls["retail"]).update(price_per_minute="0.05")
    job = make_job(account=acme, start=DAY1, end=DAY2 + dt.timedelta(days=1))
    (low1, high1), (low2, high2) = rerating.chunks(job.start, job.end)
    # The first delivery dies after the first chunk committed.
    job.status, job.started, job.total = "running", DAY1, 4
    job.save()
    assert rerating.run_chunk(job.pk, low1, high1) is True
    assert balance(acme) == Decimal("-0.50")
    assert rerating.run_chunk(job.pk, low1, high1) is False  # the same chunk again: skipped
    assert balance(acme) == Decimal("-0.50")
    # The redelivered task runs the whole job: only day 2 is left to do.
    rerating.run_job(job.pk)
    assert balance(acme) == Decimal("-0.40")
    job.refresh_from_db()
    assert (job.status, job.done, job.changed, len(job.chunks_done)) == ("done", 4, 4, 2)
    after = snapshot()
    # And once more, even with the status reset as a crash between the last chunk and "done" would leave it.
    RerateJob.objects.filter(pk=job.pk).update(status="running")
    rerating.run_job(job.pk)
    assert rerating.run_chunk(job.pk, low2, high2) is False
    assert snapshot() == after


def test_a_rate_table_job_rerates_the_vendor_cost_of_that_table_only(calls):
    acme, globex, vendor = calls["acme"], calls["globex"], calls["vendor"]
    Rate.objects.filter(rate_table=calls["cost"]).update(price_per_minute="0.06")  # 61 s at 1/1: 0.061 -> 0.06
    Rate.objects.filter(rate_table=calls["retail"]).update(price_per_minute="0.05")  # not in this job's scope
    job = rerating.run_job(make_job(rate_table=calls["cost"]).pk)
    assert job.changed == 4
    assert fees() == {
        "call-1": (Decimal("0.20"), Decimal("0.06")),
        "call-2": (Decimal("0.20"), Decimal("0.06")),
        "call-3": (Decimal("0.20"), Decimal("0.06")),
        "call-4": (Decimal("0.20"), Decimal("0.04")),
        "call-5": (Decimal("0.20"), Decimal("0.06")),
    }
    assert (balance(acme), balance(globex), balance(vendor)) == (Decimal("-0.80"), Decimal("-0.20"), Decimal("0.28"))
    assert rerating.account_totals(job) == [
        {
            "account_id": vendor.pk,
            "account": "Vendor A",
            "fee_difference": Decimal("0"),
            "cost_difference": Decimal("0.08"),
            "balance_change": Decimal("0.08"),
        }
    ]


def test_chunks_follow_utc_days():
    start = DAY1 + dt.timedelta(hours=12)
    end = DAY1 + dt.timedelta(days=2, hours=1)
    assert rerating.chunks(start, end) == [
        (start, DAY1 + dt.timedelta(days=1)),
        (DAY1 + dt.timedelta(days=1), DAY1 + dt.timedelta(days=2)),
        (DAY1 + dt.timedelta(days=2), end),
    ]


# ---------------------------------------------------------------------------
# Pages


@pytest.fixture
def admin(db):
    return get_user_model().objects.create_superuser("admin", "admin@example.net", "pw")


@pytest.fixture
def client_admin(client, admin):
    client.force_login(admin)
    return client


def test_the_create_form_queues_the_job_and_the_pages_show_it(calls, client_admin, eager_celery):
    Rate.objects.filter(rate_table=calls["retail"]).update(price_per_minute="0.05")
    assert client_admin.get(reverse("billing:reratejob_list")).status_code == 200
    assert client_admin.get(reverse("billing:reratejob_add")).status_code == 200
    response = client_admin.post(
        reverse("billing:reratejob_add"),
        {"account": calls["acme"].pk, "start": DAY1.strftime("%Y-%m-%dT%H:%M"), "end": DAY2.strftime("%Y-%m-%dT%H:%M")},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    job = RerateJob.objects.get()
    assert (job.status, job.changed, job.created_by.username) == ("done", 3, "admin")
    assert balance(calls["acme"]) == Decimal("-0.50")

    page = client_admin.get(job.get_absolute_url())
    html = page.content.decode()
    assert page.status_code == 200
    assert "<progress" in html and 'value="100"' in html
    assert "-0.30" in html and "0.30" in html  # the difference and the balance move
    assert client_admin.get(job.get_absolute_url() + "?format=json").json()["percent"] == 100
    csv = b"".join(client_admin.get(job.get_absolute_url() + "?export=csv").streaming_content).decode()
    lines = csv.strip().splitlines()
    assert lines[0].startswith("cdr_id,start_time,call_uuid")
    assert len(lines) == 1 + 3 + 1  # header, the changed CDRs, one account total
    assert lines[-1].startswith("total,") and "-0.3000" in lines[-1]
    assert "Re-rating #" in client_admin.get(reverse("billing:reratejob_list")).content.decode()


def test_the_create_form_refuses_an_end_before_the_start(book, client_admin):
    response = client_admin.post(
        reverse("billing:reratejob_add"),
        {"account": book["acme"].pk, "start": DAY2.strftime("%Y-%m-%dT%H:%M"), "end": DAY1.strftime("%Y-%m-%dT%H:%M")},
    )
    assert response.status_code == 200
    assert "end" in response.context["form"].errors
    assert "The end must be after the start." in response.content.decode()
    assert not RerateJob.objects.exists()


def test_the_create_form_needs_exactly_one_scope(book, client_admin):
    period = {"start": DAY1.strftime("%Y-%m-%dT%H:%M"), "end": DAY2.strftime("%Y-%m-%dT%H:%M")}
    for scope in ({}, {"account": book["acme"].pk, "rate_table": book["retail"].pk}):
        response = client_admin.post(reverse("billing:reratejob_add"), {**scope, **period})
        assert response.status_code == 200 and response.context["form"].non_field_errors()
    assert not RerateJob.objects.exists()


def test_pages_need_a_login_and_the_permission(book, client):
    for name in ("billing:reratejob_list", "billing:reratejob_add", "billing:dead_letters", "billing:balance_history"):
        assert client.get(reverse(name)).status_code == 302
    client.force_login(get_user_model().objects.create_user("nobody", password="pw"))
    for name in ("billing:reratejob_list", "billing:reratejob_add", "billing:dead_letters", "billing:balance_history"):
        assert client.get(reverse(name)).status_code == 403


def test_the_balance_history_has_payments_and_charges_per_day_with_running_balance(calls, client_admin, admin):
    acme = calls["acme"]
    apply_payment(acme, "recharge", "10", admin)
    assert Payment.objects.count() == 1
    response = client_admin.get(reverse("billing:balance_history"), {"account": acme.pk, "days": 30})
    assert response.status_code == 200
    rows = response.context["rows"]
    by_day = {r["day"]: r for r in rows}
    assert by_day[DAY1.date()]["charges"] == Decimal("-0.60") and by_day[DAY1.date()]["call_count"] == 3
    assert by_day[DAY2.date()]["charges"] == Decimal("-0.20")
    today = dt.datetime.now(dt.UTC).date()
    assert by_day[today]["payments"] == Decimal("10")
    assert rows[0]["closing"] == balance(acme) == Decimal("9.20")
    assert by_day[DAY2.date()]["closing"] == Decimal("-0.80")
    assert by_day[DAY1.date()]["closing"] == Decimal("-0.60")
    assert response.context["opening"] == 0
    vendor = client_admin.get(reverse("billing:balance_history"), {"account": calls["vendor"].pk}).context["rows"]
    assert vendor[0]["closing"] == balance(calls["vendor"]) == Decimal("0.20")


def test_dead_letters_are_listed_and_can_be_requeued_or_discarded(prefix, redis_client, book, client_admin):
    totals = ingest_records(redis_client, "not json at all", json.dumps({"call_uuid": "x", "billing_mode": 1}))
    assert totals.dead == 2
    letters = ingest.dead_letters()
    page = client_admin.get(reverse("billing:dead_letters"))
    html = page.content.decode()
    assert page.status_code == 200 and "not JSON" in html and "start_ms is missing" in html
    assert 'name="csrfmiddlewaretoken"' in html

    bad_json = next(letter for letter in letters if letter.reason.startswith("not JSON"))
    no_start = next(letter for letter in letters if letter is not bad_json)
    response = client_admin.post(reverse("billing:dead_letters"), {"letter": bad_json.id, "action": "discard"})
    assert response.status_code == 302
    assert [letter.id for letter in ingest.dead_letters()] == [no_start.id]

    assert redis_client.xlen(ingest.stream_key()) == 0
    client_admin.post(reverse("billing:dead_letters"), {"letter": no_start.id, "action": "requeue"})
    assert ingest.dead_letter_count() == 0
    assert redis_client.xlen(ingest.stream_key()) == 1
    # Requeued as it was, it is set aside again by the next batch, and a second discard finds nothing.
    ingest_records(redis_client)
    assert [letter.reason for letter in ingest.dead_letters()] == ["start_ms is missing"]
    response = client_admin.post(
        reverse("billing:dead_letters"), {"letter": no_start.id, "action": "discard"}, follow=True
    )
    assert "already gone" in response.content.decode()
