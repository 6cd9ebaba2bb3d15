"""Security models: black/white list groups, the dynamic blacklist and the IP-country table (geofences)."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils import timezone

from softswitch_portal.validators import validate_number, validate_prefix

# The API clients and their request log live in a module of their own; imported so the app registers them.
from .api_clients import APIClient, APIRequestLog  # noqa: F401
from .choices import BlacklistScope, BlacklistStatus, ListKind, MatchKind


class BlackWhiteListGroup(models.Model):
    """A named set of numbers or prefixes, attached to gateways as a caller or callee list.

    A black list refuses calls that match it; a white list refuses calls that do not.
    """

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=5, choices=ListKind.choices)
    description = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "black/white list group"

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("security:blackwhitelistgroup", args=[self.pk])


class ListEntry(models.Model):
    """One number (or prefix) in a black/white list group."""

    group = models.ForeignKey(BlackWhiteListGroup, on_delete=models.CASCADE, related_name="entries")
    number = models.CharField(max_length=32)
    match = models.CharField(max_length=6, choices=MatchKind.choices, default=MatchKind.EXACT)
    note = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["group", "number"]
        verbose_name = "list entry"
        verbose_name_plural = "list entries"
        constraints = [
            models.UniqueConstraint(fields=["group", "number", "match"], name="listentry_unique"),
        ]

    def __str__(self):
        return f"{self.number} ({self.get_match_display()})"

    def get_absolute_url(self):
        return reverse("security:listentry", args=[self.pk])

    def clean(self):
        try:
            if self.match == MatchKind.PREFIX:
                validate_prefix(self.number)
                if not self.number:
                    raise ValidationError("An empty prefix would match every number.")
            else:
                validate_number(self.number)
        except ValidationError as exc:
            raise ValidationError({"number": exc.messages}) from None


class DynamicBlacklistEntry(models.Model):
    """A number the switch blocked by itself after it crossed a fraud threshold.

    Filled by the worker's evaluation job; an admin reviews each one and
    confirms, releases or whitelists it with the evidence CDRs beside it.
    """

    number = models.CharField(max_length=32, validators=[validate_number])
    scope = models.CharField(max_length=8, choices=BlacklistScope.choices, default=BlacklistScope.CENTRAL)
    mapping_gateway = models.ForeignKey(
        "switching.MappingGateway", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=200)
    thresholds = models.JSONField(default=dict, blank=True, help_text="The thresholds tripped and the values seen.")
    evidence = models.JSONField(default=list, blank=True, help_text="call_uuids of the CDRs that tripped it.")
    status = models.CharField(max_length=12, choices=BlacklistStatus.choices, default=BlacklistStatus.ACTIVE)
    created = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty = until released.")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        verbose_name = "dynamic blacklist entry"
        verbose_name_plural = "dynamic blacklist entries"
        indexes = [models.Index(fields=["number", "status"], name="dynbl_number_status")]

    def __str__(self):
        return self.number

    def get_absolute_url(self):
        return reverse("security:dynamicblacklistentry", args=[self.pk])

    def clean(self):
        if self.scope == BlacklistScope.GATEWAY and not self.mapping_gateway_id:
            raise ValidationError({"mapping_gateway": "A standalone entry belongs to one mapping gateway."})
        if self.scope == BlacklistScope.CENTRAL and self.mapping_gateway_id:
            raise ValidationError({"mapping_gateway": "A central entry applies to every gateway: leave this empty."})


class IpCountryTable(models.Model):
    """The IP-to-country table behind the phones' allowed countries (geofence), as last imported.

    One row: ``manage.py import_ip_countries`` replaces it whole
    (security.ip_countries). ``blob`` is what the call cores load
    (callcore.contract.encode_ip_countries); it is kept here, not only in
    Redis, so the periodic snapshot republish refills a Redis that lost it.
    """

    blob = models.BinaryField(editable=False)
    version = models.CharField(max_length=16, help_text="Digest of the blob: the call cores reload when it changes.")
    ipv4_ranges = models.PositiveIntegerField("IPv4 ranges")
    ipv6_ranges = models.PositiveIntegerField("IPv6 ranges")
    countries = models.PositiveIntegerField()
    sources = ArrayField(models.CharField(max_length=500), help_text="The files or URLs imported, in order.")
    imported_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-imported_at"]
        verbose_name = "IP-country table"

    def __str__(self):
        return f"{self.ipv4_ranges + self.ipv6_ranges} ranges imported {self.imported_at:%Y-%m-%d %H:%M}"
