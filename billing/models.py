"""Billing models: accounts and their payments, rate tables, and the CDR table."""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Now
from django.urls import reverse

from callcore.contract import MONEY_PLACES
from softswitch_portal.validators import validate_prefix

from .choices import (
    BILLING_MODE_CHOICES,
    END_DIRECTION_CHOICES,
    END_REASON_CHOICES,
    AccountType,
    PaymentKind,
)

MONEY = {"max_digits": 18, "decimal_places": MONEY_PLACES}


class Account(models.Model):
    """A money account: a customer who is charged, or a vendor clearing account that accrues cost.

    The balance is never edited directly: it moves only through payments and
    rating, so every cent has a record of who moved it and when.
    """

    name = models.CharField(max_length=100, unique=True)
    account_type = models.CharField(max_length=10, choices=AccountType.choices, default=AccountType.CUSTOMER)
    balance = models.DecimalField(**MONEY, default=Decimal("0"), editable=False)
    credit_limit = models.DecimalField(
        **MONEY,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="How far below zero the balance may go (VOS limitMoney).",
    )
    rate_table = models.ForeignKey(
        "billing.RateTable", on_delete=models.PROTECT, null=True, blank=True, related_name="accounts"
    )
    locked = models.BooleanField(default=False, help_text="A locked account's calls are refused.")
    anti_overdraft = models.BooleanField(
        default=True, help_text="Limit each call to what balance plus credit can pay for."
    )
    capacity = models.PositiveIntegerField(default=0, help_text="Concurrent calls across all gateways (0 = no limit).")
    high_risk_exempt = models.BooleanField(
        "exempt from high-risk rules",
        default=False,
        help_text="Not judged by the anti-fraud rules on high-risk destinations "
        "(they watch every account and gateway unless exempted here).",
    )
    alarm_email = models.EmailField(blank=True)
    low_balance_threshold = models.DecimalField(
        **MONEY,
        null=True,
        blank=True,
        help_text="Alarm when the balance falls below this; empty uses SS_CLIENT_LOW_BALANCE_ALARM.",
    )
    description = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        # An edit form holds the balance it read; writing it back would undo any
        # payment or CDR debit committed since. Only billing.services moves it.
        if self.pk is not None and not self._state.adding and "update_fields" not in kwargs:
            kwargs["update_fields"] = [
                f.name for f in self._meta.concrete_fields if not f.primary_key and f.name != "balance"
            ]
        super().save(*args, **kwargs)

    def get_absolute_url(self):
        return reverse("billing:account", args=[self.pk])

    def clean(self):
        if self.account_type == AccountType.VENDOR and self.credit_limit:
            # A vendor clearing account accrues cost; it never pays for calls.
            raise ValidationError({"credit_limit": "A vendor clearing account has no credit limit."})

    @property
    def available(self):
        return self.balance + self.credit_limit


class Payment(models.Model):
    """A recharge or deduction: the only way an operator moves a balance."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="payments")
    kind = models.CharField(max_length=10, choices=PaymentKind.choices)
    amount = models.DecimalField(**MONEY, validators=[MinValueValidator(Decimal("0.0001"))])
    balance_after = models.DecimalField(**MONEY, editable=False)
    memo = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, editable=False
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self):
        return f"{self.get_kind_display()} {self.amount} on {self.account}"

    def get_absolute_url(self):
        return reverse("billing:payment", args=[self.pk])

    def clean(self):
        if self.amount is not None and self.amount <= 0:
            raise ValidationError({"amount": "The amount must be positive; choose Deduct to take money off."})

    @property
    def signed_amount(self):
        return self.amount if self.kind == PaymentKind.RECHARGE else -self.amount


class RateTable(models.Model):
    """A price list. Customers are charged against theirs; vendor cost is rated against the vendor's."""

    name = models.CharField(max_length=100, unique=True)
    currency = models.CharField(max_length=3, default="USD")
    description = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("billing:ratetable", args=[self.pk])


class Rate(models.Model):
    """The price of calls to one prefix; the longest matching prefix valid at call time wins."""

    rate_table = models.ForeignKey(RateTable, on_delete=models.CASCADE, related_name="rates")
    prefix = models.CharField(max_length=32, validators=[validate_prefix])
    area = models.CharField(max_length=100, blank=True)
    price_per_minute = models.DecimalField(**MONEY, validators=[MinValueValidator(Decimal("0"))])
    first_period = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(1)], help_text="Seconds billed first (60/60, 30/6, 6/6, 1/1)."
    )
    next_period = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(1)], help_text="Seconds per increment after the first period."
    )
    connect_fee = models.DecimalField(**MONEY, default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))])
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_to = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["rate_table", "prefix", "valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["rate_table", "prefix", "valid_from"],
                name="rate_unique_prefix_validity",
                nulls_distinct=False,
            ),
            models.CheckConstraint(condition=models.Q(first_period__gte=1), name="rate_first_period_positive"),
            models.CheckConstraint(condition=models.Q(next_period__gte=1), name="rate_next_period_positive"),
            models.CheckConstraint(condition=models.Q(price_per_minute__gte=0), name="rate_price_not_negative"),
        ]

    def __str__(self):
        return f"{self.rate_table} {self.prefix}"

    def get_absolute_url(self):
        return reverse("billing:rate", args=[self.pk])

    def clean(self):
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ValidationError({"valid_to": "Valid to must be after valid from."})


