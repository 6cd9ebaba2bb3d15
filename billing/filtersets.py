"""Billing filtersets: one per model, used by the list pages and (later) the REST API."""

import django_filters
from django.db.models import Q

from softswitch_portal.generic.filtersets import (
    BOOKKEEPING,
    FREE_TEXT,
    SORT_INSTEAD,
    BaseFilterSet,
    IPAddressFilter,
)
from softswitch_portal.generic.lookups import LookupFilter

from .choices import BILLING_MODE_FILTER_CHOICES, END_DIRECTION_CHOICES, END_REASON_CHOICES
from .models import CDR, Account, Payment, Rate, RateTable


class AccountFilterSet(BaseFilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")
    balance_min = django_filters.NumberFilter(field_name="balance", lookup_expr="gte", label="Balance at least")
    balance_max = django_filters.NumberFilter(field_name="balance", lookup_expr="lt", label="Balance below")
    alarm_email = django_filters.CharFilter(lookup_expr="icontains", label="Alarm e-mail")

    search_fields = ("name__icontains", "description__icontains", "alarm_email__icontains")
    unfiltered_fields = {
        "credit_limit": SORT_INSTEAD,
        "capacity": SORT_INSTEAD,
        "low_balance_threshold": SORT_INSTEAD,
        "description": FREE_TEXT,
        "created": BOOKKEEPING,
        "updated": BOOKKEEPING,
    }

    class Meta:
        model = Account
        fields = (
            "id",
            "name",
            "account_type",
            "rate_table",
            "locked",
            "anti_overdraft",
            "high_risk_exempt",
            "alarm_email",
        )


class PaymentFilterSet(BaseFilterSet):
    amount_min = django_filters.NumberFilter(field_name="amount", lookup_expr="gte", label="Amount at least")
    amount_max = django_filters.NumberFilter(field_name="amount", lookup_expr="lte", label="Amount at most")
    memo = django_filters.CharFilter(lookup_expr="icontains")
    created_after = django_filters.DateTimeFilter(field_name="created", lookup_expr="gte", label="Created from")
    created_before = django_filters.DateTimeFilter(field_name="created", lookup_expr="lt", label="Created before")

    search_fields = ("account__name__icontains", "memo__icontains")
    unfiltered_fields = {"balance_after": "a running balance: filter the account and sort by time instead"}

    class Meta:
        model = Payment
        fields = ("id", "account", "kind", "created_by")


class RateTableFilterSet(BaseFilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")

    search_fields = ("name__icontains", "description__icontains")
    unfiltered_fields = {"description": FREE_TEXT, "created": BOOKKEEPING, "updated": BOOKKEEPING}

    class Meta:
        model = RateTable
        fields = ("id", "name", "currency")


class RateFilterSet(BaseFilterSet):
    prefix = django_filters.CharFilter(lookup_expr="startswith", label="Prefix starts with")
    number = django_filters.CharFilter(method="filter_number", label="Rates matching number")
    area = django_filters.CharFilter(lookup_expr="icontains")
    valid_at = django_filters.DateTimeFilter(method="filter_valid_at", label="Valid at")

    search_fields = ("prefix__startswith", "area__icontains")
    unfiltered_fields = {
        "price_per_minute": SORT_INSTEAD,
        "connect_fee": SORT_INSTEAD,
        "valid_from": "filtered together with valid_to by valid_at",
        "valid_to": "filtered together with valid_from by valid_at",
    }

    class Meta:
        model = Rate
        fields = ("id", "rate_table", "prefix", "area", "first_period", "next_period")

    def filter_number(self, queryset, name, value):
        """Every rate whose prefix is a prefix of the number: the candidates the longest match picks from."""
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(prefix__in=[value[:length] for length in range(len(value) + 1)])

    def filter_valid_at(self, queryset, name, value):
        return queryset.filter(Q(valid_from__isnull=True) | Q(valid_from__lte=value)).filter(
            Q(valid_to__isnull=True) | Q(valid_to__gt=value)
        )


class CDRFilterSet(BaseFilterSet):
    """The CDR filters. Prefix filters use ``startswith`` (LIKE 'x%'), which the
    varchar_pattern_ops indexes serve; ``istartswith`` would scan every row."""

    start_time_after = django_filters.DateTimeFilter(field_name="start_time", lookup_expr="gte", label="Start from")
    start_time_before = django_filters.DateTimeFilter(field_name="start_time", lookup_expr="lt", label="Start before")
    billing_mode = django_filters.ChoiceFilter(choices=BILLING_MODE_FILTER_CHOICES)
    # Picked by typing, never listed: an operator has thousands of accounts and gateways.
    account = LookupFilter("account")
    vendor_account = LookupFilter("vendor-account")
    mapping_gateway = LookupFilter("mapping-gateway")
    routing_gateway = LookupFilter("routing-gateway")
    phone = LookupFilter("phone")
    caller_prefix = django_filters.CharFilter(
        field_name="caller_number", lookup_expr="startswith", label="Caller prefix"
    )
    callee_prefix = django_filters.CharFilter(
        field_name="callee_number", lookup_expr="startswith", label="Callee prefix"
    )
    callee_routed_prefix = django_filters.CharFilter(
        field_name="callee_number_routed", lookup_expr="startswith", label="Callee routed prefix"
    )
    caller_out_prefix = django_filters.CharFilter(
        field_name="caller_number_out", lookup_expr="startswith", label="Caller sent prefix"
    )
    callee_out_prefix = django_filters.CharFilter(
        field_name="callee_number_out", lookup_expr="startswith", label="Callee sent prefix"
    )
    caller_ip = IPAddressFilter(label="Caller IP")
    vendor_ip = IPAddressFilter(label="Vendor IP")
    caller_user_agent = django_filters.CharFilter(lookup_expr="icontains", label="User-Agent contains")
    end_direction = django_filters.ChoiceFilter(choices=END_DIRECTION_CHOICES)
    end_reason = django_filters.ChoiceFilter(choices=END_REASON_CHOICES)
    sip_status = django_filters.NumberFilter(label="SIP status")
    min_hold_seconds = django_filters.NumberFilter(
        field_name="hold_time_ms", method="filter_min_hold", label="Hold time at least (s)"
    )
    max_hold_seconds = django_filters.NumberFilter(
        field_name="hold_time_ms", method="filter_max_hold", label="Hold time below (s)"
    )

    # A call-id or uuid pasted from a SIP trace, or the start of a number.
    search_fields = (
        "call_uuid",
        "caller_call_id",
        "callee_call_id",
        "caller_number__startswith",
        "callee_number__startswith",
    )
    unfiltered_fields = {
        "answer_time": "start_time is the partition key: filter on it so queries prune partitions",
        "stop_time": "start_time is the partition key: filter on it so queries prune partitions",
        "fee_time": "follows from the hold time, which has a filter",
        "pdd_ms": SORT_INSTEAD,
        "caller_port": "the caller IP identifies the source; ports change per call",
        "account_name": "a copy kept for display: filter by account",
        "mapping_gateway_name": "a copy kept for display: filter by mapping gateway",
        "routing_gateway_name": "a copy kept for display: filter by routing gateway",
        "fee": SORT_INSTEAD,
        "vendor_cost": SORT_INSTEAD,
        "rate_area": "a copy of the rate's area: filter by rate prefix",
        "vendor_rate_area": "a copy of the vendor rate's area: filter by vendor rate prefix",
        "vendors_tried": "a JSON list: open the CDR to read it",
        "decision_trace": "the call core's short account of its choice: open the CDR to read it",
        "disconnected_by": "rare (an operator's or a fraud rule's cut): filter by end reason operator_disconnect",
        "ingested": "ingest bookkeeping: start_time is what operators search by",
    }

    class Meta:
        model = CDR
        fields = (
            "id",
            "call_uuid",
            "caller_call_id",
            "callee_call_id",
            "rate_prefix",
            "vendor_rate_prefix",
            "node",
            "snapshot_version",
            "estimated",
        )

    def filter_min_hold(self, queryset, name, value):
        return queryset.filter(hold_time_ms__gte=int(value * 1000))

    def filter_max_hold(self, queryset, name, value):
        return queryset.filter(hold_time_ms__lt=int(value * 1000))
