"""Security models: black/white list groups, the dynamic blacklist, the IP-country table (geofences) and alarms."""

import ipaddress

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from callcore.contract import account_high_risk_subject, account_subject
from softswitch_portal.validators import validate_number, validate_prefix

# The API clients and their request log live in a module of their own; imported so the app registers them.
from .api_clients import APIClient, APIRequestLog  # noqa: F401

# The call core's source-IP bans, as recorded from Redis (security.bans); imported so the app registers it.
from .bans import Ban  # noqa: F401
from .choices import (
    AlarmKind,
    AlarmSeverity,
    AlarmSubject,
    BlacklistScope,
    BlacklistStatus,
    BlacklistSubject,
    FraudRuleChoice,
    FraudSeverity,
    ListKind,
    MatchKind,
)


class BlackWhiteListGroup(models.Model):
    """A named set of numbers or prefixes, attached to gateways as a caller or callee list.

    A black list refuses calls that match it; a white list refuses calls that do not.
    """

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=8, choices=ListKind.choices)
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
    """A number or an account the switch blocked by itself after it crossed a fraud threshold.

    Whoever detected the breach (the call core at set-up, or the CDR ingest)
    already wrote it to Redis, so calls are refused at once; the worker
    records it here from the fraud event stream (``stream_id``, so an event
    read twice is one row), awaiting an admin's review: confirm (extend or
    make permanent), release, or release and exempt the subject for a while
    (``BlacklistExemption``). Operators may also enter numbers by hand.
    """

    subject_kind = models.CharField(
        "Blocks", max_length=20, choices=BlacklistSubject.choices, default=BlacklistSubject.NUMBER
    )
    number = models.CharField(
        max_length=32, blank=True, validators=[validate_number], help_text="The number blocked as caller or callee."
    )
    account = models.ForeignKey(
        "billing.Account", on_delete=models.CASCADE, null=True, blank=True, related_name="+",
        help_text="The account blocked (every call, or its calls to high-risk destinations).",
    )  # fmt: skip
    scope = models.CharField(max_length=8, choices=BlacklistScope.choices, default=BlacklistScope.CENTRAL)
    mapping_gateway = models.ForeignKey(
        "switching.MappingGateway", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    rule = models.CharField(max_length=24, choices=FraudRuleChoice.choices, blank=True, help_text="Empty: by hand.")
    severity = models.CharField(max_length=8, choices=FraudSeverity.choices, default=FraudSeverity.CRITICAL)
    reason = models.CharField(max_length=200, blank=True)
    figures = models.JSONField(default=dict, blank=True, help_text="The figures seen and the thresholds tripped.")
    evidence = models.JSONField(
        default=list, blank=True, help_text="Call ids of the calls counted (their CDRs once ingested)."
    )
    node = models.CharField(max_length=64, blank=True, help_text="Who detected it: a call-core node or the ingest.")
    stream_id = models.CharField(
        max_length=32, unique=True, null=True, blank=True, editable=False,
        help_text="The fraud event's stream id: an event read twice is recorded once.",
    )  # fmt: skip
    status = models.CharField(max_length=16, choices=BlacklistStatus.choices, default=BlacklistStatus.AWAITING_REVIEW)
    created = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty = until released.")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created"]
        verbose_name = "dynamic blacklist entry"
        verbose_name_plural = "dynamic blacklist entries"
        indexes = [
            models.Index(fields=["number", "status"], name="dynbl_number_status"),
            models.Index(fields=["status", "-created"], name="dynbl_status_created"),
        ]
        permissions = [("review_dynamicblacklistentry", "Can review dynamic blacklist entries")]

    def __str__(self):
        if self.subject_kind == BlacklistSubject.NUMBER:
            return self.number
        label = f"account {self.account}" if self.account_id else "account ?"
        return f"{label}, high-risk calls" if self.subject_kind == BlacklistSubject.ACCOUNT_HIGH_RISK else label

    def get_absolute_url(self):
        return reverse("security:dynamicblacklistentry", args=[self.pk])

    @property
    def member(self):
        """The subject as the call core's sorted sets hold it (callcore.contract.fraud)."""
        return subject_member(self.subject_kind, self.number, self.account_id)

    @property
    def awaiting_review(self):
        return self.status == BlacklistStatus.AWAITING_REVIEW

    def clean(self):
        if self.scope == BlacklistScope.GATEWAY and not self.mapping_gateway_id:
            raise ValidationError({"mapping_gateway": "A standalone entry belongs to one mapping gateway."})
        if self.scope == BlacklistScope.CENTRAL and self.mapping_gateway_id:
            raise ValidationError({"mapping_gateway": "A central entry applies to every gateway: leave this empty."})
        check_subject(self.subject_kind, self.number, self.account_id)


