"""SERVER_BILLING_RECORD_SERVER_HANG_UP through the real switch and ingest: it drops the CDRs of calls the switch
ended before they connected, never an answered call's, which is recorded and charged to the cent."""

from decimal import Decimal

import pytest

from billing import ingest
from billing.models import CDR, Account, Rate
from callcore.contract import EndDirection

from .conftest import VENDOR_A, VENDOR_B, needs_sip, wait_for_cdrs

# The CDR ingest commits its own transactions.
pytestmark = [pytest.mark.sip, needs_sip, pytest.mark.django_db(transaction=True)]


def ingest_the_stream():
    ingester = ingest.Ingester("e2e", batch_size=100, block_ms=0)
    ingester.run(drain=True)
    ingester.client.close()


def test_a_call_cut_at_its_conversation_limit_is_recorded_and_charged_with_server_hang_up_off(
    callcore, switch_config, sipp, live_redis
):
    switch_config.set_parameter("SERVER_BILLING_RECORD_SERVER_HANG_UP", 0)
    # 6/6 periods: a cut after 1-2 s is one 6 s period on both sides, so fee and cost are exact.
    for table, price in (("Retail", "6.0000"), ("Cost", "3.0000")):
        rate = Rate.objects.get(rate_table__name=table, prefix="1")
        rate.price_per_minute, rate.first_period, rate.next_period = Decimal(price), 6, 6
        rate.save()
    switch_config.gateway.conversation_limit = 2
    switch_config.gateway.save()
    switch_config.publish()
    sipp.vendor("uas_answer.xml", VENDOR_A)
    result = sipp.customer("uac_wait_bye.xml", "12125550100", timeout=20)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert sipp.wait_vendors() == [0]
    [record] = wait_for_cdrs(live_redis, 1)
    assert (record["end_reason"], record["end_direction"]) == ("max_duration", EndDirection.SERVER)

    ingest_the_stream()
    cdr = CDR.objects.get(call_uuid=record["call_uuid"])
    assert cdr.hold_time_ms > 0
    assert (cdr.fee_time, cdr.fee, cdr.vendor_cost) == (6, Decimal("0.60"), Decimal("0.30"))
    assert Account.objects.get(pk=switch_config.customer.pk).balance == Decimal("49.40")
    assert Account.objects.get(pk=switch_config.vendor_a.pk).balance == Decimal("0.30")


def test_server_hang_up_off_drops_the_switchs_unconnected_endings_only(callcore, switch_config, sipp, live_redis):
    switch_config.set_parameter("SERVER_BILLING_RECORD_SERVER_HANG_UP", 0)
    switch_config.publish()
    # Every vendor failed: the switch gave up, so no CDR.
    sipp.vendor("uas_fail.xml", VENDOR_A, CODE=503)
    sipp.vendor("uas_fail.xml", VENDOR_B, CODE=502)
    result = sipp.customer("uac_reject.xml", "12125550100", CODE=502)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert sipp.wait_vendors() == [0, 0]
    # A vendor's own stop answer is not the switch's ending: its CDR proves the stream is being written.
    sipp.vendor("uas_fail.xml", VENDOR_A, CODE=486)
    result = sipp.customer("uac_reject.xml", "12125550100", CODE=486)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    records = wait_for_cdrs(live_redis, 1)
    assert [r["end_reason"] for r in records] == ["vendor_rejected"]
