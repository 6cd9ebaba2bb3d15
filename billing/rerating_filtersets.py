"""Filtersets of the re-rating models (kept apart from billing/filtersets.py, like their views)."""

import django_filters

from softswitch_portal.generic.filtersets import BOOKKEEPING, SORT_INSTEAD, BaseFilterSet

from .models import RerateChange, RerateJob


class RerateJobFilterSet(BaseFilterSet):
    start_after = django_filters.DateTimeFilter(field_name="start", lookup_expr="gte", label="Period from")
    end_before = django_filters.DateTimeFilter(field_name="end", lookup_expr="lte", label="Period up to")

    search_fields = ("account__name__icontains", "rate_table__name__icontains", "error__icontains")
    unfiltered_fields = {
        "total": SORT_INSTEAD,
        "done": SORT_INSTEAD,
        "changed": SORT_INSTEAD,
        "chunks_done": "the job's idempotency bookkeeping, not a property to look up",
        "error": "free text: the quick search (q) covers it",
        "created": BOOKKEEPING,
        "started": BOOKKEEPING,
        "finished": BOOKKEEPING,
    }

    class Meta:
        model = RerateJob
        fields = ("id", "account", "rate_table", "status", "created_by")


class RerateChangeFilterSet(BaseFilterSet):
    start_after = django_filters.DateTimeFilter(field_name="start_time", lookup_expr="gte", label="Start from")
    start_before = django_filters.DateTimeFilter(field_name="start_time", lookup_expr="lt", label="Start before")

    search_fields = ("call_uuid__icontains", "callee_number__startswith")
    unfiltered_fields = {
        "old_fee": SORT_INSTEAD,
        "new_fee": SORT_INSTEAD,
        "old_vendor_cost": SORT_INSTEAD,
        "new_vendor_cost": SORT_INSTEAD,
    }

    class Meta:
        model = RerateChange
        fields = (
            "id",
            "job",
            "cdr_id",
            "call_uuid",
            "callee_number",
            "account_id",
            "vendor_account_id",
            "old_rate_prefix",
            "new_rate_prefix",
        )
