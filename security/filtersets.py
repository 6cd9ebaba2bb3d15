"""Security filtersets: one per model, used by the list pages and (later) the REST API."""

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from softswitch_portal.generic.filtersets import BOOKKEEPING, FREE_TEXT, BaseFilterSet

from .models import Alarm, BlacklistExemption, BlackWhiteListGroup, DynamicBlacklistEntry, IpCountryTable, ListEntry


class BlackWhiteListGroupFilterSet(BaseFilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")

    search_fields = ("name__icontains", "description__icontains")
    unfiltered_fields = {"description": FREE_TEXT, "created": BOOKKEEPING, "updated": BOOKKEEPING}

    class Meta:
        model = BlackWhiteListGroup
        fields = ("id", "name", "kind")


class ListEntryFilterSet(BaseFilterSet):
    number = django_filters.CharFilter(lookup_expr="startswith", label="Number starts with")
    note = django_filters.CharFilter(lookup_expr="icontains")

    search_fields = ("number__startswith", "note__icontains")
    unfiltered_fields = {"created": BOOKKEEPING}

    class Meta:
        model = ListEntry
        fields = ("id", "group", "number", "match", "note")


class DynamicBlacklistEntryFilterSet(BaseFilterSet):
    number = django_filters.CharFilter(lookup_expr="startswith", label="Number starts with")
    reason = django_filters.CharFilter(lookup_expr="icontains", label="Reason contains")
    evidence = django_filters.CharFilter(method="filter_evidence", label="Evidence call (call id)")
    created_after = django_filters.DateTimeFilter(field_name="created", lookup_expr="gte", label="Blocked from")
    created_before = django_filters.DateTimeFilter(field_name="created", lookup_expr="lt", label="Blocked before")
    expires_before = django_filters.DateTimeFilter(field_name="expires_at", lookup_expr="lt", label="Expires before")
    reviewed_by = django_filters.ModelChoiceFilter(queryset=get_user_model().objects.filter(is_staff=True))
    reviewed_after = django_filters.DateTimeFilter(field_name="reviewed_at", lookup_expr="gte", label="Reviewed from")
    node = django_filters.CharFilter(label="Detected by (node)")

    search_fields = ("number__startswith", "reason__icontains", "review_note__icontains")
    unfiltered_fields = {
        "figures": "a JSON object of the figures and thresholds: shown in the list, whole on the entry",
        "review_note": FREE_TEXT,
        "stream_id": "the fraud event's stream id, kept only to record each event once",
    }

    class Meta:
        model = DynamicBlacklistEntry
        fields = ("id", "subject_kind", "number", "account", "rule", "severity", "scope", "mapping_gateway", "status",
                  "reviewed_by", "node")  # fmt: skip

    def filter_evidence(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(evidence__contains=[value]) if value else queryset


class BlacklistExemptionFilterSet(BaseFilterSet):
    number = django_filters.CharFilter(lookup_expr="startswith", label="Number starts with")
    running = django_filters.BooleanFilter(method="filter_running", label="Still running")
    until_after = django_filters.DateTimeFilter(field_name="until", lookup_expr="gte", label="Until from")
    until_before = django_filters.DateTimeFilter(field_name="until", lookup_expr="lt", label="Until before")
    created_by = django_filters.ModelChoiceFilter(queryset=get_user_model().objects.filter(is_staff=True))

    search_fields = ("number__startswith", "reason__icontains")
    unfiltered_fields = {"reason": FREE_TEXT, "created": BOOKKEEPING}

    class Meta:
        model = BlacklistExemption
        fields = ("id", "subject_kind", "number", "account", "scope", "mapping_gateway", "entry", "created_by")

    def filter_running(self, queryset, name, value):
        if value is None:
            return queryset
        now = timezone.now()
        return queryset.filter(until__gt=now) if value else queryset.filter(until__lte=now)


class IpCountryTableFilterSet(BaseFilterSet):
    """No list page shows it (the phone pages say what is imported); declared so the rule holds for every model."""

    search_fields = ("version__startswith",)
    unfiltered_fields = {
        "blob": "binary data the call cores load",
        "ipv4_ranges": "a count shown beside the phones' countries",
        "ipv6_ranges": "a count shown beside the phones' countries",
        "countries": "a count shown beside the phones' countries",
        "sources": "file names shown beside the phones' countries",
        "imported_at": "one row at a time: nothing to narrow by date",
    }

    class Meta:
        model = IpCountryTable
        fields = ("id", "version")


class AlarmFilterSet(BaseFilterSet):
    state = django_filters.ChoiceFilter(
        method="filter_state",
        label="State",
        choices=(
            ("open", "Open"),
            ("unacknowledged", "Open, not acknowledged"),
            ("acknowledged", "Acknowledged"),
            ("resolved", "Cleared"),
        ),
    )
    subject = django_filters.CharFilter(method="filter_subject", label="Subject contains")
    last_seen_after = django_filters.DateTimeFilter(field_name="last_seen", lookup_expr="gte", label="Seen from")
    last_seen_before = django_filters.DateTimeFilter(field_name="last_seen", lookup_expr="lt", label="Seen before")
    first_seen_after = django_filters.DateTimeFilter(field_name="first_seen", lookup_expr="gte", label="Raised from")
    first_seen_before = django_filters.DateTimeFilter(field_name="first_seen", lookup_expr="lt", label="Raised before")
    min_count = django_filters.NumberFilter(field_name="count", lookup_expr="gte", label="Seen at least (times)")
    acknowledged_by = django_filters.ModelChoiceFilter(queryset=get_user_model().objects.filter(is_staff=True))

    search_fields = (
        "subject__icontains",
        "rule__icontains",
        "account__name__icontains",
        "mapping_gateway__name__icontains",
        "routing_gateway__name__icontains",
    )
    unfiltered_fields = {
        "figures": "a JSON object of what was measured: open the alarm to read it",
        "dedupe_key": "internal: kind, rule and subject together, each filtered on its own",
        "acknowledged_at": "bookkeeping timestamp: filter by state or by who acknowledged",
        "resolved_at": "bookkeeping timestamp: filter by state (cleared)",
        "notified_at": "bookkeeping of the e-mail throttle",
        "notified_count": "bookkeeping of the e-mail digest",
        "last_event_id": "internal: the fraud event counted last",
    }

    class Meta:
        model = Alarm
        fields = (
            "id",
            "kind",
            "severity",
            "subject_kind",
            "subject",
            "rule",
            "account",
            "mapping_gateway",
            "routing_gateway",
            "acknowledged_by",
        )

    def filter_state(self, queryset, name, value):
        match value:
            case "open":
                return queryset.filter(resolved_at__isnull=True)
            case "unacknowledged":
                return queryset.filter(resolved_at__isnull=True, acknowledged_at__isnull=True)
            case "acknowledged":
                return queryset.filter(acknowledged_at__isnull=False)
            case "resolved":
                return queryset.filter(resolved_at__isnull=False)
        return queryset

    def filter_subject(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(subject__icontains=value)
            | Q(account__name__icontains=value)
            | Q(mapping_gateway__name__icontains=value)
            | Q(routing_gateway__name__icontains=value)
        )
