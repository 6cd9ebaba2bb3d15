"""Source-IP bans as the portal sees them: the call core bans in Redis (callcore.bans), the portal keeps the history.

Redis holds the live bans with their TTL, which every call-core node applies;
``record()`` (a beat job, and each visit of the list page) copies them into
``Ban`` rows, one per ban, kept after the ban lapses. ``release()`` removes a
ban from Redis and moves ``Keys.bans_version``: every node drops it from its
cache within a second, and the firewall export from its set on its next run.
"""

import datetime as dt
import ipaddress

from django.conf import settings
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone

from callcore.contract import BanCause, BanRecord, Keys
from softswitch_portal.core.redis import Waiter, prefix, redis_client

RELEASE_PERMISSION = "security.release_ban"


class BanState(models.TextChoices):
    ACTIVE = "active", "Active"
    RELEASED = "released", "Released"
    EXPIRED = "expired", "Expired"


class Ban(models.Model):
    """One ban of a source IP by the call core: why, how often it offended, when, by which node, until when.

    A source banned again (a repeat offender, banned twice as long) is a new row:
    ``offences`` counts its bans within a day.
    """

    ip = models.GenericIPAddressField(verbose_name="IP")
    cause = models.CharField(max_length=24, choices=[(c.value, c.label) for c in BanCause])
    subject = models.CharField(
        max_length=64, blank=True, verbose_name="username", help_text="The username named, for digest guessing."
    )
    count = models.PositiveIntegerField(
        verbose_name="requests", help_text="Offending requests counted: those that tripped it and any after."
    )
    offences = models.PositiveIntegerField(
        default=1, verbose_name="bans today", help_text="Bans of this source within a day, this one included."
    )
    node = models.CharField(max_length=64, help_text="The call-core node that banned it.")
    first_seen = models.DateTimeField(help_text="The first offending request counted.")
    last_seen = models.DateTimeField()
    expires_at = models.DateTimeField()
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-last_seen"]
        constraints = [models.UniqueConstraint(fields=["ip", "first_seen"], name="ban_once_per_offence")]
        permissions = [("release_ban", "Can release a source IP ban")]

    def __str__(self):
        return f"{self.ip}: {self.get_cause_display()}"

    def get_absolute_url(self):
        return reverse("security:ban", args=[self.pk])

    @property
    def state(self) -> str:
        if self.released_at is not None:
            return BanState.RELEASED
        return BanState.ACTIVE if self.expires_at > timezone.now() else BanState.EXPIRED

    @property
    def active(self) -> bool:
        return self.state == BanState.ACTIVE


def _when(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def live_bans(client=None) -> list[BanRecord]:
    """The bans Redis holds now (lapsed ones are gone with their keys)."""
    client = client or redis_client(Waiter.PAGE)
    keys = Keys(prefix())
    now_ms = int(timezone.now().timestamp() * 1000)
    ips = [ip.decode() if isinstance(ip, bytes) else ip for ip in client.zrangebyscore(keys.bans, now_ms, "+inf")]
    pipe = client.pipeline(transaction=False)
    for ip in ips:
        pipe.hgetall(keys.ban(ip))
    records = []
    for ip, fields in zip(ips, pipe.execute(), strict=True):
        if fields:
            try:
                records.append(BanRecord.from_hash(ip, fields))
            except ValueError:
                continue  # not a ban this portal can read: left to lapse
    return records


def record(client=None) -> int:
    """Copy the live bans into ``Ban`` rows (new ones added, known ones updated); returns how many it saw."""
    records = live_bans(client)
    for ban in records:
        Ban.objects.update_or_create(
            ip=ban.ip,
            first_seen=_when(ban.first_ms),
            defaults={
                "cause": ban.cause,
                "subject": ban.subject,
                "count": ban.count,
                "offences": ban.offences,
                "node": ban.node,
                "last_seen": _when(ban.last_ms),
                "expires_at": _when(ban.expires_ms),
            },
        )
    return len(records)


def release(ban: Ban, user, client=None) -> bool:
    """End a ban now: out of Redis, so every node drops it within a second. False if it had already ended."""
    if not ban.active:
        return False
    client = client or redis_client(Waiter.PAGE)
    keys = Keys(prefix())
    ip = str(ipaddress.ip_address(ban.ip))
    with transaction.atomic():
        pipe = client.pipeline(transaction=True)
        pipe.delete(keys.ban(ip))
        pipe.zrem(keys.bans, ip)
        pipe.incr(keys.bans_version)
        pipe.execute()
        ban.released_at = timezone.now()
        ban.released_by = user
        ban.save(update_fields=["released_at", "released_by"])
    return True
