"""The ban list's table and filters (beside security.tables and security.filtersets)."""

import django_filters
import django_tables2 as tables
from django.db.models import Q
from django.utils import timezone
from django.utils.html import format_html

from callcore.contract import BanCause
from softswitch_portal.generic.filtersets import BaseFilterSet
from softswitch_portal.generic.tables import BaseTable, ChoiceColumn, DateTimeColumn, NumberColumn

from .bans import Ban, BanState

STATE_BADGES = {BanState.ACTIVE: "danger", BanState.RELEASED: "muted", BanState.EXPIRED: "light"}


class BanStateColumn(tables.Column):
    """Active, released or expired, as a badge; an active ban shows how long it has left."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("accessor", "expires_at")
        kwargs.setdefault("empty_values", ())
        kwargs.setdefault("verbose_name", "State")
        super().__init__(*args, **kwargs)

    def render(self, record):
        state = BanState(record.state)
        label = state.label
        if state == BanState.ACTIVE:
            left = int((record.expires_at - timezone.now()).total_seconds())
            label = (
                f"{label}, {left // 3600}h {left % 3600 // 60:02d}m"
                if left >= 3600
                else f"{label}, {left // 60}m {left % 60:02d}s"
            )
        return format_html('<span class="badge badge-{}">{}</span>', STATE_BADGES[state], label)

    def value(self, record):
        return BanState(record.state).label


class BanTable(BaseTable):
    ip = tables.Column(linkify=True, attrs={"td": {"class": "mono"}})
    state = BanStateColumn()
    cause = ChoiceColumn(badges={c.value: "dark" for c in BanCause})
    subject = tables.Column(verbose_name="Username")
    count = NumberColumn(verbose_name="Requests")
    offences = NumberColumn(verbose_name="Bans today")
    first_seen = DateTimeColumn(format="m-d H:i:s", verbose_name="First seen")
    last_seen = DateTimeColumn(format="m-d H:i:s", verbose_name="Last seen")
    expires_at = DateTimeColumn(format="m-d H:i:s", verbose_name="Until")

    class Meta(BaseTable.Meta):
        model = Ban
        # Who released a ban is on its page and a filter here; the columns stay within a laptop's width.
        fields = ("ip", "state", "cause", "subject", "count", "offences", "first_seen", "last_seen", "expires_at",
                  "node")  # fmt: skip


class BanFilterSet(BaseFilterSet):
    state = django_filters.ChoiceFilter(choices=BanState.choices, method="filter_state", label="State")
    ip = django_filters.CharFilter(lookup_expr="startswith", label="IP starts with")
    node = django_filters.CharFilter(lookup_expr="iexact")
    subject = django_filters.CharFilter(lookup_expr="iexact", label="Username")
    last_seen_after = django_filters.DateTimeFilter(field_name="last_seen", lookup_expr="gte", label="Seen from")
    last_seen_before = django_filters.DateTimeFilter(field_name="last_seen", lookup_expr="lt", label="Seen before")
    first_seen_after = django_filters.DateTimeFilter(field_name="first_seen", lookup_expr="gte", label="Began from")
    min_count = django_filters.NumberFilter(field_name="count", lookup_expr="gte", label="Requests at least")
    min_offences = django_filters.NumberFilter(field_name="offences", lookup_expr="gte", label="Bans today at least")

    search_fields = ("ip__startswith", "subject__iexact", "node__iexact")
    unfiltered_fields = {
        "expires_at": "filter by state (active or expired) instead",
        "released_at": "filter by state (released) instead",
    }

    class Meta:
        model = Ban
        fields = ("id", "cause", "released_by")

    def filter_state(self, queryset, name, value):
        now = timezone.now()
        if value == BanState.RELEASED:
            return queryset.filter(released_at__isnull=False)
        if value == BanState.ACTIVE:
            return queryset.filter(released_at__isnull=True, expires_at__gt=now)
        return queryset.filter(Q(released_at__isnull=True) & Q(expires_at__lte=now))
