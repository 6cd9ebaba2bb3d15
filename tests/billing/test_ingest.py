"""CDR ingest: every record lands once, is rated exactly, and moves money once, whatever dies on the way.

Real Redis (a prefix of its own per test) and real PostgreSQL; the records are
written by hand in the call core's format (``callcore.cdr``). The last test
runs the worker against a Redis and a PostgreSQL of its own, which it stops
and starts.
"""

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
from django.conf import settings
from django.core import mail
from django.db import connection

from billing import ingest, rating
from billing.ingest import records
from billing.models import CDR, Account, Rate, RateTable
from billing.services import apply_payment
from callcore.cdr import CdrSink
from callcore.contract import Keys, pending_debit_field, to_units
from softswitch_portal.core.models import SystemParameter
from tests.billing.streams import call_record, push

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)

NOW_MS = int(time.time() * 1000)


@pytest.fixture
def book(db):
    return make_book()


def make_book():
    """Two customers on their own tables, two vendors on theirs."""
    retail = RateTable.objects.create(name="Retail")
    wholesale = RateTable.objects.create(name="Wholesale")
    cost_a = RateTable.objects.create(name="Vendor A cost")
    cost_b = RateTable.objects.create(name="Vendor B cost")
    Rate.objects.bulk_create(
        [
            Rate(rate_table=retail, prefix="44", area="UK", price_per_minute="0.10", first_period=60, next_period=60),
            Rate(rate_table=retail, prefix="447", area="UK mobile", price_per_minute="0.30", first_period=30,
                 next_period=6),
            Rate(rate_table=retail, prefix="1", area="USA", price_per_minute="0.0123", first_period=6, next_period=6,
                 connect_fee="0.01"),
            Rate(rate_table=wholesale, prefix="4", area="Europe", price_per_minute="0.05", first_period=1,
                 next_period=1),
            Rate(rate_table=wholesale, prefix="1", area="USA", price_per_minute="0.0099", first_period=1,
                 next_period=1),
            Rate(rate_table=cost_a, prefix="44", area="UK", price_per_minute="0.04", first_period=1, next_period=1),
            Rate(rate_table=cost_a, prefix="1", area="USA", price_per_minute="0.006", first_period=6, next_period=6),
            Rate(rate_table=cost_b, prefix="4", area="Europe", price_per_minute="0.03", first_period=60,
                 next_period=1),
            Rate(rate_table=cost_b, prefix="1", area="USA", price_per_minute="0.007", first_period=1, next_period=1),
        ]
    )  # fmt: skip
    return {
        "acme": Account.objects.create(name="Acme", rate_table=retail, credit_limit=50),
        "globex": Account.objects.create(name="Globex", rate_table=wholesale, credit_limit=50),
        "vendor_a": Account.objects.create(name="Vendor A", account_type="vendor", rate_table=cost_a),
        "vendor_b": Account.objects.create(name="Vendor B", account_type="vendor", rate_table=cost_b),
    }


def cdr(n, customer, vendor=None, callee="442071838750", hold_ms=61_000, start_ms=None, **extra):
    """A finished call as callcore.cdr writes it."""
    start = start_ms if start_ms is not None else NOW_MS - 3_600_000 + n * 10
    answered = hold_ms > 0
    record = call_record(
        f"call-{n}@192.0.2.10",
        start,
        caller_number="15551230000",
        callee_number=callee,
        caller_number_out="15551230000",
        callee_number_out=callee,
        caller_ip="192.0.2.10",
        caller_port=5060,
        caller_user_agent="sipp",
        vendor_ip="198.51.100.7",
        account_id=customer.pk if customer else None,
        account_name=customer.name if customer else "",
        vendor_account_id=vendor.pk if vendor else None,
        billing_mode=1 if customer else -2,
        answer_ms=start + 1500 if answered else None,
        stop_ms=start + 1500 + hold_ms,
        hold_time_ms=hold_ms,
        end_direction=0,
        end_reason="normal_clearing" if answered else "vendor_failed",
        sip_status=200 if answered else 503,
        vendors_tried=[{"gateway_id": 1, "gateway": "gw", "ip": "198.51.100.7", "status": 200 if answered else 503}],
    )
    record.update(extra)
    return record


def name_of(call_id):
    """call-N from the SIP Call-ID the record was made with."""
    return call_id.split("@")[0]


