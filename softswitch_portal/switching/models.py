"""Switching configuration: gateways, phones, transforms, schedules, number pools (parameters: core.models)."""

import ipaddress

from django.conf import settings
from django.contrib.auth.password_validation import CommonPasswordValidator
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse

from billing.choices import AccountType
from callcore.contract import SIP_REALM, digest_ha1, digest_ha1b
from security.models import IpCountryTable
from softswitch_portal.validators import (
    validate_host,
    validate_ip_list,
    validate_number,
    validate_prefix,
    validate_prefix_list,
    validate_sip_status_list,
)

from .choices import (
    WEEKDAYS,
    AuthMode,
    MediaProxy,
    PoolMode,
    RoutePolicy,
    TestCallStatus,
    TransformTarget,
    Transport,
)

LIMIT_HELP = "0 = no limit."


class NumberTransformRule(models.Model):
    """Rewrites a caller or callee number: match a prefix, strip digits, prepend others.

    A gateway applies its rules for a target in ascending ``priority``; the
    first rule whose prefix and length match is applied and the rest skipped.
    """

    name = models.CharField(max_length=100, unique=True)
    target = models.CharField(max_length=10, choices=TransformTarget.choices, default=TransformTarget.CALLEE)
    priority = models.PositiveIntegerField(default=100)
    match_prefix = models.CharField(max_length=32, blank=True, validators=[validate_prefix])
    min_length = models.PositiveIntegerField(default=0)
    max_length = models.PositiveIntegerField(default=0, help_text="0 = any length.")
    strip_digits = models.PositiveIntegerField(default=0, validators=[MaxValueValidator(32)])
    prepend = models.CharField(max_length=32, blank=True, validators=[validate_prefix])
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["target", "priority", "name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("switching:numbertransformrule", args=[self.pk])

    def clean(self):
        if self.max_length and self.max_length < self.min_length:
            raise ValidationError({"max_length": "Max length must be 0 (any) or at least the min length."})

    def apply(self, number):
        """The rewritten number, or None when this rule does not match."""
        if not number.startswith(self.match_prefix):
            return None
        if len(number) < self.min_length or (self.max_length and len(number) > self.max_length):
            return None
        return self.prepend + number[self.strip_digits :]


class RoutingSchedule(models.Model):
    """A weekly time window in which a routing gateway may be used (switch time zone)."""

    name = models.CharField(max_length=100, unique=True)
    weekdays = ArrayField(
        models.PositiveSmallIntegerField(choices=WEEKDAYS, validators=[MaxValueValidator(6)]),
        default=list,
        help_text="0 = Monday ... 6 = Sunday; empty = every day.",
    )
    start_time = models.TimeField()
    end_time = models.TimeField(help_text="May be earlier than the start: the window then crosses midnight.")
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("switching:routingschedule", args=[self.pk])

    def clean(self):
        if self.start_time is not None and self.start_time == self.end_time:
            raise ValidationError({"end_time": "End time must differ from start time."})


class CallerNumberPool(models.Model):
    """Caller numbers a routing gateway presents instead of the customer's."""

    name = models.CharField(max_length=100, unique=True)
    numbers = ArrayField(models.CharField(max_length=32, validators=[validate_number]))
    mode = models.CharField(max_length=12, choices=PoolMode.choices, default=PoolMode.RANDOM)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("switching:callernumberpool", args=[self.pk])

    def clean(self):
        if not self.numbers:
            raise ValidationError({"numbers": "A pool needs at least one number."})


MEDIA_PROXY_HELP = (
    "Relay the calls' media (RTP) through the switch's media proxy: always (the peers never see each other's "
    "addresses), or only when the caller's SDP names another address than the one its call came from (a NAT). "
    "A call through the proxy on either gateway goes through it."
)


class MappingGateway(models.Model):
    """A customer's ingress trunk: calls come in from its IPs and are billed to its account."""

    name = models.CharField(max_length=100, unique=True)
    account = models.ForeignKey("billing.Account", on_delete=models.PROTECT, related_name="mapping_gateways")
    remote_ips = ArrayField(
        models.CharField(max_length=64),
        validators=[validate_ip_list],
        help_text="Source IPs or CIDR networks calls are accepted from.",
    )
    auth_mode = models.CharField(max_length=10, choices=AuthMode.choices, default=AuthMode.IP)
    remote_port = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    capacity = models.PositiveIntegerField(default=0, help_text=f"Concurrent calls. {LIMIT_HELP}")
    cps_limit = models.PositiveIntegerField(default=0, help_text=f"Call attempts per second. {LIMIT_HELP}")
    caller_transforms = models.ManyToManyField(NumberTransformRule, blank=True, related_name="+")
    callee_transforms = models.ManyToManyField(NumberTransformRule, blank=True, related_name="+")
    caller_list_groups = models.ManyToManyField("security.BlackWhiteListGroup", blank=True, related_name="+")
    callee_list_groups = models.ManyToManyField("security.BlackWhiteListGroup", blank=True, related_name="+")
    prefix_allow = ArrayField(
        models.CharField(max_length=32),
        default=list,
        blank=True,
        validators=[validate_prefix_list],
        help_text="Callee prefixes allowed; empty = all.",
    )
    prefix_forbid = ArrayField(
        models.CharField(max_length=32), default=list, blank=True, validators=[validate_prefix_list]
    )
    conversation_limit = models.PositiveIntegerField(default=0, help_text=f"Max call seconds. {LIMIT_HELP}")
    dynamic_blacklist_standalone = models.BooleanField(
        default=False, help_text="Keep a dynamic blacklist of its own instead of the switch-wide one."
    )
    high_risk_exempt = models.BooleanField(
        "exempt from high-risk rules",
        default=False,
        help_text="Not judged by the anti-fraud rules on high-risk destinations "
        "(they watch every account and gateway unless exempted here).",
    )
    require_caller_number = models.BooleanField(
        default=False,
        help_text="Refuse calls whose caller is not a number (anonymous, withheld, empty): 403, end reason "
        "caller_number_required. Off: they are connected and recorded with the caller as sent.",
    )
    route_policy = models.CharField(
        max_length=12,
        choices=RoutePolicy.choices,
        default=RoutePolicy.PRIORITY,
        help_text="The order vendors are tried in. Priority: lowest priority number first. Least cost: cheapest "
        "vendor rate first. Best ASR: highest answer-seizure ratio over the last SS_ROUTE_ASR_WINDOW_MINUTES first "
        "(a vendor with fewer than SS_ROUTE_ASR_MIN_ATTEMPTS attempts is tried first, to be measured); equal ones "
        "by priority.",
    )
    media_proxy = models.CharField(
        max_length=8, choices=MediaProxy.choices, default=MediaProxy.OFF, help_text=MEDIA_PROXY_HELP
    )
    enabled = models.BooleanField(default=True)
    description = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("switching:mappinggateway", args=[self.pk])

    def clean(self):
        if self.auth_mode == AuthMode.IP_PORT and not self.remote_port:
            raise ValidationError({"remote_port": "Authentication by IP and port needs the port."})
        if not self.remote_ips:
            raise ValidationError({"remote_ips": "At least one source IP is needed."})
        if overlaps := self.overlapping_claims():
            raise ValidationError({"remote_ips": overlaps})

    def _claims(self) -> set:
        """The networks the call core indexes this gateway under (an address is a /32 or /128)."""
        claims = set()
        for value in self.remote_ips or ():
            try:
                claims.add(ipaddress.ip_network(value, strict=False))
            except ValueError:
                continue  # the field's own validator names it
        return claims

    def _shares_claims_with(self, other: "MappingGateway") -> bool:
        """Whether a call from a claimed network could belong to either: the call core picks one silently.

        The call core tries the most specific network first, and at one network an IP+port claim on the call's
        port before an IP claim, then the lowest id. So a network inside another's wider one is a deliberate
        carve-out, and IP+port claims on different ports split an address cleanly (a call from any other port is
        refused). An IP claim beside an IP+port one on the same network is refused all the same: the IP claim
        takes every other port, so the IP+port customer's calls from an unexpected port (TCP's ephemeral ports,
        a NAT) would be billed to the other customer instead of refused.
        """
        both_by_port = self.auth_mode == AuthMode.IP_PORT and other.auth_mode == AuthMode.IP_PORT
        return not both_by_port or self.remote_port == other.remote_port

    def overlapping_claims(self) -> list[str]:
        """Why another mapping gateway's claim on the same networks conflicts with this one's; empty if none.

        Disabled gateways count: the call core ignores them, but enabling one is a single field any path may
        flip, and it must not start sharing addresses with another customer by it.
        """
        claims = self._claims()
        if not claims:
            return []
        problems = []
        others = MappingGateway.objects.exclude(pk=self.pk).only("name", "auth_mode", "remote_port", "remote_ips")
        for other in others.order_by("name"):
            shared = claims & other._claims()
            if not shared or not self._shares_claims_with(other):
                continue
            by_port = f" port {other.remote_port}" if other.auth_mode == AuthMode.IP_PORT else ""
            for network in sorted(shared, key=lambda n: (n.version, n)):
                where = str(network.network_address) if network.num_addresses == 1 else str(network)
                problems.append(
                    f"{where}{by_port} is already claimed by mapping gateway “{other.name}”: "
                    "one source address bills one customer."
                )
        return problems


class RoutingGateway(models.Model):
    """A vendor's egress trunk: calls for its prefixes go out to host:port."""

    name = models.CharField(max_length=100, unique=True)
    host = models.CharField(max_length=253, validators=[validate_host])
    port = models.PositiveIntegerField(default=5060, validators=[MinValueValidator(1), MaxValueValidator(65535)])
    transport = models.CharField(max_length=3, choices=Transport.choices, default=Transport.UDP)
    prefixes = ArrayField(
        models.CharField(max_length=32),
        default=list,
        blank=True,
        validators=[validate_prefix_list],
        help_text="Callee prefixes this vendor serves (VOS prefix); empty = all.",
    )
    tech_prefix = models.CharField(
        max_length=32, blank=True, validators=[validate_prefix], help_text="Prepended to the callee sent out."
    )
    priority = models.PositiveIntegerField(default=100, help_text="Lower is tried first.")
    capacity = models.PositiveIntegerField(default=0, help_text=f"Concurrent calls. {LIMIT_HELP}")
    cps_limit = models.PositiveIntegerField(default=0, help_text=f"Call attempts per second. {LIMIT_HELP}")
    clearing_account = models.ForeignKey(
        "billing.Account", on_delete=models.PROTECT, related_name="routing_gateways", null=True, blank=True
    )
    caller_transforms = models.ManyToManyField(NumberTransformRule, blank=True, related_name="+")
    callee_transforms = models.ManyToManyField(NumberTransformRule, blank=True, related_name="+")
    schedules = models.ManyToManyField(
        RoutingSchedule, blank=True, related_name="routing_gateways", help_text="Empty = always."
    )
    caller_number_pool = models.ForeignKey(
        CallerNumberPool, on_delete=models.SET_NULL, null=True, blank=True, related_name="routing_gateways"
    )
    failover_codes = ArrayField(
        models.PositiveSmallIntegerField(),
        default=list,
        blank=True,
        validators=[validate_sip_status_list],
        help_text="SIP codes that fail over to the next vendor besides 408, 480, 500, 502, 503, 504.",
    )
    conversation_limit = models.PositiveIntegerField(default=0, help_text=f"Max call seconds. {LIMIT_HELP}")
    dynamic_blacklist_standalone = models.BooleanField(default=False)
    media_proxy = models.CharField(
        max_length=8,
        choices=MediaProxy.choices,
        default=MediaProxy.OFF,
        help_text=MEDIA_PROXY_HELP + " A vendor behind NAT shows it only in its answer: set it to always.",
    )
    enabled = models.BooleanField(default=True)
    description = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("switching:routinggateway", args=[self.pk])

    def clean(self):

        if self.clearing_account_id and self.clearing_account.account_type != AccountType.VENDOR:
            raise ValidationError({"clearing_account": "The clearing account must be a vendor account."})


# A phone password a guessing run finds: svcrack tries four-digit numbers, the username and common words first.
PHONE_PASSWORD_MIN_LENGTH = 10


def sip_realm() -> str:
    """The realm phones authenticate in; their hashes are made with it."""
    return getattr(settings, "SIP_REALM", SIP_REALM)


def validate_phone_password(password: str, username: str = "") -> None:
    """Refuse a phone password a guessing run would find: short, digits only, the username, common, repetitive."""
    problems = []
    if len(password) < PHONE_PASSWORD_MIN_LENGTH:
        problems.append(f"Use at least {PHONE_PASSWORD_MIN_LENGTH} characters: phones are the first thing scanners "
                        "guess.")  # fmt: skip
    if password.isdigit():
        problems.append("Use more than digits: a scanner tries every number.")
    if username and username.lower() in password.lower():
        problems.append("Do not use the username in the password: it is the first guess.")
    if len(set(password)) < 5:
        problems.append("Use at least 5 different characters.")
    try:
        CommonPasswordValidator().validate(password)
    except ValidationError:
        problems.append("This password is on the lists of common passwords that guessers try first.")
    if problems:
        raise ValidationError(problems)


class Phone(models.Model):
    """A registered SIP user: authenticates by digest and calls on its account.

    Its password is never stored: only HA1 = MD5(username:realm:password) and
    HA1b = MD5(username@realm:realm:password), what a digest check needs.
    ``password`` is write-only: setting it (a form, the API, ``Phone(password=...)``)
    validates it in ``clean()`` and hashes it on ``save()``, with the username
    being saved; a new username needs the password again, as the hashes include it.
    """

    username = models.CharField(max_length=64, unique=True, validators=[validate_number])
    ha1 = models.CharField(max_length=32, blank=True, editable=False, help_text="MD5(username:realm:password).")
    ha1b = models.CharField(max_length=32, blank=True, editable=False, help_text="MD5(username@realm:realm:password).")
    digest_realm = models.CharField(
        max_length=128, blank=True, editable=False, help_text="The realm the hashes were made in."
    )
    account = models.ForeignKey("billing.Account", on_delete=models.PROTECT, related_name="phones")
    capacity = models.PositiveIntegerField(default=1, help_text=f"Concurrent lines. {LIMIT_HELP}")
    allowed_networks = ArrayField(
        models.CharField(max_length=64),
        default=list,
        blank=True,
        validators=[validate_ip_list],
        help_text="Source networks it may register from; empty = anywhere.",
    )
    allowed_countries = ArrayField(
        models.CharField(max_length=2),
        default=list,
        blank=True,
        help_text="ISO 3166 country codes (geofence); empty = anywhere.",
    )
    enabled = models.BooleanField(default=True)
    # The operators' test-call phone (switching.testcalls.service): its calls may name the one vendor to try.
    test_phone = models.BooleanField(default=False, editable=False)
    description = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["username"]

    def __str__(self):
        return self.username

    def save(self, *args, **kwargs):
        if self.password:
            self._hash(self.password)  # with the username being saved
            self._new_password = ""
        super().save(*args, **kwargs)

    def get_absolute_url(self):
        return reverse("switching:phone", args=[self.pk])

    @property
    def password(self) -> str:
        """Write-only: the password being set on this object, never one read back ("" once saved)."""
        return getattr(self, "_new_password", "") or ""

    @password.setter
    def password(self, raw: str) -> None:
        self._new_password = raw or ""
        if raw and self.username:  # hashed now as well, for bulk_create, which never calls save()
            self._hash(raw)

    def _hash(self, raw: str) -> None:
        realm = sip_realm()
        self.ha1 = digest_ha1(self.username, realm, raw)
        self.ha1b = digest_ha1b(self.username, realm, raw)
        self.digest_realm = realm

    def clean(self):
        if self.password:
            try:
                validate_phone_password(self.password, self.username)
            except ValidationError as exc:
                raise ValidationError({"password": exc.messages}) from None
        elif not self.ha1:
            raise ValidationError({"password": "Set a password."})
        elif self.pk is not None:
            saved = Phone.objects.filter(pk=self.pk).values_list("username", flat=True).first()
            if saved is not None and saved != self.username:
                raise ValidationError({"password": "A new username needs the password again: its hash includes "
                                                   "the username."})  # fmt: skip
        for code in self.allowed_countries or ():
            if len(code) != 2 or not code.isalpha() or not code.isupper():
                raise ValidationError({"allowed_countries": f"{code!r} is not a two-letter upper-case country code."})
        if self.allowed_countries and not _ip_country_table_imported():
            # The call core refuses a phone limited to countries while it has no table to place its source:
            # saved now, the phone could neither register nor call.
            raise ValidationError(
                {
                    "allowed_countries": "No IP-country data has been imported, so no source could be placed in a "
                    "country: import the RIR statistics first (manage.py import_ip_countries FILE ...)."
                }
            )


def _ip_country_table_imported():

    return IpCountryTable.objects.exists()


class TestCall(models.Model):
    """An operator's test call through one routing gateway: a pjsua2 agent dials ``number`` from the test-call
    phone, plays a tone and records what comes back (switching.testcalls). Figures are the agent's: ``tx`` what
    it sent towards the vendor, ``rx`` what it received; times in ms."""

    status = models.CharField(max_length=10, choices=TestCallStatus.choices, default=TestCallStatus.QUEUED)
    gateway = models.ForeignKey(RoutingGateway, on_delete=models.SET_NULL, null=True, related_name="test_calls")
    gateway_name = models.CharField(max_length=100, editable=False)  # kept should the gateway be deleted
    number = models.CharField(max_length=64, validators=[validate_number])
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    sip_status = models.PositiveIntegerField(null=True, blank=True)
    sip_reason = models.CharField(max_length=100, blank=True)
    answered = models.BooleanField(default=False)
    pdd_ms = models.PositiveIntegerField(null=True, blank=True)
    ringing_ms = models.PositiveIntegerField(null=True, blank=True)
    talk_ms = models.PositiveIntegerField(null=True, blank=True)
    rtp_tx_packets = models.PositiveIntegerField(null=True, blank=True)
    rtp_rx_packets = models.PositiveIntegerField(null=True, blank=True)
    rtp_tx_loss = models.IntegerField(null=True, blank=True)
    rtp_rx_loss = models.IntegerField(null=True, blank=True)
    jitter_tx_ms = models.FloatField(null=True, blank=True)
    jitter_rx_ms = models.FloatField(null=True, blank=True)
    audio_heard = models.BooleanField(null=True)
    audio_verdict = models.CharField(max_length=20, blank=True)
    recording = models.BinaryField(null=True, editable=False)  # a WAV: a few seconds of 8 kHz audio
    waveform_svg = models.TextField(blank=True, editable=False)
    sip_trace = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self):
        return f"Test call {self.pk} to {self.number} via {self.gateway_name}"

    def get_absolute_url(self):
        return reverse("switching:testcall", args=[self.pk])

    @property
    def done(self) -> bool:
        return self.status in (TestCallStatus.FINISHED, TestCallStatus.FAILED)