def subject_member(kind, number, account_id):
    if kind == BlacklistSubject.NUMBER:
        return number
    if kind == BlacklistSubject.ACCOUNT:
        return account_subject(account_id)
    return account_high_risk_subject(account_id)


def check_subject(kind, number, account_id):
    """A number subject names a number and no account; an account subject the other way round."""
    if kind == BlacklistSubject.NUMBER:
        if not number:
            raise ValidationError({"number": "Enter the number to block."})
        if account_id:
            raise ValidationError({"account": "A number entry blocks the number on every account: leave this empty."})
    else:
        if not account_id:
            raise ValidationError({"account": "Choose the account to block."})
        if number:
            raise ValidationError({"number": "An account entry blocks the account's calls: leave the number empty."})


class BlacklistExemption(models.Model):
    """A subject no anti-fraud rule may add to the dynamic blacklist until ``until``.

    Made when an admin releases an entry and exempts it for N days; mirrored
    into ``Keys.fraud_exempt`` (score = ``until``), which the detectors check
    before they block. Redis holds one set for every scope, so an exemption
    keeps the subject off every list; ``scope`` and ``mapping_gateway`` say
    where the released entry was.
    """

    subject_kind = models.CharField(
        "Exempts", max_length=20, choices=BlacklistSubject.choices, default=BlacklistSubject.NUMBER
    )
    number = models.CharField(max_length=32, blank=True, validators=[validate_number])
    account = models.ForeignKey("billing.Account", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    scope = models.CharField(max_length=8, choices=BlacklistScope.choices, default=BlacklistScope.CENTRAL)
    mapping_gateway = models.ForeignKey(
        "switching.MappingGateway", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    until = models.DateTimeField(help_text="No rule blocks the subject before this.")
    entry = models.ForeignKey(
        DynamicBlacklistEntry, on_delete=models.SET_NULL, null=True, blank=True, related_name="exemptions",
        help_text="The entry whose release made it.",
    )  # fmt: skip
    reason = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-until"]
        verbose_name = "blacklist exemption"
        indexes = [models.Index(fields=["until"], name="dynbl_exempt_until")]

    def __str__(self):
        subject = self.number if self.subject_kind == BlacklistSubject.NUMBER else f"account {self.account}"
        return f"{subject} until {timezone.localtime(self.until):%Y-%m-%d %H:%M}"

    def get_absolute_url(self):
        return reverse("security:blacklistexemption", args=[self.pk])

    @property
    def member(self):
        return subject_member(self.subject_kind, self.number, self.account_id)

    def clean(self):
        check_subject(self.subject_kind, self.number, self.account_id)


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


IPV4_LAST = (1 << 32) - 1


class IpCountryRange(models.Model):
    """An IPv4 range an operator places in a country for the phones' geofence (VOS's IP limits).

    Laid over the imported table when it is published (security.ip_countries):
    where they overlap, the operator's range wins, so a carrier's block the
    registries place elsewhere can be corrected here. Ranges do not overlap
    one another, so which one wins is never in question.
    """

    start_ip = models.GenericIPAddressField(
        "start IP", protocol="IPv4", unique=True, help_text="The first address of the range."
    )
    count = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="How many addresses, from the start IP on."
    )
    country = models.CharField(max_length=2, help_text="Two-letter ISO 3166 code of the country the range is in.")
    memo = models.CharField(max_length=255, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["start_ip"]
        verbose_name = "IP-country range"

    def __str__(self):
        return f"{self.start_ip} +{self.count} {self.country}"

    def get_absolute_url(self):
        return reverse("security:ipcountryrange", args=[self.pk])

    @property
    def first(self) -> int:
        return int(ipaddress.IPv4Address(self.start_ip))

    @property
    def last(self) -> int:
        return self.first + self.count - 1

    @property
    def end_ip(self) -> str:
        return str(ipaddress.IPv4Address(min(self.last, IPV4_LAST)))

    def clean(self):
        self.country = (self.country or "").strip().upper()
        if len(self.country) != 2 or not self.country.isascii() or not self.country.isalpha():
            raise ValidationError({"country": f"{self.country!r} is not a two-letter country code."})
        if not self.start_ip or not self.count:
            return  # the fields' own validation names what is missing or wrong
        if self.last > IPV4_LAST:
            raise ValidationError({"count": f"{self.count} addresses from {self.start_ip} run past 255.255.255.255."})
        for other in IpCountryRange.objects.exclude(pk=self.pk).only("start_ip", "count", "country"):
            if other.first <= self.last and self.first <= other.last:
                raise ValidationError(
                    {"start_ip": f"Overlaps {other.start_ip}-{other.end_ip} ({other.country}): change or delete it."}
                )


class Alarm(models.Model):
    """A condition an operator should know about, raised by a detector or a fraud rule (security.alarms).

    One open alarm per condition: a condition seen again while its alarm is
    open adds to ``count`` and moves ``last_seen`` (``dedupe_key`` is unique
    among open alarms), so a flood of repeats is one row and one e-mail per
    throttle window. A detector closes its alarm (``resolved_at``) when the
    condition clears; a later occurrence opens a new one.
    """

    kind = models.CharField(max_length=24, choices=AlarmKind.choices)
    severity = models.CharField(max_length=8, choices=AlarmSeverity.choices)
    rule = models.CharField(
        max_length=32, choices=FraudRuleChoice.choices, blank=True, help_text="The fraud rule, for fraud alarms."
    )
    subject_kind = models.CharField(max_length=20, choices=AlarmSubject.choices)
    subject = models.CharField(max_length=200, help_text="The IP, number, node or id the alarm is about.")
    account = models.ForeignKey(
        "billing.Account", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    mapping_gateway = models.ForeignKey(
        "switching.MappingGateway", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    routing_gateway = models.ForeignKey(
        "switching.RoutingGateway", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    figures = models.JSONField(default=dict, blank=True, help_text="What was measured, and the thresholds.")
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    count = models.PositiveIntegerField(default=1, help_text="Times the condition was seen while open.")
    dedupe_key = models.CharField("dedupe key", max_length=300, editable=False)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(
        "cleared at", null=True, blank=True, help_text="When the condition cleared; empty = open."
    )
    notified_at = models.DateTimeField("last e-mailed", null=True, blank=True, editable=False)
    notified_count = models.PositiveIntegerField(
        "seen at the last e-mail", default=0, editable=False, help_text="The count the last e-mail reported."
    )
    # The fraud event stream id last counted (zero-padded to sort as text): a redelivered event counts once.
    last_event_id = models.CharField("last fraud event", max_length=48, blank=True, editable=False)

    class Meta:
        ordering = ["-last_seen"]
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key"], condition=models.Q(resolved_at__isnull=True), name="alarm_one_open_per_key"
            ),
        ]
        indexes = [
            models.Index(fields=["-last_seen"], name="alarm_last_seen"),
            models.Index(fields=["kind", "-last_seen"], name="alarm_kind_last_seen"),
            models.Index(fields=["kind"], condition=models.Q(resolved_at__isnull=True), name="alarm_open_kind"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.subject_label}"

    def get_absolute_url(self):
        return reverse("security:alarm", args=[self.pk])

    @property
    def is_open(self):
        return self.resolved_at is None

    @property
    def subject_label(self):
        """The subject as an operator names it: an account's or gateway's name, else the number, IP or node."""
        if self.subject_kind in (AlarmSubject.ACCOUNT, AlarmSubject.ACCOUNT_HIGH_RISK) and self.account is not None:
            label = str(self.account)
        elif self.subject_kind == AlarmSubject.MAPPING_GATEWAY and self.mapping_gateway is not None:
            label = str(self.mapping_gateway)
        elif self.subject_kind == AlarmSubject.ROUTING_GATEWAY and self.routing_gateway is not None:
            label = str(self.routing_gateway)
        else:
            label = self.subject
        if self.subject_kind == AlarmSubject.ACCOUNT_HIGH_RISK:
            label = f"{label} (high-risk calls)"
        return label

    @property
    def subject_link(self):
        """The page of what the alarm is about, where the portal has one."""
        match self.subject_kind:
            case AlarmSubject.ACCOUNT | AlarmSubject.ACCOUNT_HIGH_RISK:
                target = self.account
            case AlarmSubject.MAPPING_GATEWAY:
                target = self.mapping_gateway
            case AlarmSubject.ROUTING_GATEWAY:
                target = self.routing_gateway
            case _:
                target = None
        return target.get_absolute_url() if target is not None else None