def drain(**kwargs):
    options = {"batch_size": 100, "block_ms": 0, "claim_idle_ms": 60_000}
    options.update(kwargs)
    ingester = ingest.Ingester(options.pop("consumer", "test"), **options)
    ingester.run(drain=True)
    ingester.client.close()
    return ingester.totals


def balance(account):
    account.refresh_from_db()
    return account.balance


def test_records_are_rated_stored_and_charged(prefix, redis_client, book):
    acme, globex, vendor_a, vendor_b = book["acme"], book["globex"], book["vendor_a"], book["vendor_b"]
    push(
        redis_client,
        cdr(1, acme, vendor_a, callee="442071838750", hold_ms=61_000),  # UK 60/60: 120 s, 0.20; cost 61 s 0.04
        cdr(2, acme, vendor_a, callee="+447700900123", hold_ms=61_000),  # UK mobile 30/6: 66 s 0.33
        cdr(3, globex, vendor_b, callee="4930123456", hold_ms=61_000),  # Europe 1/1: 61 s 0.05; cost 61 s 0.03
        cdr(4, globex, vendor_b, callee="4930123456", hold_ms=0),  # never connected: free, still named
    )
    totals = drain()
    assert (totals.read, totals.inserted, totals.duplicates, totals.dead) == (4, 4, 0, 0)
    rows = {name_of(c.caller_call_id): c for c in CDR.objects.all()}
    first = rows["call-1"]
    assert (first.fee_time, first.fee, first.vendor_cost) == (120, Decimal("0.20"), Decimal("0.04"))
    assert (first.rate_prefix, first.rate_area, first.vendor_rate_prefix) == ("44", "UK", "44")
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    assert first.start_time == epoch + dt.timedelta(milliseconds=NOW_MS - 3_600_000 + 10)
    assert first.stop_time - first.answer_time == dt.timedelta(milliseconds=61_000)
    assert first.hold_time_ms == 61_000 and first.caller_ip == "192.0.2.10" and first.vendors_tried[0]["status"] == 200
    assert (rows["call-2"].fee_time, rows["call-2"].fee, rows["call-2"].rate_area) == (66, Decimal("0.33"), "UK mobile")
    assert (rows["call-3"].fee, rows["call-3"].vendor_cost) == (Decimal("0.05"), Decimal("0.03"))
    assert (rows["call-4"].fee, rows["call-4"].fee_time, rows["call-4"].rate_area) == (0, 0, "Europe")

    assert balance(acme) == Decimal("-0.53")
    assert balance(globex) == Decimal("-0.05")
    assert balance(vendor_a) == Decimal("0.08")
    assert balance(vendor_b) == Decimal("0.03")
    # Consumed entries are deleted, not kept: the rows are in PostgreSQL now.
    assert redis_client.xlen(ingest.stream_key()) == 0
    assert redis_client.xpending(ingest.stream_key(), ingest.GROUP)["pending"] == 0


def test_the_live_balances_the_call_core_reads_are_refreshed_after_each_batch(prefix, redis_client, book):
    acme, vendor_a = book["acme"], book["vendor_a"]
    apply_payment(acme, "recharge", "10", None)
    key = f"{prefix}:live:balance:{acme.pk}"
    assert int(redis_client.get(key)) == to_units(Decimal("10"))  # a payment refreshes it too
    push(redis_client, cdr(1, acme, vendor_a, hold_ms=61_000))
    drain()
    assert int(redis_client.get(key)) == to_units(Decimal("9.80")) == 98_000
    assert int(redis_client.get(f"{prefix}:live:balance:{vendor_a.pk}")) == to_units(Decimal("0.04"))


def hold_pending_debit(client, account, record, units):
    """What a charged call's teardown leaves: its reservation held as its CDR's pending debit (contract.pending)."""
    key = Keys(settings.REDIS_PREFIX).reservations(account.pk)
    field = pending_debit_field(record["call_uuid"])
    client.hset(key, field, f"{units}:{NOW_MS + 3_600_000}")
    client.incrby(f"{key}:sum", units)
    client.zadd(f"{key}:exp", {field: NOW_MS + 3_600_000})
    return key


