"""Filtersets of the API clients and their request log (beside security.filtersets, which the fraud pages grow)."""

import django_filters

from softswitch_portal.generic.filtersets import BOOKKEEPING, FREE_TEXT, ArrayContainsFilter, BaseFilterSet

from .api_clients import APIClient, APIRequestLog, APIScope


class APIClientFilterSet(BaseFilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")
    scopes = django_filters.ChoiceFilter(choices=APIScope.choices, method="filter_scope", label="Has scope")
    allowed_networks = ArrayContainsFilter(label="Allows network")
    expires_before = django_filters.DateTimeFilter(field_name="expires_at", lookup_expr="lt", label="Expires before")

    search_fields = ("name__icontains", "description__icontains", "token_prefix")
    unfiltered_fields = {
        "token_hash": "a hash: only ever compared, never searched",
        "throttle_per_minute": "a figure to sort by, not to look up",
        "description": FREE_TEXT,
        "last_used_at": "bookkeeping timestamp: sort the list by it instead",
        "created": BOOKKEEPING,
        "updated": BOOKKEEPING,
    }

    class Meta:
        model = APIClient
        fields = ("id", "name", "owner", "token_prefix", "enabled", "vos_api")

    def filter_scope(self, queryset, name, value):
        return queryset.filter(scopes__contains=[value]) if value else queryset


class APIRequestLogFilterSet(BaseFilterSet):
    endpoint = django_filters.CharFilter(lookup_expr="startswith", label="Endpoint starts with")
    created_after = django_filters.DateTimeFilter(field_name="created", lookup_expr="gte", label="From")
    created_before = django_filters.DateTimeFilter(field_name="created", lookup_expr="lt", label="Before")
    status_min = django_filters.NumberFilter(field_name="status", lookup_expr="gte", label="Status at least")

    search_fields = ("endpoint__startswith",)
    unfiltered_fields = {}

    class Meta:
        model = APIRequestLog
        fields = ("id", "client", "user", "source_ip", "method", "status")
