"""Billing list tables."""

import django_tables2 as tables
from django.utils.html import format_html

from softswitch_portal.generic.tables import (
    BaseTable,
    BooleanColumn,
    ChoiceColumn,
    MoneyColumn,
    NumberColumn,
    TextColumn,
)

from .models import CDR, Account, Payment, Rate, RateTable


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
    created = tables.DateTimeColumn(linkify=True, format="Y-m-d H:i:s", attrs={"td": {"class": "nowrap"}})
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
    start_time = tables.DateTimeColumn(
        linkify=True, format="Y-m-d H:i:s", verbose_name="Start", attrs={"td": {"class": "nowrap"}}
    )
    caller_number = tables.Column(verbose_name="Caller", attrs={"td": {"class": "mono"}})
    callee_number = tables.Column(verbose_name="Callee", attrs={"td": {"class": "mono"}})
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