def test_a_stored_calls_pending_debit_is_released_with_the_balance_that_holds_its_charge(prefix, redis_client, book):
    acme, vendor_a = book["acme"], book["vendor_a"]
    apply_payment(acme, "recharge", "10", None)
    talked, other = cdr(1, acme, vendor_a, hold_ms=61_000), cdr(2, acme, vendor_a, hold_ms=61_000)
    key = hold_pending_debit(redis_client, acme, talked, 2_500)
    hold_pending_debit(redis_client, acme, other, 4_000)  # its CDR is not in this batch: still held
    push(redis_client, talked)
    drain()
    # One transaction: the live balance holds the 0.20 debit and the 0.25 held for it is given back, so
    # the money is counted once at every moment (as a reservation before, as a debit after).
    assert int(redis_client.get(f"{prefix}:live:balance:{acme.pk}")) == 98_000
    assert int(redis_client.get(f"{key}:sum")) == 4_000
    assert set(redis_client.hkeys(key)) == {pending_debit_field(other["call_uuid"]).encode()}
    assert redis_client.zrange(f"{key}:exp", 0, -1) == [pending_debit_field(other["call_uuid"]).encode()]


def test_a_pending_debit_is_released_when_its_cdr_comes_again_after_a_crash(prefix, redis_client, book):
    # Stored before the crash, whose Redis side never ran: the debit is in the balance, so the hold goes.
    acme, vendor_a = book["acme"], book["vendor_a"]
    record = cdr(1, acme, vendor_a, hold_ms=61_000)
    push(redis_client, record)
    drain()
    key = hold_pending_debit(redis_client, acme, record, 2_500)
    redis_client.set(f"{prefix}:live:balance:{acme.pk}", 0)  # as before the crash: the debit not yet shown
    push(redis_client, record)
    totals = drain()
    assert (totals.inserted, totals.duplicates) == (0, 1)
    assert int(redis_client.get(f"{key}:sum")) == 0
    assert int(redis_client.get(f"{prefix}:live:balance:{acme.pk}")) == to_units(Decimal("-0.20"))


def test_the_same_call_twice_is_stored_and_charged_once_in_one_batch_or_in_two(prefix, redis_client, book):
    acme, vendor_a = book["acme"], book["vendor_a"]
    record = cdr(1, acme, vendor_a)
    push(redis_client, record, record)
    first = drain()
    push(redis_client, record)
    second = drain()
    assert (first.inserted, second.inserted, second.duplicates) == (1, 0, 1)
    assert CDR.objects.filter(call_uuid=record["call_uuid"]).count() == 1
    assert balance(acme) == Decimal("-0.20")
    assert balance(vendor_a) == Decimal("0.04")


def test_a_bad_record_goes_to_the_dead_letters_and_the_rest_of_the_batch_lands(prefix, redis_client, book):
    acme = book["acme"]
    no_start = cdr(3, acme)
    del no_start["start_ms"]
    push(
        redis_client,
        cdr(1, acme),
        "{not json",
        no_start,
        cdr(4, acme, billing_mode=7),
        cdr(5, acme, caller_ip="not-an-ip"),
        cdr(6, acme, cdr_schema=99),
        cdr(7, acme),
    )
    redis_client.xadd(ingest.stream_key(), {"other": "field"})
    totals = drain()
    assert (totals.inserted, totals.dead) == (2, 6)
    assert sorted(name_of(call_id) for call_id in CDR.objects.values_list("caller_call_id", flat=True)) == [
        "call-1",
        "call-7",
    ]
    letters = ingest.dead_letters(limit=10)
    reasons = " | ".join(letter.reason for letter in letters)
    for expected in ("not JSON", "start_ms is missing", "billing_mode 7", "not an IP address", "cdr_schema 99",
                     "no 'cdr' field"):  # fmt: skip
        assert expected in reasons
    assert ingest.dead_letter_count() == 6
    assert all(letter.entry_id and letter.consumer == "test" for letter in letters)
    assert redis_client.xlen(ingest.stream_key()) == 0


def test_a_dead_letter_can_be_put_back_once_corrected(prefix, redis_client, book):
    broken = cdr(1, book["acme"], billing_mode=7)
    push(redis_client, broken)
    drain()
    (letter,) = ingest.dead_letters()
    ingest.requeue_dead_letter(letter.id, json.dumps({**json.loads(letter.record), "billing_mode": 1}))
    assert drain().inserted == 1
    assert ingest.dead_letter_count() == 0


