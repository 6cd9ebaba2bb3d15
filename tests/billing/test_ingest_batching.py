"""CDR ingest, the way batches go: one prepared statement per session with its COMMIT in the same round trip,
the next batch read with the last one's acknowledgement, and still every call once and every cent once when
statements fail, workers stop or two of them charge the same accounts at once.

Real Redis (a prefix of its own per test) and real PostgreSQL; records in the call core's format.
"""

import json
import logging
import threading
import time
from decimal import Decimal

import psycopg
import pytest
from django.db import connection, transaction

from billing import ingest
from billing.catalogue import Catalog
from billing.ingest import records, store
from billing.models import CDR, Account, Rate, RateTable
from callcore import contract
from tests.billing.streams import call_record

pytestmark = pytest.mark.django_db(transaction=True)

NOW_MS = int(time.time() * 1000)


@pytest.fixture
def accounts(db):
    """Two customers at 0.10 a minute in 60 s steps, two vendors at 0.04 a minute by the second (UK, 44)."""
    retail = RateTable.objects.create(name="Retail")
    cost = RateTable.objects.create(name="Cost")
    Rate.objects.create(rate_table=retail, prefix="44", area="UK", price_per_minute="0.10", first_period=60,
                        next_period=60)  # fmt: skip
    Rate.objects.create(rate_table=cost, prefix="44", area="UK", price_per_minute="0.04", first_period=1,
                        next_period=1)  # fmt: skip
    return {
        "acme": Account.objects.create(name="Acme", rate_table=retail, credit_limit=50),
        "globex": Account.objects.create(name="Globex", rate_table=retail, credit_limit=50),
        "vendor_a": Account.objects.create(name="Vendor A", account_type="vendor", rate_table=cost),
        "vendor_b": Account.objects.create(name="Vendor B", account_type="vendor", rate_table=cost),
    }


def cdr(n, customer, vendor, **extra):
    """A 61 s call to the UK: 0.20 to the customer (120 s billed), 0.04 (61 s) to the vendor."""
    start = NOW_MS - 3_600_000 + n * 10
    record = call_record(
        f"call-{n}@192.0.2.10",
        start,
        caller_number="15551230000",
        callee_number="442071838750",
        callee_number_out="442071838750",
        caller_ip="192.0.2.10",
        account_id=customer.pk,
        account_name=customer.name,
        vendor_account_id=vendor.pk,
        billing_mode=1,
        answer_ms=start + 1500,
        stop_ms=start + 1500 + 61_000,
        hold_time_ms=61_000,
        end_direction=0,
        end_reason="normal_clearing",
        sip_status=200,
        vendors_tried=[{"gateway_id": 1, "gateway": "gw", "ip": "198.51.100.7", "status": 200}],
    )
    record.update(extra)
    return record


def push(client, *records):
    pipe = client.pipeline()
    for record in records:
        pipe.xadd(ingest.stream_key(), {"cdr": json.dumps(record)})
    pipe.execute()


def drain(consumer="test", **kwargs):
    ingester = ingest.Ingester(consumer, batch_size=kwargs.pop("batch_size", 100), block_ms=0, **kwargs)
    ingester.run(drain=True)
    ingester.client.close()
    return ingester.totals


def balance(account):
    account.refresh_from_db()
    return account.balance


def test_the_batch_statement_is_prepared_once_per_database_session(prefix, redis_client, accounts):
    acme, vendor = accounts["acme"], accounts["vendor_a"]
    for batch in range(3):
        push(redis_client, *(cdr(batch * 10 + n, acme, vendor) for n in range(4)))
        assert drain(batch_size=2).inserted == 4
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["%WITH inserted AS%"])
        assert cursor.fetchone()[0] == 1
    assert balance(acme) == Decimal("-2.40") and balance(vendor) == Decimal("0.48")


def test_a_statement_refused_after_staging_sets_aside_its_record_and_later_batches_still_land(
    prefix, redis_client, accounts, monkeypatch
):
    acme, vendor = accounts["acme"], accounts["vendor_a"]
    # The staging table takes any text; billing_cdr's column takes 64 characters. Validation that let
    # a longer number through makes the prepared statement fail after COPY, with its COMMIT queued behind it.
    monkeypatch.setitem(contract.TEXT_WIDTHS, "caller_number", 500)
    push(redis_client, cdr(1, acme, vendor), cdr(2, acme, vendor, caller_number="1" * 80), cdr(3, acme, vendor))
    totals = drain()
    assert (totals.inserted, totals.dead) == (2, 1)
    assert "PostgreSQL refused it" in ingest.dead_letters()[0].reason
    # The same session goes on: its prepared statement and staging table still work, and stay empty between batches.
    push(redis_client, cdr(4, acme, vendor), cdr(5, acme, vendor, caller_number="2" * 80))
    assert (drain().inserted, CDR.objects.count()) == (1, 3)
    # And a new session makes its own.
    connection.close()
    push(redis_client, cdr(6, acme, vendor))
    assert drain().inserted == 1
    assert balance(acme) == Decimal("-0.80") and balance(vendor) == Decimal("0.16")
    assert redis_client.xpending(ingest.stream_key(), ingest.GROUP)["pending"] == 0


