"""Billing list tables."""

import django_tables2 as tables
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import mark_safe

from softswitch_portal.generic.tables import (
    NO,
    BaseTable,
    BooleanColumn,
    ChoiceColumn,
    DateTimeColumn,
    MoneyColumn,
    NumberColumn,
    PageInfoMixin,
    TextColumn,
)

from . import reports
from .choices import AccountType
from .models import CDR, Account, Payment, Rate, RateTable, RerateJob


class AccountTable(BaseTable):
    name = tables.Column(linkify=True)
    balance = MoneyColumn()
    credit_limit = MoneyColumn()
    rate_table = tables.Column(linkify=True)
    locked = BooleanColumn()
    anti_overdraft = BooleanColumn()
    capacity = NumberColumn()

    class Meta(BaseTable.Meta):
        model = Account
        fields = (
            "name",
            "account_type",
            "balance",
            "credit_limit",
            "rate_table",
            "locked",
            "anti_overdraft",
            "capacity",
        )


class PaymentTable(BaseTable):
    memo = TextColumn()
    created = DateTimeColumn(linkify=True, format="Y-m-d H:i:s", attrs={"td": {"class": "nowrap"}})
    account = tables.Column(linkify=True)
    amount = tables.Column(attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    balance_after = MoneyColumn()

    class Meta(BaseTable.Meta):
        model = Payment
        fields = ("created", "account", "kind", "amount", "balance_after", "memo", "created_by")

    def render_amount(self, value, record):
        if record.signed_amount < 0:
            return format_html('<span class="negative">−{}</span>', value)
        return format_html("+{}", value)


class RateTableTable(BaseTable):
    description = TextColumn()
    name = tables.Column(linkify=True)
    rate_count = NumberColumn(verbose_name="Rates")
    account_count = NumberColumn(verbose_name="Accounts")

    class Meta(BaseTable.Meta):
        model = RateTable
        fields = ("name", "currency", "rate_count", "account_count", "description", "updated")


class RatesTable(BaseTable):
    """The table of Rate rows (RateTableTable lists RateTable objects)."""

    prefix = tables.Column(linkify=True, attrs={"td": {"class": "mono"}})
    rate_table = tables.Column(linkify=True)
    price_per_minute = NumberColumn(verbose_name="Price / min")
    periods = tables.Column(empty_values=(), order_by=("first_period", "next_period"), verbose_name="Periods")
    connect_fee = NumberColumn()

    class Meta(BaseTable.Meta):
        model = Rate
        fields = (
            "prefix",
            "area",
            "rate_table",
            "price_per_minute",
            "periods",
            "connect_fee",
            "valid_from",
            "valid_to",
        )

    def render_periods(self, record):
        return f"{record.first_period}/{record.next_period}"


class CDRTable(BaseTable):
    # The related rows may be gone (no database constraints): show the names copied into the CDR.
    start_time = DateTimeColumn(
        linkify=True, format="Y-m-d H:i:s", verbose_name="Start", attrs={"td": {"class": "nowrap"}}
    )
    caller_number = tables.Column(verbose_name="Caller", attrs={"td": {"class": "mono"}})
    callee_number = tables.Column(verbose_name="Callee", attrs={"td": {"class": "mono"}})
    # As routed (after the mapping gateway's transforms) and as sent: the number rated is one of them.
    callee_number_routed = tables.Column(verbose_name="Callee routed", attrs={"td": {"class": "mono"}})
    callee_number_out = tables.Column(verbose_name="Callee sent", attrs={"td": {"class": "mono"}})
    caller_ip = tables.Column(verbose_name="Caller IP", attrs={"td": {"class": "mono"}})
    mapping_gateway_name = tables.Column(verbose_name="Mapping gw")
    routing_gateway_name = tables.Column(verbose_name="Routing gw")
    hold_time_ms = NumberColumn(verbose_name="Hold s")
    fee = NumberColumn()
    billing_mode = ChoiceColumn(badges={-2: "danger", -1: "muted"})
    end_reason = tables.Column(verbose_name="End reason")

    class Meta(BaseTable.Meta):
        model = CDR
        fields = (
            "start_time",
            "caller_number",
            "callee_number",
            "callee_number_routed",
            "callee_number_out",
            "caller_ip",
            "mapping_gateway_name",
            "routing_gateway_name",
            "hold_time_ms",
            "fee",
            "billing_mode",
            "end_reason",
        )
        exclude = ("actions",)

    def render_hold_time_ms(self, value):
        return f"{value / 1000:.1f}" if value % 1000 else str(value // 1000)

    def render_end_reason(self, value, record):
        status = f" {record.sip_status}" if record.sip_status else ""
        return format_html('<span title="{}">{}{}</span>', value, record.end_reason, status)


# Reports: rows are dicts of SQL aggregates (billing.reports), sorted and paged in memory.


class PeriodColumn(tables.Column):
    """The day or month a report row covers."""

    def __init__(self, *args, month=False, **kwargs):
        self.month = month
        kwargs.setdefault("attrs", {"td": {"class": "nowrap mono"}})
        super().__init__(*args, **kwargs)

    def render(self, value):
        return value.strftime("%Y-%m") if self.month else value.strftime("%Y-%m-%d %a")

    def value(self, value):
        return value.strftime("%Y-%m") if self.month else value.isoformat()


class PercentColumn(NumberColumn):
    def render(self, value):
        return f"{value} %"

    def value(self, value):
        return value


class ReportTable(PageInfoMixin, tables.Table):
    """A report's rows. ``cdr_filters`` names the CDR filter behind each row's key, so a
    row's call count links to the CDR list of exactly those calls."""

    cdr_filters = {}

    class Meta:
        attrs = {"class": "table table-hover"}
        template_name = "generic/table.html"
        empty_text = "No calls in this period."

    def __init__(self, data, *, period, **kwargs):
        self.period = period
        exclude = list(kwargs.pop("exclude", ()))
        if period.group_by == reports.TOTAL:
            exclude.append("period")
        super().__init__(data, exclude=exclude, **kwargs)
        if "period" in self.base_columns and period.group_by == reports.MONTH:
            self.columns["period"].column.month = True
            self.columns["period"].column.verbose_name = "Month"

    def cdr_url(self, record):
        start, end = self.period.bucket_bounds(record.get("period"))
        params = {
            "start_time_after": timezone.localtime(start).strftime("%Y-%m-%dT%H:%M"),
            "start_time_before": timezone.localtime(end).strftime("%Y-%m-%dT%H:%M"),
        }
        for name, key in self.cdr_filters.items():
            if record.get(key) is not None:
                params[name] = record[key]
        return f"{reverse('billing:cdr_list')}?{urlencode(params)}"

    def render_attempts(self, value, record):
        return format_html('<a href="{}" title="These calls in the CDR list">{}</a>', self.cdr_url(record), value)

    def value_attempts(self, value):
        return value


def _named(name, pk, model_url):
    if pk is None:
        return "—"
    if not name:
        return format_html('<span class="muted">#{}</span>', pk)
    return format_html('<a href="{}">{}</a>', reverse(model_url, args=[pk]), name)


class RevenueReportTable(ReportTable):
    period = PeriodColumn(verbose_name="Day")
    account_name = tables.Column(verbose_name="Account")
    attempts = NumberColumn(verbose_name="Calls")
    connected = NumberColumn()
    asr = PercentColumn(verbose_name="ASR")
    billed_minutes = NumberColumn(verbose_name="Billed min")
    revenue = MoneyColumn(verbose_name="Revenue")
    cost = MoneyColumn(verbose_name="Cost")
    margin = MoneyColumn()

    cdr_filters = {"account": "account_id"}

    class Meta(ReportTable.Meta):
        sequence = ("period", "account_name", "...")

    def render_account_name(self, value, record):
        return _named(value, record["account_id"], "billing:account")

    def value_account_name(self, value):
        return value


class GatewayBillTable(ReportTable):
    period = PeriodColumn(verbose_name="Day")
    gateway_name = tables.Column(verbose_name="Gateway")
    attempts = NumberColumn()
    connected = NumberColumn()
    asr = PercentColumn(verbose_name="ASR")
    acd = NumberColumn(verbose_name="ACD s")
    talk_minutes = NumberColumn(verbose_name="Talk min")
    billed_minutes = NumberColumn(verbose_name="Billed min")
    revenue = MoneyColumn()
    cost = MoneyColumn()
    margin = MoneyColumn()

    class Meta(ReportTable.Meta):
        sequence = ("period", "gateway_name", "...")

    def __init__(self, data, *, side, **kwargs):
        self.side = side
        self.cdr_filters = {f"{side}_gateway": f"{side}_gateway_id"}
        super().__init__(data, **kwargs)
        self.columns["gateway_name"].column.verbose_name = f"{side.capitalize()} gateway"

    def render_gateway_name(self, value, record):
        return _named(value, record[f"{self.side}_gateway_id"], f"switching:{self.side}gateway")

    def value_gateway_name(self, value):
        return value


class VendorClearingTable(ReportTable):
    period = PeriodColumn(verbose_name="Day")
    vendor_account_name = tables.Column(verbose_name="Vendor account")
    attempts = NumberColumn(verbose_name="Calls")
    connected = NumberColumn()
    asr = PercentColumn(verbose_name="ASR")
    acd = NumberColumn(verbose_name="ACD s")
    talk_minutes = NumberColumn(verbose_name="Talk min")
    cost = MoneyColumn(verbose_name="Cost accrued")

    cdr_filters = {"vendor_account": "vendor_account_id"}

    class Meta(ReportTable.Meta):
        sequence = ("period", "vendor_account_name", "...")

    def render_vendor_account_name(self, value, record):
        return _named(value, record["vendor_account_id"], "billing:account")

    def value_vendor_account_name(self, value, record):
        return value or f"#{record['vendor_account_id']}"


LOW = mark_safe('<span class="badge badge-danger">Low</span>')


class AccountBalanceTable(PageInfoMixin, tables.Table):
    name = tables.Column(linkify=True, verbose_name="Account")
    account_type = tables.Column(verbose_name="Type")
    balance = MoneyColumn()
    credit_limit = MoneyColumn()
    available = MoneyColumn()
    recharges = MoneyColumn()
    deductions = MoneyColumn()
    cdr_charges = MoneyColumn(verbose_name="CDR fees / cost")
    threshold = MoneyColumn(verbose_name="Alarm below")
    low_balance = BooleanColumn(verbose_name="Low")

    class Meta:
        attrs = {"class": "table table-hover"}
        template_name = "generic/table.html"
        empty_text = "No accounts match."
        row_attrs = {"class": lambda record: "row-alert" if record.low_balance else ""}

    def __init__(self, data, *, period=None, **kwargs):
        super().__init__(data, **kwargs)

    def render_deductions(self, value):
        return format_html('<span class="negative">−{}</span>', value) if value else value

    def value_deductions(self, value):
        return value

    def render_threshold(self, value, record):
        return value if record.account_type == AccountType.CUSTOMER else "—"

    def value_threshold(self, value, record):
        return value if record.account_type == AccountType.CUSTOMER else None

    def render_low_balance(self, value, record):
        if record.account_type != AccountType.CUSTOMER:
            return "—"
        return LOW if value else NO


class RerateJobTable(BaseTable):
    id = tables.Column(linkify=True, verbose_name="Job")
    scope = tables.Column(empty_values=(), orderable=False)
    start = tables.DateTimeColumn()
    end = tables.DateTimeColumn()
    status = tables.Column()
    progress = tables.Column(empty_values=(), orderable=False)
    changed = NumberColumn()
    created_by = tables.Column()
    created = tables.DateTimeColumn()

    class Meta(BaseTable.Meta):
        model = RerateJob
        fields = ("id", "scope", "start", "end", "status", "progress", "changed", "created_by", "created")
        exclude = ("actions",)

    def render_id(self, record):
        return str(record)

    def render_scope(self, record):
        return record.scope

    def render_progress(self, record):
        return f"{record.done} / {record.total}"


def _money(value):
    return format_html('<span class="negative">{}</span>', value) if value < 0 else value


class ChangeTable(tables.Table):
    start_time = tables.DateTimeColumn(verbose_name="Start")
    call_uuid = tables.Column(verbose_name="Call")
    callee_number = tables.Column(verbose_name="Callee")
    account = tables.Column(accessor="account_id", verbose_name="Account")
    old_fee = MoneyColumn(verbose_name="Fee before")
    new_fee = MoneyColumn(verbose_name="Fee after")
    fee_difference = MoneyColumn(empty_values=(), orderable=False, verbose_name="Fee diff")
    old_vendor_cost = MoneyColumn(verbose_name="Cost before")
    new_vendor_cost = MoneyColumn(verbose_name="Cost after")
    cost_difference = MoneyColumn(empty_values=(), orderable=False, verbose_name="Cost diff")
    rate_prefix = tables.Column(empty_values=(), orderable=False, verbose_name="Prefix")

    class Meta:
        attrs = {"class": "table table-hover"}
        template_name = "generic/table.html"
        empty_text = "No CDR changed."

    def __init__(self, *args, names=None, **kwargs):
        self.names = names or {}
        super().__init__(*args, **kwargs)

    def render_account(self, value):
        return self.names.get(value, value)

    def render_fee_difference(self, record):
        return _money(record.new_fee - record.old_fee)

    def render_cost_difference(self, record):
        return _money(record.new_vendor_cost - record.old_vendor_cost)

    def render_rate_prefix(self, record):
        if record.old_rate_prefix == record.new_rate_prefix:
            return record.new_rate_prefix or "—"
        return f"{record.old_rate_prefix or '—'} → {record.new_rate_prefix or '—'}"