def test_overlong_text_is_cut_to_the_column_and_a_host_name_as_vendor_ip_is_dropped(prefix, redis_client, book):
    push(redis_client, cdr(1, book["acme"], caller_user_agent="x" * 500, callee_number="4" * 100,
                           vendor_ip="carrier.example.net"))  # fmt: skip
    assert drain().inserted == 1
    row = CDR.objects.get()
    assert (len(row.caller_user_agent), len(row.callee_number), row.vendor_ip) == (200, 64, None)


def test_a_value_postgresql_refuses_sets_aside_only_that_record(prefix, redis_client, book, monkeypatch):
    # Pretend validation let an out-of-range integer through, as a future column might.
    strict = records.decode_cdr

    def loose(raw):
        fields = json.loads(raw)
        pdd_ms = fields.pop("pdd_ms", None)
        record = strict(json.dumps(fields))
        record.pdd_ms = pdd_ms
        return record

    monkeypatch.setattr(records, "decode_cdr", loose)
    push(redis_client, cdr(1, book["acme"]), cdr(2, book["acme"], pdd_ms=2**35), cdr(3, book["acme"]))
    totals = drain()
    assert (totals.inserted, totals.dead) == (2, 1)
    assert "PostgreSQL refused it" in ingest.dead_letters()[0].reason
    assert balance(book["acme"]) == Decimal("-0.40")


def test_a_record_the_rater_chokes_on_is_set_aside_and_the_rest_lands(prefix, redis_client, book, monkeypatch):
    real = rating.rate_call

    def choking(**call):
        if call["callee_number"] == "4499":
            raise ArithmeticError("simulated bug")
        return real(**call)

    monkeypatch.setattr(rating, "rate_call", choking)
    push(redis_client, cdr(1, book["acme"]), cdr(2, book["acme"], callee="4499"), cdr(3, book["acme"]))
    totals = drain()
    assert (totals.inserted, totals.dead) == (2, 1)
    assert "rating failed" in ingest.dead_letters()[0].reason
    assert redis_client.xpending(ingest.stream_key(), ingest.GROUP)["pending"] == 0


def test_entries_a_dead_consumer_left_pending_are_claimed_and_finished(prefix, redis_client, book):
    acme = book["acme"]
    push(redis_client, *(cdr(n, acme) for n in range(5)))
    doomed = ingest.Ingester("doomed", batch_size=3, block_ms=0)
    doomed.ensure_group()
    assert len(doomed.read()) == 3  # read, never acknowledged: then it "dies"
    doomed.client.close()
    time.sleep(0.05)

    survivor = drain(consumer="survivor", claim_idle_ms=20)
    assert survivor.inserted == 5
    assert CDR.objects.count() == 5
    assert redis_client.xpending(ingest.stream_key(), ingest.GROUP)["pending"] == 0
    assert balance(acme) == Decimal("-1.00")


def test_a_restarted_consumer_finishes_its_own_pending_entries_first(prefix, redis_client, book):
    push(redis_client, *(cdr(n, book["acme"]) for n in range(4)))
    first_life = ingest.Ingester("node-1", batch_size=4, block_ms=0)
    first_life.ensure_group()
    first_life.recovering = False
    first_life._next_claim = float("inf")
    assert len(first_life.read()) == 4
    # Its next life resumes under the same name and need not wait for any claim.
    assert drain(consumer="node-1", claim_idle_ms=3_600_000).inserted == 4


def test_rate_tables_are_loaded_once_and_again_only_when_they_change(prefix, redis_client, book):
    acme, vendor_a = book["acme"], book["vendor_a"]
    ingester = ingest.Ingester("test", batch_size=10, block_ms=0, recheck=0)
    push(redis_client, cdr(1, acme, vendor_a))
    ingester.run(drain=True)
    assert ingester.catalog.loads == 2  # the customer's table and the vendor's
    push(redis_client, cdr(2, acme, vendor_a))
    ingester.run(drain=True)
    assert ingester.catalog.loads == 2  # unchanged: kept
    Rate.objects.filter(rate_table=acme.rate_table, prefix="44").update(price_per_minute="0.50")
    push(redis_client, cdr(3, acme, vendor_a))
    ingester.run(drain=True)
    assert ingester.catalog.loads == 3  # only the edited table again
    fees = list(CDR.objects.order_by("start_time").values_list("fee", flat=True))
    assert fees == [Decimal("0.20"), Decimal("0.20"), Decimal("1.00")]
    ingester.client.close()


