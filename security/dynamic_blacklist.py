"""Keeps the call core's copy of the dynamic blacklist and its exemptions in Redis in step with the database.

The call core checks caller, callee and account against sorted sets (one
switch-wide, one per standalone gateway; member = a subject of
callcore.contract.fraud, score = expiry in epoch ms) inside its single setup
round trip, so an entry takes effect on the next call without a snapshot
publish. An entry awaiting review or confirmed is in its set until it
expires; a released or expired one is removed.

Exemptions (an admin released a subject and exempted it for N days) are
mirrored into ``Keys.fraud_exempt`` the same way: member = subject, score =
the exemption's end; the detectors never add an exempt subject.

The review actions (confirm, release, release and exempt) live here too, so
the pages, the bulk actions and the tests go through one path that records
who acted and when.
"""

import datetime as dt
import logging

import redis
from django.db import transaction
from django.db.models import Max
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from callcore.contract import NEVER_EXPIRES_MS, Keys
from softswitch_portal.core.redis import Waiter, prefix, redis_client

from .choices import BlacklistScope, BlacklistStatus, BlacklistSubject
from .models import BlacklistExemption, DynamicBlacklistEntry

logger = logging.getLogger(__name__)

BLOCKING = (BlacklistStatus.AWAITING_REVIEW, BlacklistStatus.CONFIRMED)


def _key(entry):
    gateway = entry.mapping_gateway_id if entry.scope == BlacklistScope.GATEWAY else None
    return Keys(prefix()).dynamic_blacklist(gateway)


def to_ms(when):
    return int(when.timestamp() * 1000)


def _expiry_ms(entry):
    return NEVER_EXPIRES_MS if entry.expires_at is None else to_ms(entry.expires_at)


def blocks(entry, now=None):
    now = now or timezone.now()
    return entry.status in BLOCKING and (entry.expires_at is None or entry.expires_at > now)


def same_subject(kind, number, account_id):
    """The filter for the rows (entries or exemptions) naming one subject."""
    if kind == BlacklistSubject.NUMBER:
        return {"subject_kind": kind, "number": number}
    return {"subject_kind": kind, "account_id": account_id}


def sync_entry(entry, deleted=False, client=None):
    """Write one entry's state to Redis; errors are logged (resync_all repairs them)."""
    try:
        # After an operator's edit, inside the web request.
        client = client or redis_client(Waiter.PAGE, name="portal:dynamic-blacklist")
        if blocks(entry) and not deleted:
            client.zadd(_key(entry), {entry.member: _expiry_ms(entry)})
        else:
            # Another entry may block the same subject in the same scope.
            others = DynamicBlacklistEntry.objects.filter(
                **same_subject(entry.subject_kind, entry.number, entry.account_id),
                scope=entry.scope, mapping_gateway_id=entry.mapping_gateway_id, status__in=BLOCKING,
            ).exclude(pk=entry.pk)  # fmt: skip
            still = [e for e in others if blocks(e)]
            if still:
                client.zadd(_key(entry), {entry.member: max(_expiry_ms(e) for e in still)})
            else:
                client.zrem(_key(entry), entry.member)
    except redis.RedisError as exc:
        logger.error("dynamic blacklist entry %s not synced to Redis: %s", entry.pk, exc)


def active_exemptions(now=None):
    return BlacklistExemption.objects.filter(until__gt=now or timezone.now())


def exempt_until(kind, number, account_id, now=None):
    """The end of the subject's latest exemption still running, or None."""
    return active_exemptions(now).filter(**same_subject(kind, number, account_id)).aggregate(Max("until"))["until__max"]


def sync_exemption(exemption, client=None):
    """Mirror the subject's exemptions into Keys.fraud_exempt: the latest end of those still running."""
    key = Keys(prefix()).fraud_exempt
    try:
        client = client or redis_client(Waiter.PAGE, name="portal:dynamic-blacklist")
        until = exempt_until(exemption.subject_kind, exemption.number, exemption.account_id)
        if until is None:
            client.zrem(key, exemption.member)
        else:
            client.zadd(key, {exemption.member: to_ms(until)})
    except redis.RedisError as exc:
        logger.error("blacklist exemption %s not synced to Redis: %s", exemption.pk, exc)


def resync_all():
    """Rebuild every set and the exemptions from the database (beat job; also after Redis lost its data)."""
    keys = Keys(prefix())
    now = timezone.now()
    wanted = {}
    for entry in DynamicBlacklistEntry.objects.filter(status__in=BLOCKING):
        if blocks(entry, now):
            members = wanted.setdefault(_key(entry), {})
            members[entry.member] = max(members.get(entry.member, 0), _expiry_ms(entry))
    exempt = {}
    for exemption in active_exemptions(now):
        exempt[exemption.member] = max(exempt.get(exemption.member, 0), to_ms(exemption.until))
    client = redis_client(Waiter.JOB, name="portal:dynamic-blacklist")
    pipe = client.pipeline(transaction=True)
    for key in client.scan_iter(f"{keys.prefix}:dynbl:*"):
        pipe.delete(key)
    pipe.delete(keys.fraud_exempt)
    for key, members in wanted.items():
        pipe.zadd(key, members)
    if exempt:
        pipe.zadd(keys.fraud_exempt, exempt)
    pipe.execute()
    return sum(len(m) for m in wanted.values())


