"""Keeps the call core's copy of the dynamic blacklist in Redis in step with the database.

The call core checks caller and callee against sorted sets (one switch-wide,
one per standalone gateway; score = expiry in epoch ms) inside its single
setup round trip, so an entry takes effect on the next call without a
snapshot publish. An active or confirmed entry is in its set until it
expires; a released or whitelisted one is removed.
"""

import logging

import redis
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from callcore.contract import NEVER_EXPIRES_MS, Keys
from softswitch_portal.core.redis import Waiter, prefix, redis_client

from .choices import BlacklistScope, BlacklistStatus
from .models import DynamicBlacklistEntry

logger = logging.getLogger(__name__)

BLOCKING = (BlacklistStatus.ACTIVE, BlacklistStatus.CONFIRMED)


def _key(entry):
    gateway = entry.mapping_gateway_id if entry.scope == BlacklistScope.GATEWAY else None
    return Keys(prefix()).dynamic_blacklist(gateway)


def _expiry_ms(entry):
    return NEVER_EXPIRES_MS if entry.expires_at is None else int(entry.expires_at.timestamp() * 1000)


def blocks(entry, now=None):
    now = now or timezone.now()
    return entry.status in BLOCKING and (entry.expires_at is None or entry.expires_at > now)


def sync_entry(entry, deleted=False):
    """Write one entry's state to Redis; errors are logged (resync_all repairs them)."""
    try:
        # After an operator's edit, inside the web request.
        client = redis_client(Waiter.PAGE, name="portal:dynamic-blacklist")
        if blocks(entry) and not deleted:
            client.zadd(_key(entry), {entry.number: _expiry_ms(entry)})
        else:
            # Another active entry may block the same number in the same scope.
            others = DynamicBlacklistEntry.objects.filter(
                number=entry.number, scope=entry.scope, mapping_gateway_id=entry.mapping_gateway_id,
                status__in=BLOCKING,
            ).exclude(pk=entry.pk)  # fmt: skip
            still = [e for e in others if blocks(e)]
            if still:
                client.zadd(_key(entry), {entry.number: max(_expiry_ms(e) for e in still)})
            else:
                client.zrem(_key(entry), entry.number)
    except redis.RedisError as exc:
        logger.error("dynamic blacklist entry %s not synced to Redis: %s", entry.pk, exc)


def resync_all():
    """Rebuild every set from the database (beat job; also after Redis lost its data)."""
    keys = Keys(prefix())
    wanted = {}
    for entry in DynamicBlacklistEntry.objects.filter(status__in=BLOCKING):
        if blocks(entry):
            members = wanted.setdefault(_key(entry), {})
            members[entry.number] = max(members.get(entry.number, 0), _expiry_ms(entry))
    client = redis_client(Waiter.JOB, name="portal:dynamic-blacklist")
    pipe = client.pipeline(transaction=True)
    for key in client.scan_iter(f"{keys.prefix}:dynbl:*"):
        pipe.delete(key)
    for key, members in wanted.items():
        pipe.zadd(key, members)
    pipe.execute()
    return sum(len(m) for m in wanted.values())


def _on_save(sender, instance, **kwargs):
    transaction.on_commit(lambda: sync_entry(instance))


def _on_delete(sender, instance, **kwargs):
    transaction.on_commit(lambda: sync_entry(instance, deleted=True))


def connect():
    post_save.connect(_on_save, sender=DynamicBlacklistEntry, dispatch_uid="dynbl-sync-save")
    post_delete.connect(_on_delete, sender=DynamicBlacklistEntry, dispatch_uid="dynbl-sync-delete")
