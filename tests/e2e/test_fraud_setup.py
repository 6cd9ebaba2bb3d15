"""The anti-fraud set-up rules through the real switch (SIPp customer -> callcore -> SIPp vendor), as shipped."""

import time

import pytest

from callcore.contract import EndDirection, account_high_risk_subject, decode_event
from security.choices import ListKind, MatchKind
from security.models import BlackWhiteListGroup, ListEntry

from .conftest import VENDOR_A, keys, needs_sip, wait_for_cdrs
from .test_quota_grants import ingest_running

pytestmark = [pytest.mark.sip, needs_sip, pytest.mark.django_db(transaction=True)]


def high_risk(prefix):
    group = BlackWhiteListGroup.objects.create(name="High-risk destinations", kind=ListKind.HIGH_RISK)
    ListEntry.objects.create(group=group, number=prefix, match=MatchKind.PREFIX)


def test_a_high_risk_burst_is_refused_from_its_critical_call_on_and_its_live_calls_are_ended(
    callcore, switch_config, sipp, live_redis
):
    # An IRSF pump through a hijacked trunk: a call a second to a high-risk range, each meant to talk 30 s.
    high_risk("1212555")
    switch_config.publish()
    sipp.vendor("uas_answer.xml", VENDOR_A, calls=4, timeout=40)
    pump = sipp.customer(
        "uac_wait_bye.xml", "12125550100", calls=5, rate=1, timeout=40, background=True, extra=("-l", "10")
    )
    records = wait_for_cdrs(live_redis, 5, timeout=30)
    pump.wait(timeout=40)
    assert len(records) == 5
    by_start = sorted(records, key=lambda r: r["start_ms"])
    # The fifth call in a minute is the critical level (SS_FRAUD_HIGH_RISK_RATE_CRITICAL = 5): refused ...
    refused = by_start[-1]
    assert (refused["end_reason"], refused["sip_status"], refused["answer_ms"]) == ("fraud_high_risk_rate", 403, None)
    # ... and the four calls already talking are ended by the switch within seconds, not after their 30 s.
    for record in by_start[:4]:
        assert record["answer_ms"], record
        assert (record["end_reason"], record["end_direction"]) == ("fraud_high_risk_rate", EndDirection.SERVER)
        assert record["hold_time_ms"] < 10_000
    customer = switch_config.customer.pk
    assert live_redis.zscore(keys().dynamic_blacklist(), account_high_risk_subject(customer))
    [*_, (_id, fields)] = live_redis.xrange(keys().fraud_events)
    event = decode_event(fields["e"])
    assert (event.rule, event.severity, event.blocked, event.account_id) == (
        "high_risk_rate",
        "critical",
        True,
        customer,
    )
    # The next call to the destination is refused by the entry; the account's other traffic is not.
    result = sipp.customer("uac_reject.xml", "12125550199", CODE=403)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    time.sleep(0.5)
    assert wait_for_cdrs(live_redis, 6)[-1]["end_reason"] == "dynamic_blacklisted"


def test_the_calls_of_a_high_risk_burst_still_ringing_at_its_block_are_cancelled(callcore, switch_config, sipp,
                                                                                 live_redis):  # fmt: skip
    # The same pump, its calls still ringing when the rule trips: left alone, any of them answered afterwards
    # would talk on. Each is cancelled instead (CANCEL to the vendor, its 487 to the caller, no other vendor).
    high_risk("1212555")
    switch_config.publish()
    ringing = sipp.vendor("uas_ring.xml", VENDOR_A, calls=4, timeout=40)  # each ends only by the switch's CANCEL
    sipp.customer("uac_reject.xml", "12125550100", CODE=487, calls=5, rate=1, timeout=40, background=True,
                  extra=("-l", "10"))  # fmt: skip
    records = sorted(wait_for_cdrs(live_redis, 5, timeout=30), key=lambda r: r["start_ms"])
    assert ringing.wait(timeout=40) == 0  # the vendor saw a CANCEL for each of its four calls
    assert (records[-1]["end_reason"], records[-1]["sip_status"]) == ("fraud_high_risk_rate", 403)
    for record in records[:4]:
        assert (record["end_reason"], record["end_direction"], record["answer_ms"]) == (
            "fraud_high_risk_rate", EndDirection.SERVER, None,
        ), record  # fmt: skip
        assert record["disconnected_by"] == "e2e:high_risk_rate"
        assert [(t["gateway"], t["status"]) for t in record["vendors_tried"]] == [("Vendor A", 487)]


def test_a_test_call_burst_to_one_number_is_stopped_by_the_malicious_caller_rule(
    callcore, switch_config, sipp, live_redis
):
    # Short calls, two a second, from one caller to one number (test calls, call-back bait).
    switch_config.publish()
    sipp.vendor("uas_answer.xml", VENDOR_A, calls=5, timeout=30)
    sipp.customer("uac_call.xml", "12125550100", calls=8, rate=2, hold_ms=500, timeout=30)
    records = sorted(wait_for_cdrs(live_redis, 8, timeout=20), key=lambda r: r["start_ms"])
    reasons = [r["end_reason"] for r in records]
    # Six calls in 600 s is the critical level: five talk, the sixth is refused, the rest by the entry.
    assert reasons[:5] == ["normal_clearing"] * 5
    assert reasons[5] == "fraud_malicious_caller"
    assert set(reasons[6:]) == {"dynamic_blacklisted"}
    assert live_redis.zscore(keys().dynamic_blacklist(), "15551230001")


def test_a_short_call_burst_blocks_its_number_once_the_ingest_has_seen_it(callcore, switch_config, sipp, live_redis):
    # The post-call rule, through the real ingest running beside the switch: connected calls under 10 s from
    # one account to one number's prefix; the critical level lowered to 4 so the burst is short.
    switch_config.set_parameter("SS_FRAUD_MALICIOUS_CALLER_ENABLED", 0)  # the same pair, judged by the other rule
    switch_config.set_parameter("SS_FRAUD_SHORT_CALL_BURST_WARNING", 2)
    switch_config.set_parameter("SS_FRAUD_SHORT_CALL_BURST_CRITICAL", 4)
    switch_config.publish()
    sipp.vendor("uas_answer.xml", VENDOR_A, calls=4, timeout=30)
    with ingest_running():
        sipp.customer("uac_call.xml", "12125550100", calls=4, rate=2, hold_ms=500, timeout=30)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not live_redis.zscore(keys().dynamic_blacklist(), "12125550100"):
            time.sleep(0.2)
    assert live_redis.zscore(keys().dynamic_blacklist(), "12125550100")
    result = sipp.customer("uac_reject.xml", "12125550100", CODE=403)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