def expire(now=None):
    """Mark the entries past their expiry expired, and drop expired members from Redis.

    The call core already ignores a member whose score is past; this keeps the
    sets small and the review queue honest. Returns the rows marked.
    """
    now = now or timezone.now()
    marked = DynamicBlacklistEntry.objects.filter(status__in=BLOCKING, expires_at__lte=now).update(
        status=BlacklistStatus.EXPIRED
    )
    keys = Keys(prefix())
    client = redis_client(Waiter.JOB, name="portal:dynamic-blacklist")
    pipe = client.pipeline(transaction=False)
    for key in client.scan_iter(f"{keys.prefix}:dynbl:*"):
        pipe.zremrangebyscore(key, "-inf", to_ms(now))
    pipe.zremrangebyscore(keys.fraud_exempt, "-inf", to_ms(now))
    pipe.execute()
    return marked


# -- the review


class ReviewError(ValueError):
    """An action the entry's state does not allow; the message is shown to the admin."""


def _reviewed(entry, user, now, note):
    entry.reviewed_by = user
    entry.reviewed_at = now
    entry.review_note = (note or "")[:300]


def confirm(entry, user, *, hours=None, permanent=False, note="", now=None):
    """Keep the entry blocking: ``hours`` more from now, or until released (``permanent``)."""
    now = now or timezone.now()
    if entry.status not in BLOCKING:
        raise ReviewError(f"{entry} is {entry.get_status_display().lower()}: only a blocking entry can be confirmed.")
    if not permanent and not hours:
        raise ReviewError("Give the hours to extend by, or make the entry permanent.")
    entry.status = BlacklistStatus.CONFIRMED
    entry.expires_at = None if permanent else now + dt.timedelta(hours=hours)
    _reviewed(entry, user, now, note)
    entry.save()
    return entry


def release(entry, user, *, note="", now=None):
    """Stop blocking the subject in the entry's scope: this entry and any other still blocking it there.

    The admin judged the subject, not one detection, so the call core's set
    loses it at once (on commit) rather than when the last sibling expires.
    """
    now = now or timezone.now()
    if entry.status not in BLOCKING:
        raise ReviewError(f"{entry} is {entry.get_status_display().lower()} already.")
    siblings = DynamicBlacklistEntry.objects.select_for_update().filter(
        **same_subject(entry.subject_kind, entry.number, entry.account_id),
        scope=entry.scope, mapping_gateway_id=entry.mapping_gateway_id, status__in=BLOCKING,
    ).exclude(pk=entry.pk)  # fmt: skip
    for sibling in siblings:
        sibling.status = BlacklistStatus.RELEASED
        _reviewed(sibling, user, now, f"released with entry {entry.pk}" + (f": {note}" if note else ""))
        sibling.save()
    entry.status = BlacklistStatus.RELEASED
    _reviewed(entry, user, now, note)
    entry.save()
    return entry


def release_and_exempt(entry, user, *, days, note="", now=None):
    """Release, and keep every rule from blocking the subject again for ``days``."""
    now = now or timezone.now()
    if not days or days < 1:
        raise ReviewError("Give the days the exemption lasts (at least 1).")
    release(entry, user, note=note, now=now)
    return BlacklistExemption.objects.create(
        subject_kind=entry.subject_kind,
        number=entry.number,
        account_id=entry.account_id,
        scope=entry.scope,
        mapping_gateway_id=entry.mapping_gateway_id,
        until=now + dt.timedelta(days=days),
        entry=entry,
        reason=note or f"released from entry {entry.pk}",
        created_by=user,
        created=now,
    )


ACTIONS = {"confirm": confirm, "release": release, "release_exempt": release_and_exempt}
# The options each action takes, so one form's fields serve all three.
ACTION_OPTIONS = {"confirm": ("hours", "permanent", "note"), "release": ("note",), "release_exempt": ("days", "note")}


def review(entry_ids, action, user, **options):
    """Apply one action to several entries in one transaction; returns (done, skipped with why)."""
    options = {name: value for name, value in options.items() if name in ACTION_OPTIONS[action]}
    done, skipped = [], []
    with transaction.atomic():
        for pk in entry_ids:
            # Read afresh: releasing an earlier entry of the batch may have released this one with it.
            entry = DynamicBlacklistEntry.objects.select_for_update().filter(pk=pk).first()
            if entry is None:
                continue
            if entry.status not in BLOCKING:
                # A sibling released with an earlier entry of this batch, or someone acted first.
                skipped.append((entry, f"{entry.get_status_display().lower()} already"))
                continue
            try:
                with transaction.atomic():
                    ACTIONS[action](entry, user, **options)
            except ReviewError as exc:
                skipped.append((entry, str(exc)))
            else:
                done.append(entry)
    return done, skipped


# -- signals


def _on_save(sender, instance, **kwargs):
    transaction.on_commit(lambda: sync_entry(instance))


def _on_delete(sender, instance, **kwargs):
    transaction.on_commit(lambda: sync_entry(instance, deleted=True))


def _on_exemption(sender, instance, **kwargs):
    transaction.on_commit(lambda: sync_exemption(instance))


def connect():
    post_save.connect(_on_save, sender=DynamicBlacklistEntry, dispatch_uid="dynbl-sync-save")
    post_delete.connect(_on_delete, sender=DynamicBlacklistEntry, dispatch_uid="dynbl-sync-delete")
    post_save.connect(_on_exemption, sender=BlacklistExemption, dispatch_uid="dynbl-exempt-save")
    post_delete.connect(_on_exemption, sender=BlacklistExemption, dispatch_uid="dynbl-exempt-delete")
