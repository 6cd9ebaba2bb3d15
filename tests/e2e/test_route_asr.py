"""The Best ASR route policy through the real switch: the vendors' published ASR decides who is tried first."""

import time

import pytest
from django.conf import settings

from callcore.contract import ROUTE_STATS_POLL_S, RouteStats, SharedLiveKeys

from .conftest import VENDOR_B, needs_sip, wait_for_cdrs

pytestmark = [pytest.mark.sip, needs_sip, pytest.mark.django_db]


def best_asr(switch_config):
    switch_config.gateway.route_policy = "asr"
    switch_config.gateway.save()
    # Should vendor A (priority 10, nobody listening) be tried first, it costs 2 s and leaves a 408 behind.
    switch_config.set_parameter("SS_SIP_TIMEOUT_INVITE", 2)
    switch_config.publish()


def tried(record):
    return [(t["gateway"], t["status"]) for t in record["vendors_tried"]]


def test_the_vendor_with_the_better_published_asr_is_tried_first(callcore, switch_config, sipp, live_redis):
    best_asr(switch_config)
    figures = RouteStats(int(time.time() * 1000), 60, {switch_config.route_a.id: (100, 10),
                                                       switch_config.route_b.id: (100, 90)})  # fmt: skip
    live_redis.set(SharedLiveKeys(settings.REDIS_PREFIX).route_asr, figures.encode(), ex=600)
    time.sleep(ROUTE_STATS_POLL_S + 0.5)  # every process has read them by its next call
    sipp.vendor("uas_answer.xml", VENDOR_B)
    result = sipp.customer("uac_call.xml", "12125550100", hold_ms=200)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    [record] = wait_for_cdrs(live_redis, 1)
    assert tried(record) == [("Vendor B", 200)]
