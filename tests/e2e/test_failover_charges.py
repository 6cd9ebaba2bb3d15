"""A failover call through the real switch and ingest: the vendor that answered is the one whose cost is
recorded, at its clearing account's rate, to the cent; the vendor that refused is charged nothing."""

from decimal import Decimal

import pytest

from billing import ingest
from billing.models import CDR, Account, Rate, RateTable

from .conftest import VENDOR_A, VENDOR_B, needs_sip, wait_for_cdrs

# The CDR ingest commits its own transactions.
pytestmark = [pytest.mark.sip, needs_sip, pytest.mark.django_db(transaction=True)]


def test_a_failover_call_costs_the_answering_vendors_rate_to_the_cent(callcore, switch_config, sipp, live_redis):
    # By the second: the customer pays 0.10 a second; vendor A's table would cost 0.05, vendor B's 0.02,
    # so a cost taken from the first route tried, or the table the vendors shared, shows.
    Rate.objects.filter(rate_table__name="Retail", prefix="1").update(
        price_per_minute=Decimal("6.0000"), first_period=1, next_period=1
    )
    Rate.objects.filter(rate_table__name="Cost", prefix="1").update(price_per_minute=Decimal("3.0000"))
    cost_b = RateTable.objects.create(name="Cost B")
    Rate.objects.create(rate_table=cost_b, prefix="1", price_per_minute=Decimal("1.2000"), first_period=1,
                        next_period=1)  # fmt: skip
    Account.objects.filter(pk=switch_config.vendor_b.pk).update(rate_table=cost_b)
    switch_config.publish()
    sipp.vendor("uas_fail.xml", VENDOR_A, CODE=503)
    sipp.vendor("uas_answer.xml", VENDOR_B)
    result = sipp.customer("uac_call.xml", "12125550100", hold_ms=2500)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert sipp.wait_vendors() == [0, 0]
    [record] = wait_for_cdrs(live_redis, 1)
    assert [(t["gateway"], t["status"]) for t in record["vendors_tried"]] == [("Vendor A", 503), ("Vendor B", 200)]

    ingester = ingest.Ingester("e2e", batch_size=100, block_ms=0)
    ingester.run(drain=True)
    ingester.client.close()
    cdr = CDR.objects.get(call_uuid=record["call_uuid"])
    seconds = -(-record["hold_time_ms"] // 1000)
    assert seconds >= 3
    assert (cdr.routing_gateway_id, cdr.vendor_account_id) == (switch_config.route_b.pk, switch_config.vendor_b.pk)
    assert (cdr.fee_time, cdr.fee, cdr.vendor_cost) == (seconds, Decimal("0.10") * seconds, Decimal("0.02") * seconds)
    assert cdr.vendor_rate_prefix == "1"
    assert Account.objects.get(pk=switch_config.customer.pk).balance == Decimal("50") - cdr.fee
    assert Account.objects.get(pk=switch_config.vendor_b.pk).balance == cdr.vendor_cost
    assert Account.objects.get(pk=switch_config.vendor_a.pk).balance == 0