def test_two_workers_charging_the_same_accounts_at_once_never_deadlock_nor_charge_twice(
    prefix, redis_client, accounts, caplog
):
    acme, globex, vendor_a, vendor_b = accounts["acme"], accounts["globex"], accounts["vendor_a"], accounts["vendor_b"]
    calls = [cdr(n, (acme, globex)[n % 2], (vendor_a, vendor_b)[n // 2 % 2]) for n in range(120)]
    # Every call twice, in another order: the two workers insert the same calls and lock the same accounts.
    push(redis_client, *calls, *reversed(calls))
    first = ingest.Ingester("w0")
    first.ensure_group()  # before either starts, or both would race to create it
    first.client.close()
    results, errors = {}, []

    def work(name):
        try:
            results[name] = drain(name, batch_size=7)
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(2)]
    with caplog.at_level(logging.WARNING, logger="billing.ingest"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert not errors and len(results) == 2
    # A deadlock would have been retried (a transient error): the log is where it would show.
    assert [r.getMessage() for r in caplog.records if r.name == "billing.ingest"] == []
    assert sum(r.inserted for r in results.values()) == 120
    # (A call twice in one batch is stored once without counting as a duplicate: read tells them all.)
    assert sum(r.read for r in results.values()) == 240
    assert CDR.objects.count() == 120
    assert (balance(acme), balance(globex)) == (Decimal("-12.00"), Decimal("-12.00"))
    assert (balance(vendor_a), balance(vendor_b)) == (Decimal("2.40"), Decimal("2.40"))


def test_storing_inside_a_callers_transaction_leaves_the_commit_to_it(prefix, accounts):
    acme, vendor = accounts["acme"], accounts["vendor_a"]
    batch = [records.parse(str(n), json.dumps(cdr(n, acme, vendor))) for n in range(3)]
    catalog = Catalog()
    with connection.cursor() as cursor:
        catalog.prepare(cursor, {acme.pk, vendor.pk})
    assert records.rate_records(batch, catalog) == []

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon), transaction.atomic():
        stored, refused = store.store_batch(batch, 0)
        assert (stored.inserted, refused, stored.balances[acme.pk]) == (3, [], Decimal("-0.60"))
        raise Abandon
    assert (CDR.objects.count(), balance(acme)) == (0, 0)

    with transaction.atomic():
        assert store.store_batch(batch, 0)[0].inserted == 3
    assert (CDR.objects.count(), balance(acme), balance(vendor)) == (3, Decimal("-0.60"), Decimal("0.12"))
    assert store.store_batch(batch, 0)[0].duplicates == 3  # and in its own transaction, nothing twice
    assert balance(acme) == Decimal("-0.60")


def test_entries_read_ahead_with_an_acknowledgement_are_finished_at_a_stop(prefix, redis_client, accounts):
    acme, vendor = accounts["acme"], accounts["vendor_a"]
    push(redis_client, *(cdr(n, acme, vendor) for n in range(10)))
    ingester = ingest.Ingester("stopping", batch_size=3, block_ms=0)
    # Asked to stop after its first batch, whose acknowledgement already read the next three.
    totals = ingester.run(lambda: ingester.totals.read >= 3)
    ingester.client.close()
    assert (totals.read, totals.inserted) == (6, 6)
    assert redis_client.xpending(ingest.stream_key(), ingest.GROUP)["pending"] == 0
    assert redis_client.xlen(ingest.stream_key()) == 4  # never read: for the next start
    assert balance(acme) == Decimal("-1.20")


def test_entries_read_ahead_before_a_failed_batch_are_read_again_and_charged_once(
    prefix, redis_client, accounts, monkeypatch
):
    acme, vendor = accounts["acme"], accounts["vendor_a"]
    push(redis_client, *(cdr(n, acme, vendor) for n in range(10)))
    real, calls = store.store_batch, []

    def flaky(batch, alarm):
        calls.append(len(batch))
        if len(calls) == 2:  # the batch that came with the first acknowledgement
            raise psycopg.OperationalError("the server closed the connection (simulated)")
        return real(batch, alarm)

    monkeypatch.setattr(store, "store_batch", flaky)
    totals = drain(batch_size=3)
    assert (totals.inserted, CDR.objects.count()) == (10, 10)
    assert redis_client.xpending(ingest.stream_key(), ingest.GROUP)["pending"] == 0
    assert balance(acme) == Decimal("-2.00") and balance(vendor) == Decimal("0.40")


def test_a_record_with_a_lone_surrogate_is_set_aside_instead_of_jamming_its_batch(prefix, redis_client, accounts):
    acme, vendor = accounts["acme"], accounts["vendor_a"]
    # json.dumps writes a lone surrogate (undecodable bytes kept by surrogateescape) as \udcff, which
    # Python's json reads back and no UTF-8 encoder, psycopg's included, can send to PostgreSQL.
    push(redis_client, cdr(1, acme, vendor), cdr(2, acme, vendor, caller_user_agent="sipp\udcff"), cdr(3, acme, vendor))
    ingester = ingest.Ingester("test", batch_size=10, block_ms=0)
    deadline = time.monotonic() + 30  # before the fix, the batch failed and was read again forever
    totals = ingester.run(lambda: time.monotonic() > deadline, drain=True)
    ingester.client.close()
    assert (totals.inserted, totals.dead) == (2, 1)
    assert "not JSON" in ingest.dead_letters()[0].reason
    assert redis_client.xpending(ingest.stream_key(), ingest.GROUP)["pending"] == 0
