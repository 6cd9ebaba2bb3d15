"""Records the fraud events the detectors stream (``Keys.fraud_events``) in PostgreSQL, once each.

The detector (a call-core node at set-up, or the CDR ingest) has already
written a blocking entry to Redis, so the switch refuses the next call without
the portal; this worker only makes the record an admin reviews: a
``DynamicBlacklistEntry`` for each critical event that blocked, and an alarm
for every event (``security.alarms.raise_fraud_alarm``, where that module is
installed).

One consumer group reads the stream. Each run first re-reads this consumer's
own pending entries (delivered before a crash or a restart, never
acknowledged), then takes over any other consumer's entries idle for
``CLAIM_IDLE_MS``, then reads new ones. An entry is acknowledged only after
its transaction committed, and the entry row is keyed by the stream id, so an
event read twice is recorded once. Runs do not overlap: a short Redis lock
keeps a slow run and the next beat tick apart.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import uuid

import msgspec
import redis
from django.db import IntegrityError, transaction
from django.utils import timezone

from callcore.contract import EVENT_FIELD, FraudEvent, Keys, Severity, SubjectKind, decode_event, parse_subject
from softswitch_portal.core.redis import Waiter, prefix, redis_client

from . import dynamic_blacklist
from .choices import BlacklistScope, BlacklistStatus, FraudRuleChoice
from .models import DynamicBlacklistEntry

log = logging.getLogger("security.fraud_events")

GROUP = "portal"
CONSUMER = "worker"
BATCH = 500
# Another consumer's entry unacknowledged this long is taken over (its worker died mid-batch).
CLAIM_IDLE_MS = 60_000
LOCK_MS = 60_000


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def ensure_group(client, keys):
    try:
        client.xgroup_create(keys.fraud_events, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def entry_for(stream_id: str, event: FraudEvent, now=None) -> DynamicBlacklistEntry | None:
    """The review-queue row of a critical event that blocked (None for a warning or a report-only breach)."""
    if event.severity != Severity.CRITICAL or not event.blocked:
        return None
    kind, value = parse_subject(event.subject)
    now = now or timezone.now()
    detected = dt.datetime.fromtimestamp(event.detected_ms / 1000, tz=dt.UTC)
    expires_at = detected + dt.timedelta(seconds=event.ttl_s) if event.ttl_s > 0 else None
    gateway_scope = event.scope == BlacklistScope.GATEWAY and event.mapping_gateway_id is not None
    rule = event.rule if event.rule in FraudRuleChoice.values else ""
    entry = DynamicBlacklistEntry(
        subject_kind=kind.value,
        number=value if kind == SubjectKind.NUMBER else "",
        account_id=int(value) if kind != SubjectKind.NUMBER else None,
        scope=BlacklistScope.GATEWAY if gateway_scope else BlacklistScope.CENTRAL,
        mapping_gateway_id=event.mapping_gateway_id if gateway_scope else None,
        rule=rule,
        severity=event.severity,
        reason=reason_of(event),
        figures=event.figures,
        evidence=list(event.evidence),
        node=event.node[:64],
        stream_id=stream_id,
        created=detected,
        expires_at=expires_at,
    )
    until = dynamic_blacklist.exempt_until(entry.subject_kind, entry.number, entry.account_id, now)
    if until is not None:
        # A detector that missed the exemption (written while it was being made): the admin's word stands.
        entry.status = BlacklistStatus.RELEASED
        entry.review_note = f"exempt until {timezone.localtime(until):%Y-%m-%d %H:%M}"
    elif expires_at is not None and expires_at <= now:
        entry.status = BlacklistStatus.EXPIRED  # recorded late (the worker was down): it no longer blocks
    return entry


def reason_of(event: FraudEvent) -> str:
    label = dict(FraudRuleChoice.choices).get(event.rule, event.rule)
    figures = event.figures
    if "count" in figures and "critical" in figures:
        window = f" in {figures['window_s']} s" if figures.get("window_s") else ""
        return f"{label}: {figures['count']}{window} (critical {figures['critical']})"[:200]
    return label[:200]


def _alarm_hook():
    """security.alarms.raise_fraud_alarm if that module is installed, else None."""
    try:
        alarms = importlib.import_module("security.alarms")
    except ImportError:
        return None
    return getattr(alarms, "raise_fraud_alarm", None)


def record(stream_id: str, event: FraudEvent, now=None) -> DynamicBlacklistEntry | None:
    """Persist one event (its entry, its alarm) in one transaction; a stream id seen before adds nothing."""
    raise_alarm = _alarm_hook()
    with transaction.atomic():
        entry = entry_for(stream_id, event, now)
        if entry is not None:
            if DynamicBlacklistEntry.objects.filter(stream_id=stream_id).exists():
                entry = None
            else:
                try:
                    with transaction.atomic():
                        entry.save()
                except IntegrityError:
                    entry = None  # recorded by an overlapping run meanwhile
        if raise_alarm is not None:
            raise_alarm(event, stream_id=stream_id)
    return entry


def _handle(client, keys, messages, stats):
    for raw_id, fields in messages:
        stream_id = _text(raw_id)
        if fields is None:  # trimmed away while pending: nothing left to record
            client.xack(keys.fraud_events, GROUP, stream_id)
            continue
        raw = fields.get(EVENT_FIELD.encode(), fields.get(EVENT_FIELD))
        try:
            event = decode_event(raw or b"")
            parse_subject(event.subject)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            # A malformed event can never be recorded; it stays in the log, not pending for ever.
            log.error("fraud event %s dropped, not decodable: %s: %r", stream_id, exc, raw)
            stats["dropped"] += 1
        else:
            if record(stream_id, event) is not None:
                stats["entries"] += 1
            stats["events"] += 1
        # After the commit: a crash before this leaves the entry pending, read again next run.
        client.xack(keys.fraud_events, GROUP, stream_id)


def persist(count: int = BATCH, consumer: str = CONSUMER) -> dict[str, int]:
    """One run: this consumer's pending entries, others' stale ones, then new ones (up to ``count`` each)."""
    keys = Keys(prefix())
    client = redis_client(Waiter.JOB, name="portal:fraud-events")
    stats = {"events": 0, "entries": 0, "dropped": 0}
    lock_key = f"{keys.fraud_events}:lock"
    token = uuid.uuid4().hex
    if not client.set(lock_key, token, nx=True, px=LOCK_MS):
        return stats  # the previous run is still at it
    try:
        ensure_group(client, keys)
        # Delivered to this consumer before a crash or a restart, never acknowledged.
        for _, messages in client.xreadgroup(GROUP, consumer, {keys.fraud_events: "0"}, count=count) or []:
            _handle(client, keys, messages, stats)
        # A consumer of another name that stopped mid-batch.
        claimed = client.xautoclaim(keys.fraud_events, GROUP, consumer, CLAIM_IDLE_MS, "0-0", count=count)
        _handle(client, keys, claimed[1], stats)
        for _, messages in client.xreadgroup(GROUP, consumer, {keys.fraud_events: ">"}, count=count) or []:
            _handle(client, keys, messages, stats)
    finally:
        # Only our own lock: a run that outlived LOCK_MS must not free the next run's.
        if client.get(lock_key) == token.encode():
            client.delete(lock_key)
    return stats
