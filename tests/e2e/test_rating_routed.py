"""A callee transformed by the mapping gateway is rated on the number the switch routed on, through the real
switch and ingest: 00447911123456 through a strip-00 rule is charged at the 44 rate, to the cent."""

from decimal import Decimal

import pytest

from billing import ingest
from billing.models import CDR, Account, Rate
from softswitch_portal.switching.models import NumberTransformRule

from .conftest import VENDOR_A, needs_sip, wait_for_cdrs

# The CDR ingest commits its own transactions.
pytestmark = [pytest.mark.sip, needs_sip, pytest.mark.django_db(transaction=True)]


def test_a_strip_00_callee_is_charged_at_the_routed_numbers_rate(callcore, switch_config, sipp, live_redis):
    # 6/6 periods on both sides: a call of 1-6 s is one period, so fee and cost are exact.
    for table, price in (("Retail", "6.0000"), ("Cost", "3.0000")):
        rate = Rate.objects.get(rate_table__name=table, prefix="44")
        rate.price_per_minute, rate.first_period, rate.next_period = Decimal(price), 6, 6
        rate.save()
    strip_00 = NumberTransformRule.objects.create(name="strip 00", match_prefix="00", strip_digits=2, priority=10)
    switch_config.gateway.callee_transforms.add(strip_00)
    switch_config.publish()
    sipp.vendor("uas_answer.xml", VENDOR_A, EXPECT=r"^INVITE sip:447911123456@")
    result = sipp.customer("uac_call.xml", "00447911123456", hold_ms=1500)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert sipp.wait_vendors() == [0]
    [record] = wait_for_cdrs(live_redis, 1)
    assert record["end_reason"] == "normal_clearing"

    ingester = ingest.Ingester("e2e", batch_size=100, block_ms=0)
    ingester.run(drain=True)
    ingester.client.close()
    cdr = CDR.objects.get(call_uuid=record["call_uuid"])
    assert (cdr.callee_number, cdr.callee_number_routed, cdr.callee_number_out) == (
        "00447911123456",
        "447911123456",
        "447911123456",
    )
    assert 0 < cdr.hold_time_ms < 6000
    assert (cdr.fee_time, cdr.fee, cdr.rate_prefix) == (6, Decimal("0.60"), "44")
    assert (cdr.vendor_cost, cdr.vendor_rate_prefix) == (Decimal("0.30"), "44")
    assert Account.objects.get(pk=switch_config.customer.pk).balance == Decimal("49.40")
    assert Account.objects.get(pk=switch_config.vendor_a.pk).balance == Decimal("0.30")