def test_between_rechecks_the_cached_rates_are_used(prefix, redis_client, book):
    acme = book["acme"]
    ingester = ingest.Ingester("test", batch_size=10, block_ms=0, recheck=3600)
    push(redis_client, cdr(1, acme))
    ingester.run(drain=True)
    Rate.objects.filter(rate_table=acme.rate_table, prefix="44").update(price_per_minute="0.50")
    push(redis_client, cdr(2, acme))
    ingester.run(drain=True)
    ingester.catalog.expire()
    push(redis_client, cdr(3, acme))
    ingester.run(drain=True)
    fees = list(CDR.objects.order_by("start_time").values_list("fee", flat=True))
    assert fees == [Decimal("0.20"), Decimal("0.20"), Decimal("1.00")]
    ingester.client.close()


def test_a_call_uuid_too_long_for_its_column_is_stored_by_digest_once(prefix, redis_client, book):
    long_call_id = "a" * 40 + "@" + "b" * 60
    record = cdr(1, book["acme"], call_uuid=f"node-a:{long_call_id}:{NOW_MS}", caller_call_id=long_call_id)
    other = cdr(2, book["acme"], call_uuid=f"node-a:{long_call_id}:{NOW_MS + 1}", caller_call_id=long_call_id)
    push(redis_client, record, other, record)
    assert drain().inserted == 2
    push(redis_client, record)
    assert drain().duplicates == 1
    stored = sorted(CDR.objects.values_list("call_uuid", "caller_call_id"))
    assert [len(uuid) for uuid, _ in stored] == [64, 64] and stored[0][0] != stored[1][0]
    assert all(call_id == long_call_id for _, call_id in stored)
    assert balance(book["acme"]) == Decimal("-0.40")


def test_rate_validity_is_judged_at_the_calls_start(prefix, redis_client, book):
    acme = book["acme"]
    switch_ms = NOW_MS - 1_800_000
    switch = dt.datetime.fromtimestamp(switch_ms / 1000, tz=dt.UTC)
    Rate.objects.filter(rate_table=acme.rate_table, prefix="44").update(valid_to=switch)
    Rate.objects.create(rate_table=acme.rate_table, prefix="44", price_per_minute="0.40", valid_from=switch)
    push(redis_client, cdr(1, acme, start_ms=switch_ms - 1), cdr(2, acme, start_ms=switch_ms))
    drain()
    assert list(CDR.objects.order_by("start_time").values_list("fee", flat=True)) == [Decimal("0.20"), Decimal("0.80")]


def test_system_parameters_are_applied(prefix, redis_client, book):
    acme = book["acme"]
    SystemParameter.objects.create(name="SERVER_BILLING_FEE_PRECISION", value="4")
    SystemParameter.objects.create(name="SERVER_BILLING_FREE_TIME", value="2")
    SystemParameter.objects.create(name="SERVER_BILLING_GATEWAY_ROUTE_PREFIX", value="1")
    # Sent out as 1..., so rated as USA at 0.0123 6/6 + 0.01 connect: 61.2 s - 2 s free = 60 s billed, 0.0223.
    push(redis_client, cdr(1, acme, callee="442071838750", callee_number_out="12125550100", hold_ms=61_200))
    drain()
    row = CDR.objects.get()
    assert (row.rate_area, row.fee_time, row.fee) == ("USA", 60, Decimal("0.0223"))


def test_calls_not_billed_to_an_account_cost_the_customer_nothing(prefix, redis_client, book):
    push(
        redis_client,
        cdr(1, None, callee="4420", hold_ms=0, end_reason="illegal_source"),
        cdr(2, book["acme"], book["vendor_a"], billing_mode=-1),
        cdr(3, Account(pk=999_999, name="gone"), book["vendor_a"]),
    )
    assert drain().inserted == 3
    assert sum(CDR.objects.values_list("fee", flat=True)) == 0
    assert balance(book["acme"]) == 0
    assert balance(book["vendor_a"]) == Decimal("0.08")  # the vendor carried both calls and is owed for them


