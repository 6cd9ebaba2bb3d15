"""Quota grants through the real switch and ingest: an anti-overdraft account's live calls talk on grants
the call core's timer renews from the money left across them all, and end (balance_exhausted, direction 2)
when the next grant cannot be covered; a vendor answering after failover gets its own conversation limit."""

import contextlib
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection

from billing import ingest
from billing.models import CDR, Account, Rate
from callcore.contract import EndDirection

from .conftest import SECOND_SWITCH_PORT, SWITCH_PORT, VENDOR_A, VENDOR_B, keys, needs_sip, wait_for_cdrs

pytestmark = [pytest.mark.sip, needs_sip, pytest.mark.django_db(transaction=True)]

# 6.00/min by the second: each second talked is 0.10, one next period.
PER_SECOND = Decimal("0.10")


def ingest_the_stream():
    ingester = ingest.Ingester("e2e", batch_size=100, block_ms=0)
    ingester.run(drain=True)
    ingester.client.close()


@contextlib.contextmanager
def ingest_running():
    """The ingest taking CDRs while the calls run, as in production: each ended call's charge reaches the
    balance while the account's other calls still renew their grants."""
    stop = threading.Event()

    def run():
        ingester = ingest.Ingester("e2e-live", batch_size=100, block_ms=100)
        try:
            ingester.run(stop.is_set)
        finally:
            ingester.client.close()
            connection.close()

    thread = threading.Thread(target=run, name="ingest", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def prepaid(switch_config, live_redis, balance, advance=2):
    Rate.objects.filter(rate_table__name="Retail", prefix="1").update(
        price_per_minute=Decimal("6.0000"), first_period=1, next_period=1
    )
    Account.objects.filter(pk=switch_config.customer.pk).update(balance=Decimal(balance), credit_limit=0)
    live_redis.delete(keys().balance(switch_config.customer.pk))
    switch_config.set_parameter("SERVER_BILLING_PREVENT_OVERDRAFT_ADVANCE_TIME", advance)
    # Ten calls from one caller to one number are the malicious-caller rule's pattern, not these tests' subject.
    switch_config.set_parameter("SS_FRAUD_MALICIOUS_CALLER_ENABLED", 0)
    switch_config.publish()


def test_a_prepaid_call_is_cut_when_its_next_grant_cannot_be_covered_and_charged_to_the_cent(
    callcore, switch_config, sipp, live_redis
):
    prepaid(switch_config, live_redis, "0.80")
    sipp.vendor("uas_answer.xml", VENDOR_A)
    result = sipp.customer("uac_wait_bye.xml", "12125550100", timeout=30)
    assert result.returncode == 0, result.stderr.decode()[-2000:]  # the switch's BYE reached the caller
    assert sipp.wait_vendors() == [0]  # and the vendor
    [record] = wait_for_cdrs(live_redis, 1)
    assert (record["end_reason"], record["end_direction"]) == ("balance_exhausted", EndDirection.SERVER)
    assert record["hold_time_ms"] > 1000
    assert live_redis.zcard(keys().grants("e2e")) == 0

    ingest_the_stream()
    cdr = CDR.objects.get(call_uuid=record["call_uuid"])
    assert cdr.fee == PER_SECOND * cdr.fee_time
    balance = Account.objects.get(pk=switch_config.customer.pk).balance
    assert balance == Decimal("0.80") - cdr.fee
    assert balance >= 0  # ended inside the talk its reservation held


def test_ten_concurrent_calls_never_overdraw_a_small_prepaid_balance(callcore, switch_config, sipp, live_redis):
    prepaid(switch_config, live_redis, "2.00")
    sipp.vendor("uas_answer.xml", VENDOR_A, calls=10, timeout=40)
    # Ten calls held 25 s each: 2.00 pays 20 s of talk between them, so most are cut.
    sipp.customer("uac_call.xml", "12125550100", calls=10, rate=50, hold_ms=25_000, timeout=40)
    sipp.wait_vendors(timeout=45)
    records = wait_for_cdrs(live_redis, 10, timeout=15)
    assert len(records) == 10
    answered = [r for r in records if r["answer_ms"]]
    assert any(r["end_reason"] == "balance_exhausted" for r in answered)
    assert all(r["end_direction"] == EndDirection.SERVER for r in answered if r["end_reason"] == "balance_exhausted")

    ingest_the_stream()
    balance = Account.objects.get(pk=switch_config.customer.pk).balance
    charged = sum(cdr.fee for cdr in CDR.objects.filter(account_id=switch_config.customer.pk))
    assert balance == Decimal("2.00") - charged
    # DOMAIN.md's guarantee: at most one next period per call that was live below -credit limit (0).
    assert balance >= -PER_SECOND * len(answered), (balance, len(answered))
    # Without grants each call would have talked its 25 s: 25.00 between them.
    assert charged <= Decimal("2.00") + PER_SECOND * len(answered)


def test_ten_concurrent_calls_on_two_nodes_never_overdraw_a_small_prepaid_balance(
    callcore, second_callcore, switch_config, sipp, live_redis
):
    prepaid(switch_config, live_redis, "5.00")
    sipp.vendor("uas_answer.xml", VENDOR_A, calls=10, timeout=40)
    # Five calls on each node, held 25 s: 5.00 pays 50 s of talk between all ten. A node that renewed from
    # its own calls' reservations alone would let its five talk 50 s too, the account about 5.00 in debt.
    with ingest_running():
        for port in (SWITCH_PORT, SECOND_SWITCH_PORT):
            sipp.customer("uac_call.xml", "12125550100", calls=5, rate=50, hold_ms=25_000, timeout=40, port=port,
                          background=True)  # fmt: skip
        sipp.wait_vendors(timeout=45)
        deadline = time.monotonic() + 15
        while CDR.objects.filter(account_id=switch_config.customer.pk).count() < 10 and time.monotonic() < deadline:
            time.sleep(0.2)
    records = list(CDR.objects.filter(account_id=switch_config.customer.pk))
    assert len(records) == 10
    answered = [r for r in records if r.answer_time]
    assert {r.node for r in answered} == {"e2e", "e2e-2"}  # both nodes had calls live on the one balance
    assert any(r.end_reason == "balance_exhausted" for r in answered)
    assert all(r.end_direction == EndDirection.SERVER for r in answered if r.end_reason == "balance_exhausted")
    assert [live_redis.zcard(keys().grants(node)) for node in ("e2e", "e2e-2")] == [0, 0]
    # Every charge is in the balance now, and so nothing is held for them any more.
    assert int(live_redis.get(keys().reservations(switch_config.customer.pk) + ":sum") or 0) == 0

    balance = Account.objects.get(pk=switch_config.customer.pk).balance
    charged = sum(cdr.fee for cdr in CDR.objects.filter(account_id=switch_config.customer.pk))
    assert balance == Decimal("5.00") - charged
    # DOMAIN.md's guarantee across nodes: at most one next period per call that was live below -credit limit (0).
    assert balance >= -PER_SECOND * len(answered), (balance, len(answered))
    assert charged <= Decimal("5.00") + PER_SECOND * len(answered)


def test_the_vendor_answering_after_failover_gets_its_own_conversation_limit(callcore, switch_config, sipp, live_redis):
    switch_config.route_b.conversation_limit = 3
    switch_config.route_b.save()
    switch_config.publish()
    sipp.vendor("uas_fail.xml", VENDOR_A, CODE=503)
    sipp.vendor("uas_answer.xml", VENDOR_B)
    result = sipp.customer("uac_wait_bye.xml", "12125550100", timeout=20)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert sipp.wait_vendors() == [0, 0]
    [record] = wait_for_cdrs(live_redis, 1)
    assert record["routing_gateway_id"] == switch_config.route_b.pk
    assert (record["end_reason"], record["end_direction"]) == ("max_duration", EndDirection.SERVER)
    # Vendor A has no limit (the dialog's timeout is two hours): vendor B's 3 s end the call, 2-3 s after the
    # answer on the whole-second timer (the upper bound leaves a loaded machine's timer slack).
    assert 2000 <= record["hold_time_ms"] <= 8000
