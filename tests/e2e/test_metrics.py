"""The call-core node's Prometheus metrics after a batch of calls through the real switch: its counters move by
exactly the CDRs the calls wrote, end reason by end reason, and its gauges say what the node holds."""

import time
import urllib.error
import urllib.request

import pytest

from .conftest import SWITCH_PORT, VENDOR_A, needs_sip, wait_for_cdrs

pytestmark = [pytest.mark.sip, needs_sip, pytest.mark.django_db(transaction=True)]

METRICS_URL = f"http://127.0.0.1:{SWITCH_PORT + 4000}/metrics"  # the SIP port + 4000 unless SS_METRICS_PORT says


def scrape() -> dict[str, float]:
    with urllib.request.urlopen(METRICS_URL, timeout=5) as answer:
        assert answer.status == 200
        text = answer.read().decode()
    figures = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.split()[:2]  # then Kamailio's exporter gives a timestamp
            figures[name] = float(value)
    return figures


def moved(before, after, prefix):
    """How much each series named ``prefix...`` moved between two scrapes, by its labels."""
    return {
        name[len(prefix) :]: after[name] - before.get(name, 0)
        for name in after
        if name.startswith(prefix) and after[name] != before.get(name, 0)
    }


def test_counters_after_a_batch_of_calls_equal_the_cdr_counts(callcore, switch_config, sipp, live_redis):
    switch_config.publish()
    before = scrape()
    answered, unrated = 5, 3
    sipp.vendor("uas_answer.xml", VENDOR_A, calls=answered)
    result = sipp.customer("uac_call.xml", "4420794960", calls=answered, rate=10, hold_ms=200)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    # The customer has no rate for 99: refused at set-up, each with its CDR.
    refused = sipp.customer("uac_reject.xml", "9912345", calls=unrated, rate=10, CODE=404)
    assert refused.returncode == 0, refused.stderr.decode()[-2000:]
    assert sipp.wait_vendors() == [0]
    records = wait_for_cdrs(live_redis, answered + unrated)
    assert len(records) == answered + unrated
    by_reason: dict[str, int] = {}
    for record in records:
        by_reason[record["end_reason"]] = by_reason.get(record["end_reason"], 0) + 1
    assert by_reason == {"normal_clearing": answered, "no_rate": unrated}

    time.sleep(1.5)  # the gauges are the metrics timer's, once a second
    after = scrape()
    assert moved(before, after, "ss_calls_routed_total") == {"": answered}
    assert moved(before, after, "ss_calls_answered_total") == {"": answered}
    assert moved(before, after, "ss_calls_ended_total") == {'{reason="normal_clearing"}': answered}
    assert moved(before, after, "ss_calls_refused_total") == {'{reason="no_rate"}': unrated}
    # Every routed call made one set-up round trip to Redis.
    assert moved(before, after, "ss_redis_rtt_seconds_count") == {"": answered}
    assert after["ss_live_calls"] == 0
    assert after["ss_cdr_spool_bytes"] == 0
    assert after["ss_snapshot_version"] >= 1 and after["ss_snapshot_age_seconds"] >= 0
    assert after["ss_bans"] == 0


def test_the_metrics_port_serves_only_metrics(callcore):
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(METRICS_URL.replace("/metrics", "/admin"), timeout=5)
    assert refused.value.code == 403
