"""The worker records the detectors' fraud events from the real Redis stream into PostgreSQL, once each."""

import datetime as dt
import time
import uuid

import pytest
import redis
from django.conf import settings

from callcore.contract import (
    EVENT_FIELD,
    FraudEvent,
    Keys,
    account_high_risk_subject,
    encode_event,
)
from security import fraud_events
from security.models import BlacklistExemption, DynamicBlacklistEntry

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def keys(settings):
    settings.REDIS_PREFIX = f"sstest-h1-{uuid.uuid4().hex[:8]}"
    yield Keys(settings.REDIS_PREFIX)
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(f"{settings.REDIS_PREFIX}:*"):
        client.delete(key)
    client.close()


@pytest.fixture
def r():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


def now_ms():
    return int(time.time() * 1000)


def event(**changes):
    fields = dict(
        rule="malicious_caller",
        severity="critical",
        subject="15550001111",
        scope="central",
        mapping_gateway_id=None,
        account_id=None,
        figures={"count": 6, "window_s": 600, "warning": 4, "critical": 6},
        evidence=[f"c{n}@192.0.2.1" for n in range(6)],
        blocked=True,
        ttl_s=3600,
        detected_ms=now_ms(),
        node="cc1",
    )
    fields.update(changes)
    return FraudEvent(**fields)


def xadd(r, keys, ev):
    return r.xadd(keys.fraud_events, {EVENT_FIELD: encode_event(ev)}).decode()


def pending(r, keys):
    return r.xpending(keys.fraud_events, fraud_events.GROUP)["pending"]


def test_a_blocking_critical_event_becomes_an_entry_awaiting_review(r, keys, customer):
    detected = now_ms()
    stream_id = xadd(
        r, keys, event(rule="high_risk_rate", subject=account_high_risk_subject(customer.pk), account_id=customer.pk,
                       detected_ms=detected, figures={"count": 5, "window_s": 60, "warning": 3, "critical": 5})
    )  # fmt: skip

    assert fraud_events.persist() == {"events": 1, "entries": 1, "dropped": 0}

    entry = DynamicBlacklistEntry.objects.get()
    assert (entry.stream_id, entry.rule, entry.severity, entry.status) == (
        stream_id, "high_risk_rate", "critical", "awaiting_review"
    )  # fmt: skip
    assert (entry.subject_kind, entry.account_id, entry.number) == ("account_high_risk", customer.pk, "")
    assert entry.member == f"acct:{customer.pk}:hr"
    assert entry.figures["count"] == 5 and entry.node == "cc1" and len(entry.evidence) == 6
    assert int(entry.created.timestamp() * 1000) == detected
    assert entry.expires_at == entry.created + dt.timedelta(hours=1)
    assert "High-risk destination rate: 5 in 60 s" in entry.reason
    # The entry keeps the subject in the call core's set (the detector put it there first).
    assert r.zscore(keys.dynamic_blacklist(), entry.member) == detected + 3_600_000
    assert pending(r, keys) == 0


def test_warnings_and_report_only_breaches_make_no_entry(r, keys):
    xadd(r, keys, event(severity="warning", blocked=False, ttl_s=0))
    xadd(r, keys, event(blocked=False))  # critical, but the rule is report-only

    assert fraud_events.persist()["events"] == 2
    assert not DynamicBlacklistEntry.objects.exists()
    assert pending(r, keys) == 0


def test_reading_the_stream_again_records_nothing_twice(r, keys):
    stream_id = xadd(r, keys, event())
    fraud_events.persist()
    # Another group member, or a replay after the ack was lost: the same entry handed over again.
    fraud_events.record(stream_id, event())
    r.xgroup_setid(keys.fraud_events, fraud_events.GROUP, id="0")
    fraud_events.persist()

    assert DynamicBlacklistEntry.objects.filter(stream_id=stream_id).count() == 1