# The columns billing.reports sums: carried by the CDR indexes by account and gateway.
CDR_FIGURES = ["hold_time_ms", "fee_time", "fee", "vendor_cost"]


class CDR(models.Model):
    """One record per call attempt, in VOS3000's shape so operators recognise it.

    The table is range-partitioned by day on ``start_time`` (migration 0002
    creates it by hand: Django cannot declare partitioning), so its real
    primary key is (id, start_time) and its unique key (call_uuid,
    start_time). Gateways and accounts are referenced without database
    constraints and their names are copied in: a CDR outlives the
    configuration it was made under.
    """

    call_uuid = models.CharField(max_length=64)
    start_time = models.DateTimeField()
    answer_time = models.DateTimeField(null=True, blank=True)
    stop_time = models.DateTimeField(null=True, blank=True)
    hold_time_ms = models.BigIntegerField(default=0)
    fee_time = models.IntegerField(default=0, help_text="Billed seconds.")
    pdd_ms = models.IntegerField(null=True, blank=True, help_text="Post-dial delay: INVITE to first ringing.")

    caller_number = models.CharField(max_length=64, blank=True)
    callee_number = models.CharField(max_length=64, blank=True)
    callee_number_routed = models.CharField(
        max_length=64,
        blank=True,
        help_text="Callee after the mapping gateway's transforms: routed on, and rated unless the sent one is.",
    )
    caller_number_out = models.CharField(max_length=64, blank=True, help_text="Caller as sent to the vendor.")
    callee_number_out = models.CharField(max_length=64, blank=True, help_text="Callee as sent to the vendor.")
    caller_ip = models.GenericIPAddressField(null=True, blank=True)
    caller_port = models.IntegerField(null=True, blank=True)
    caller_user_agent = models.CharField(max_length=200, blank=True)
    vendor_ip = models.GenericIPAddressField(null=True, blank=True)

    account = models.ForeignKey(
        Account,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        blank=True,
        related_name="+",
    )
    account_name = models.CharField(max_length=100, blank=True)
    vendor_account = models.ForeignKey(
        Account,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        blank=True,
        related_name="+",
    )
    mapping_gateway = models.ForeignKey(
        "switching.MappingGateway",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        blank=True,
        related_name="+",
    )
    mapping_gateway_name = models.CharField(max_length=100, blank=True)
    routing_gateway = models.ForeignKey(
        "switching.RoutingGateway",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        blank=True,
        related_name="+",
    )
    routing_gateway_name = models.CharField(max_length=100, blank=True)
    phone = models.ForeignKey(
        "switching.Phone",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        blank=True,
        related_name="+",
    )

    fee = models.DecimalField(**MONEY, default=Decimal("0"))
    vendor_cost = models.DecimalField(
        **MONEY,
        default=Decimal("0"),
        help_text="What the vendor's clearing account is charged. VOS's CDR has no such field: its agentFee is what "
        "a reseller (agent) account is charged.",
    )
    rate_prefix = models.CharField(max_length=32, blank=True)
    rate_area = models.CharField(max_length=100, blank=True)
    vendor_rate_prefix = models.CharField(max_length=32, blank=True)
    vendor_rate_area = models.CharField(max_length=100, blank=True)

    caller_call_id = models.CharField(max_length=200, blank=True)
    callee_call_id = models.CharField(max_length=200, blank=True)
    end_direction = models.SmallIntegerField(choices=END_DIRECTION_CHOICES, null=True, blank=True)
    end_reason = models.CharField(max_length=40, choices=END_REASON_CHOICES, blank=True)
    sip_status = models.SmallIntegerField(null=True, blank=True)
    billing_mode = models.SmallIntegerField(choices=BILLING_MODE_CHOICES)
    vendors_tried = models.JSONField(default=list, blank=True, help_text="[{gateway, ip, status}] in order.")
    node = models.CharField(max_length=64, blank=True)
    snapshot_version = models.BigIntegerField(null=True, blank=True)
    estimated = models.BooleanField(
        default=False, help_text="The call core died mid-call: the end is its last heartbeat, charged up to then."
    )
    disconnected_by = models.CharField(
        max_length=150,
        blank=True,
        help_text="Who asked the switch to end the call: an operator (portal:, api:, vos:) or an anti-fraud rule.",
    )
    decision_trace = models.CharField(
        max_length=1000,
        blank=True,
        help_text="Why each candidate vendor was skipped and the limits that applied, as the call core decided "
        "(the routing simulator's vocabulary).",
    )
    ingested = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        verbose_name = "CDR"
        verbose_name_plural = "CDRs"
        ordering = ["-start_time", "-id"]
        indexes = [
            models.Index(fields=["start_time"], name="cdr_start"),
            models.Index(fields=["billing_mode", "start_time"], name="cdr_mode_start"),
            # The figures the reports and the list's totals sum ride along (INCLUDE), so one
            # account's or gateway's month is an index-only scan: its calls are spread over every
            # heap page of the period (bench/cdr_query.py: a month of the busiest account, 835k
            # CDRs, went from 23 s to under 1 s).
            models.Index(fields=["account", "start_time"], name="cdr_account_start", include=CDR_FIGURES),
            models.Index(fields=["mapping_gateway", "start_time"], name="cdr_mapgw_start", include=CDR_FIGURES),
            models.Index(fields=["routing_gateway", "start_time"], name="cdr_routegw_start", include=CDR_FIGURES),
            models.Index(fields=["caller_ip", "start_time"], name="cdr_callerip_start"),
            models.Index(fields=["end_reason", "start_time"], name="cdr_reason_start"),
            models.Index(fields=["caller_number"], name="cdr_caller_prefix", opclasses=["varchar_pattern_ops"]),
            models.Index(fields=["callee_number"], name="cdr_callee_prefix", opclasses=["varchar_pattern_ops"]),
        ]

    def __str__(self):
        return self.call_uuid

    def get_absolute_url(self):
        return reverse("billing:cdr", args=[self.pk])

    @property
    def hold_seconds(self):
        return self.hold_time_ms / 1000


class RerateJobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class RerateJob(models.Model):
    """Re-rating of a period's CDRs for one account or one rate table, after a price fix.

    ``billing.rerating`` rates every CDR of the period again with the current
    rates and moves balances by the difference, one chunk (a day) per
    transaction. ``chunks_done`` is the idempotency guard: a chunk's key is
    added in the same transaction as its CDR updates and balance moves, so a
    redelivered task skips the chunks already applied.
    """

    account = models.ForeignKey(Account, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    rate_table = models.ForeignKey(RateTable, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    start = models.DateTimeField(help_text="From this moment (inclusive).")
    end = models.DateTimeField(help_text="Up to this moment (exclusive).")
    status = models.CharField(max_length=10, choices=RerateJobStatus.choices, default=RerateJobStatus.QUEUED)
    total = models.BigIntegerField(default=0, editable=False, help_text="CDRs to re-rate.")
    done = models.BigIntegerField(default=0, editable=False, help_text="CDRs re-rated so far.")
    changed = models.BigIntegerField(default=0, editable=False, help_text="CDRs whose fee or cost changed.")
    chunks_done = models.JSONField(default=list, editable=False)
    error = models.TextField(blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, editable=False
    )
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True, editable=False)
    finished = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "re-rating job"
        ordering = ["-created", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(account__isnull=False) | models.Q(rate_table__isnull=False),
                name="reratejob_has_scope",
            ),
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="reratejob_end_after_start"),
        ]

    def __str__(self):
        return f"Re-rating #{self.pk}"

    def get_absolute_url(self):
        return reverse("billing:reratejob", args=[self.pk])

    @property
    def scope(self):
        return f"account {self.account}" if self.account_id else f"rate table {self.rate_table}"

    @property
    def percent(self):
        return 100 if self.status == RerateJobStatus.DONE else int(100 * self.done / self.total) if self.total else 0


class RerateChange(models.Model):
    """One CDR a re-rating changed: the fee and vendor cost before and after (the difference report)."""

    job = models.ForeignKey(RerateJob, on_delete=models.CASCADE, related_name="changes")
    cdr_id = models.BigIntegerField()
    start_time = models.DateTimeField()
    call_uuid = models.CharField(max_length=64)
    callee_number = models.CharField(max_length=64, blank=True)
    account_id = models.BigIntegerField(null=True, blank=True)
    vendor_account_id = models.BigIntegerField(null=True, blank=True)
    old_fee = models.DecimalField(**MONEY)
    new_fee = models.DecimalField(**MONEY)
    old_vendor_cost = models.DecimalField(**MONEY)
    new_vendor_cost = models.DecimalField(**MONEY)
    old_rate_prefix = models.CharField(max_length=32, blank=True)
    new_rate_prefix = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["start_time", "cdr_id"]
        constraints = [models.UniqueConstraint(fields=["job", "cdr_id", "start_time"], name="rerate_change_once")]

    def __str__(self):
        return f"{self.call_uuid}: {self.old_fee} -> {self.new_fee}"