def test_the_low_balance_alarm_is_mailed_once_per_crossing(prefix, redis_client, book, eager_celery):
    acme = book["acme"]
    Account.objects.filter(pk=acme.pk).update(alarm_email="noc@acme.example", low_balance_threshold="1.00")
    apply_payment(acme, "recharge", "1.30", None)
    push(redis_client, cdr(1, acme), cdr(2, acme))  # 1.30 -> 0.90: crosses
    drain()
    push(redis_client, cdr(3, acme))  # 0.90 -> 0.70: already below
    drain()
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["noc@acme.example"] and "0.9" in mail.outbox[0].subject
    apply_payment(acme, "recharge", "5", None)  # 5.70
    push(redis_client, *(cdr(n, acme) for n in range(10, 34)))  # 24 x 0.20 = 4.80 -> 0.90: crosses again
    drain(batch_size=5)
    assert len(mail.outbox) == 2


def test_the_system_wide_threshold_applies_when_the_account_has_none(prefix, redis_client, book, eager_celery):
    SystemParameter.objects.create(name="SS_CLIENT_LOW_BALANCE_ALARM", value="1")
    acme = book["acme"]
    Account.objects.filter(pk=acme.pk).update(alarm_email="noc@acme.example")
    apply_payment(acme, "recharge", "1.10", None)
    push(redis_client, cdr(1, acme))
    drain()
    assert len(mail.outbox) == 1


# ---------------------------------------------------------------------------
# Nothing lost: the worker as a subprocess, killed mid-batch, and Redis and PostgreSQL really stopped under it


