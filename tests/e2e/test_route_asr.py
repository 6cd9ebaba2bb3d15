"""The Best ASR route policy through the real switch and worker: calls make CDRs, the CDR ingest counts each
vendor's attempts, the worker publishes the window's ASR, and the next call goes first to the vendor that
connects."""

import time

import pytest

from billing import ingest, route_stats
from callcore.contract import ROUTE_STATS_POLL_S

from .conftest import VENDOR_A, VENDOR_B, needs_sip, wait_for_cdrs

# The CDR ingest commits its own transactions.
pytestmark = [pytest.mark.sip, needs_sip, pytest.mark.django_db(transaction=True)]


def tried(record):
    return [(t["gateway"], t["status"]) for t in record["vendors_tried"]]


def run_the_worker():
    """What the worker does between calls: ingest the CDRs on the stream (counting), then publish the ASR."""
    ingester = ingest.Ingester("e2e", batch_size=100, block_ms=0)
    ingester.run(drain=True)
    ingester.client.close()
    return route_stats.publish()


def test_the_vendor_that_connects_takes_the_next_calls_first(callcore, switch_config, sipp, live_redis):
    a, b = switch_config.route_a.id, switch_config.route_b.id
    switch_config.set_parameter("SS_ROUTE_ASR_MIN_ATTEMPTS", 2)
    switch_config.publish()
    # By priority (the gateway's policy for now): vendor A refuses both calls, vendor B connects them.
    sipp.vendor("uas_fail.xml", VENDOR_A, calls=2, CODE=503)
    sipp.vendor("uas_answer.xml", VENDOR_B, calls=2)
    result = sipp.customer("uac_call.xml", "12125550100", calls=2, hold_ms=200)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert sipp.wait_vendors() == [0, 0]
    records = wait_for_cdrs(live_redis, 2)
    assert [tried(r) for r in records] == [[("Vendor A", 503), ("Vendor B", 200)]] * 2

    figures = run_the_worker()
    assert (figures.gateways[a], figures.gateways[b]) == ((2, 0), (2, 2))

    switch_config.gateway.route_policy = "asr"
    switch_config.gateway.save()
    # Should vendor A (nobody listens now) still be tried first, it costs 2 s and leaves a 408 behind.
    switch_config.set_parameter("SS_SIP_TIMEOUT_INVITE", 2)
    switch_config.publish()
    time.sleep(ROUTE_STATS_POLL_S)  # every call-core process has read the figures by its next call
    sipp.vendor("uas_answer.xml", VENDOR_B)
    result = sipp.customer("uac_call.xml", "12125550100", hold_ms=200)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    [record] = wait_for_cdrs(live_redis, 1)  # the ingest took the first two off the stream
    assert tried(record) == [("Vendor B", 200)]