def test_a_worker_restart_rereads_what_it_was_given_and_never_acknowledged(r, keys):
    ids = [xadd(r, keys, event(subject=f"1555000{n:04d}")) for n in range(3)]
    fraud_events.ensure_group(r, keys)
    # The worker read the batch, then died before recording or acknowledging any of it.
    delivered = r.xreadgroup(fraud_events.GROUP, fraud_events.CONSUMER, {keys.fraud_events: ">"}, count=10)
    assert len(delivered[0][1]) == 3 and pending(r, keys) == 3

    stats = fraud_events.persist()  # the restarted worker: its own pending list first

    assert stats["entries"] == 3
    assert sorted(DynamicBlacklistEntry.objects.values_list("stream_id", flat=True)) == sorted(ids)
    assert pending(r, keys) == 0


def test_a_crash_between_commit_and_ack_leaves_one_row(r, keys):
    stream_id = xadd(r, keys, event())
    fraud_events.ensure_group(r, keys)
    r.xreadgroup(fraud_events.GROUP, fraud_events.CONSUMER, {keys.fraud_events: ">"}, count=10)
    fraud_events.record(stream_id, event())  # committed; the XACK never happened

    assert fraud_events.persist()["entries"] == 0
    assert DynamicBlacklistEntry.objects.count() == 1 and pending(r, keys) == 0


def test_a_dead_consumers_entries_are_taken_over(r, keys, monkeypatch):
    xadd(r, keys, event())
    fraud_events.ensure_group(r, keys)
    r.xreadgroup(fraud_events.GROUP, "worker-on-a-gone-host", {keys.fraud_events: ">"}, count=10)
    monkeypatch.setattr(fraud_events, "CLAIM_IDLE_MS", 0)

    assert fraud_events.persist()["entries"] == 1
    assert pending(r, keys) == 0


def test_an_event_for_an_exempt_subject_is_recorded_released(r, keys):
    BlacklistExemption.objects.create(number="15550001111", until=dt.datetime.now(dt.UTC) + dt.timedelta(days=2))
    xadd(r, keys, event())

    fraud_events.persist()

    entry = DynamicBlacklistEntry.objects.get()
    assert entry.status == "released" and entry.review_note.startswith("exempt until")
    assert r.zscore(keys.dynamic_blacklist(), "15550001111") is None


def test_an_event_recorded_after_its_expiry_is_expired(r, keys):
    xadd(r, keys, event(detected_ms=now_ms() - 7_200_000, ttl_s=3600))
    fraud_events.persist()
    assert DynamicBlacklistEntry.objects.get().status == "expired"


def test_a_gateway_scoped_event_goes_to_the_gateways_list(r, keys, customer):
    from softswitch_portal.switching.models import MappingGateway

    gateway = MappingGateway.objects.create(name="gw", account=customer, remote_ips=["192.0.2.1"])
    xadd(r, keys, event(scope="gateway", mapping_gateway_id=gateway.pk))
    fraud_events.persist()

    entry = DynamicBlacklistEntry.objects.get()
    assert (entry.scope, entry.mapping_gateway_id) == ("gateway", gateway.pk)
    assert r.zscore(keys.dynamic_blacklist(gateway.pk), "15550001111") is not None
    assert r.zscore(keys.dynamic_blacklist(), "15550001111") is None


@pytest.mark.parametrize("raw", [b"not json", b'{"rule": "x"}', encode_event(event(subject="acct:x"))])
def test_a_malformed_event_is_dropped_and_acknowledged(r, keys, raw):
    r.xadd(keys.fraud_events, {EVENT_FIELD: raw})
    xadd(r, keys, event())

    assert fraud_events.persist() == {"events": 1, "entries": 1, "dropped": 1}
    assert pending(r, keys) == 0


def test_a_run_does_not_overlap_the_previous_one(r, keys):
    xadd(r, keys, event())
    r.set(f"{keys.fraud_events}:lock", "another-run")

    assert fraud_events.persist()["events"] == 0
    r.delete(f"{keys.fraud_events}:lock")
    assert fraud_events.persist()["events"] == 1