@pytest.fixture
def private_servers(transactional_db, private_redis, private_postgres, settings):
    """This process's database connection and Redis URL on servers of the test's own, migrated, for the test's length.

    The shared servers cannot be stopped under other runs. The default
    connection is pointed at the private cluster, rather than a second alias
    added, so that the code under test (payments, the ingest's helpers) runs
    unchanged; it is pointed back before pytest-django's teardown flushes its
    own test database.
    """
    env = {
        **os.environ,
        "DB_HOST": private_postgres.host,
        "DB_PORT": str(private_postgres.port),
        "DB_NAME": private_postgres.dbname,
    }
    migrate = [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"]
    done = subprocess.run(migrate, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    db = connection.settings_dict
    saved = {key: db[key] for key in ("HOST", "PORT", "NAME")}
    connection.close()
    db.update(HOST=private_postgres.host, PORT=private_postgres.port, NAME=private_postgres.dbname)
    settings.REDIS_URL = private_redis.url
    try:
        yield SimpleNamespace(redis=private_redis, postgres=private_postgres)
    finally:
        connection.close()
        db.update(saved)


class Worker:
    """``manage.py ingest_cdrs`` as a subprocess, on the database and Redis this process is using."""

    def __init__(self, tmp_path, consumer):
        self.consumer = consumer
        self.log = tmp_path / f"ingest-{consumer}.log"
        db = connection.settings_dict
        env = {
            **os.environ,
            "DB_HOST": str(db["HOST"]),
            "DB_PORT": str(db["PORT"]),
            "DB_NAME": db["NAME"],
            "REDIS_URL": settings.REDIS_URL,
            "REDIS_PREFIX": settings.REDIS_PREFIX,
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
        command = [
            sys.executable, "manage.py", "ingest_cdrs", "--consumer", consumer, "--batch-size", "25",
            "--block-ms", "200", "--claim-idle-ms", "1500", "--claim-every", "0.5",
        ]  # fmt: skip
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def output(self, tail=5000):
        text = self.log.read_text(errors="replace")
        return text[-tail:] if tail else text

    def kill(self, sig=signal.SIGKILL, timeout=20):
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


def wait_for(condition, timeout, what, workers=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    logs = "\n".join(f"--- {w.consumer}\n{w.output()}" for w in workers)
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


def cdr_count():
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM billing_cdr")
        return cursor.fetchone()[0]


def pending(client):
    return client.xpending(ingest.stream_key(), ingest.GROUP)["pending"]


def stream_state(client):
    """Entries in the stream, and how many of them are read and not acknowledged."""
    return client.xlen(ingest.stream_key()), pending(client)


def emit(sink, records):
    """Hand records over as the call core does; returns how many went to its spool instead of Redis."""
    return sum(not sink.emit(record) for record in records)


def sleep_until(moment):
    time.sleep(max(0.0, moment - time.monotonic()))


def dead_call(raw):
    try:
        return json.loads(raw)["call_uuid"]
    except ValueError:
        return raw


def pg_params():
    db = connection.settings_dict
    return {"host": db["HOST"], "port": db["PORT"], "user": db["USER"], "password": db["PASSWORD"] or None}


def stuck_on_a_lock(consumer):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
            [f"ss-ingest:{consumer}"],
        )
        return cursor.fetchone()[0] > 0


@contextlib.contextmanager
def frozen(worker):
    """The worker stopped for a moment: what Redis came back with is read before the worker moves on from it."""
    worker.process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        worker.process.send_signal(signal.SIGCONT)


@contextlib.contextmanager
def accounts_held():
    """Every account row locked until the block ends.

    The worker's next batch that moves money inserts its CDRs and then waits
    at its ``SELECT ... FOR UPDATE`` of the accounts: read from the stream,
    neither committed nor acknowledged, for as long as the test needs. FOR NO
    KEY UPDATE leaves the worker's plain reads of the accounts alone.
    """
    locker = psycopg.connect(dbname=connection.settings_dict["NAME"], **pg_params())
    try:
        locker.execute("SELECT id FROM billing_account FOR NO KEY UPDATE")
        yield
    finally:
        with contextlib.suppress(psycopg.Error):  # the session is gone when PostgreSQL was stopped meanwhile
            locker.rollback()
        locker.close()


def test_a_run_of_records_survives_kills_redis_restarts_and_database_outages(private_servers, tmp_path):
    import random

    servers = private_servers
    client = servers.redis.client()
    # The call core's own sink: while Redis is down it spools, and replays once Redis takes records again.
    sink = CdrSink(settings.REDIS_URL, settings.REDIS_PREFIX, tmp_path / "cdr-spool.jsonl")
    book = make_book()
    rng = random.Random(4)
    customers, vendors = [book["acme"], book["globex"]], [book["vendor_a"], book["vendor_b"]]
    callees = ["442071838750", "447700900123", "4930123456", "12125550100", "33123456789", "861012345678"]
    for customer in customers:
        apply_payment(customer, "recharge", "100", None)
    good = [
        cdr(n, rng.choice(customers), rng.choice(vendors), callee=rng.choice(callees),
            hold_ms=rng.choice([0, 0, rng.randint(1, 3_600_000)]))
        for n in range(1500)
    ]  # fmt: skip
    bad = ["{truncated", json.dumps({"call_uuid": "x"}), json.dumps(cdr(9999, book["acme"], billing_mode="1"))]
    workers = []
    try:
        emit(sink, good[:500])
        first = Worker(tmp_path, "w1")
        workers.append(first)
        wait_for(lambda: cdr_count() >= 50, 60, "the first rows", workers)

        # (a) SIGKILL in the middle of a batch: entries read and not acknowledged.
        for _attempt in range(5):
            wait_for(lambda: pending(client) > 0, 30, "a batch in hand", workers)
            first.kill()
            if pending(client) > 0:
                break
            first = Worker(tmp_path, "w1")  # it had just finished that batch: again
            workers.append(first)
        assert pending(client) > 0, "the worker never died holding a batch"
        emit(sink, good[500:800])
        push(client, bad[0])
        second = Worker(tmp_path, "w2")  # another name: it must claim what w1 left
        workers.append(second)
        wait_for(lambda: cdr_count() >= 550, 60, "the second worker to carry on", workers)

        # (b) Redis shut down cleanly for seconds while a batch is stored and not yet acknowledged: the
        # batch commits, its acknowledgement finds Redis gone, and the call core spools meanwhile.
        with accounts_held():
            emit(sink, good[800:1000] + good[100:130])
            wait_for(lambda: stuck_on_a_lock("w2"), 30, "a batch held before its commit", workers)
            rows, before = cdr_count(), stream_state(client)
            assert before[1] > 0
            servers.redis.shutdown()
            back_at = time.monotonic() + 3
        wait_for(lambda: cdr_count() > rows, 30, "the held batch to commit with Redis down", workers)
        assert emit(sink, good[1000:1100]) == 100
        sleep_until(back_at)
        with frozen(second):
            servers.redis.start()
            # The AOF brought every entry back, the committed batch's still pending: it comes again.
            assert stream_state(client) == before

        # (c) Redis killed, and its AOF cut back to an earlier moment: the loss appendfsync everysec allows
        # when the host dies, since a killed process alone loses nothing it wrote. The cut falls after the
        # call core's records went in (losing those would be the producer's loss, not the ingester's): what
        # goes is the worker's acknowledgements since then, so rows already committed come again.
        with accounts_held():
            assert emit(sink, good[1100:1300]) == 0
            assert not sink.spool.pending(), "the spool was not replayed once Redis was back"
            wait_for(lambda: stuck_on_a_lock("w2"), 30, "a batch held before its commit", workers)
            aof, cut = servers.redis.written()
            rows, before = cdr_count(), stream_state(client)
        wait_for(lambda: cdr_count() >= rows + 100, 60, "batches stored and acknowledged after the cut", workers)
        servers.redis.kill()
        assert servers.redis.appended_file() == aof
        os.truncate(aof, cut)
        with frozen(second):
            servers.redis.start()
            assert stream_state(client) == before

        # (d) PostgreSQL stopped for seconds with a batch inserted and uncommitted: the fast shutdown rolls
        # it back and closes every session; records keep coming meanwhile.
        with accounts_held():
            emit(sink, good[1300:1400])
            wait_for(lambda: stuck_on_a_lock("w2"), 30, "a batch held before its commit", workers)
            assert pending(client) > 0
            connection.close()  # this process's session goes with the server anyway
            servers.postgres.stop("fast")
            back_at = time.monotonic() + 4
        assert emit(sink, good[1400:1500] + good[:20]) == 0
        push(client, *bad[1:])
        sleep_until(back_at)
        assert client.xlen(ingest.stream_key()) > 0, "the outage held nothing up"
        servers.postgres.start()
        apply_payment(book["acme"], "recharge", "7.5", None)
        apply_payment(book["globex"], "deduct", "2.25", None)

        expected = {(r["call_uuid"], r["start_ms"]) for r in good}
        wait_for(
            lambda: cdr_count() >= len(expected) and stream_state(client) == (0, 0),
            120,
            f"all {len(expected)} records in the database",
            workers,
        )
        assert second.kill(signal.SIGTERM) == 0, second.output()  # and it stops cleanly when asked
        log = second.output(tail=None)
        assert "Redis unavailable" in log and "PostgreSQL unavailable" in log and "claimed" in log
    finally:
        for worker in workers:
            worker.kill()

    # Every record exactly once, none left behind in the spool.
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT (call_uuid, start_time)) FROM billing_cdr")
        assert cursor.fetchone() == (len(expected), len(expected))
    assert client.xlen(ingest.stream_key()) == 0
    assert not sink.spool.pending()
    # As a set: an entry claimed from a consumer that was slow rather than dead is set aside by both.
    assert {dead_call(letter.record) for letter in ingest.dead_letters(50)} == {
        "{truncated",
        "x",
        cdr(9999, book["acme"])["call_uuid"],
    }

    # Every fee exactly what rating says, and every balance its payments and CDRs.
    params = rating.RatingParameters()
    indexes = {
        table.pk: rating.RateIndex(
            rating.Rate(r.prefix, r.area, r.price_per_minute, r.first_period, r.next_period, r.connect_fee)
            for r in table.rates.all()
        )
        for table in RateTable.objects.all()
    }
    tables = {a.pk: indexes[a.rate_table_id] for a in Account.objects.all()}
    fees, costs = {}, {}
    for record in {(r["call_uuid"], r["start_ms"]): r for r in good}.values():
        rated = rating.rate_call(
            callee_number=record["callee_number"],
            callee_number_out=record["callee_number_out"],
            start_ms=record["start_ms"],
            hold_time_ms=record["hold_time_ms"],
            customer_rates=tables[record["account_id"]],
            vendor_rates=tables[record["vendor_account_id"]],
            params=params,
        )
        fees[record["account_id"]] = fees.get(record["account_id"], 0) + rated.fee
        costs[record["vendor_account_id"]] = costs.get(record["vendor_account_id"], 0) + rated.vendor_cost
    for account in Account.objects.all():
        paid = sum(p.signed_amount for p in account.payments.all())
        charged = sum(CDR.objects.filter(account_id=account.pk).values_list("fee", flat=True))
        accrued = sum(CDR.objects.filter(vendor_account_id=account.pk).values_list("vendor_cost", flat=True))
        assert charged == fees.get(account.pk, 0) and accrued == costs.get(account.pk, 0), account
        assert account.balance == paid - charged + accrued, account
        assert int(client.get(f"{settings.REDIS_PREFIX}:live:balance:{account.pk}")) == to_units(account.balance)
