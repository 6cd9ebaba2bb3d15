"""The access rules' filterset, used by their list page and the API."""

import django_filters

from softswitch_portal.generic.filtersets import BOOKKEEPING, FREE_TEXT, BaseFilterSet

from .models import VosAccessRule


class VosAccessRuleFilterSet(BaseFilterSet):
    network = django_filters.CharFilter(lookup_expr="startswith", label="Network starts with")
    directory = django_filters.CharFilter(lookup_expr="icontains", label="Directory contains")

    search_fields = ("network__startswith", "directory__icontains", "memo__icontains")
    unfiltered_fields = {"memo": FREE_TEXT, "created": BOOKKEEPING}

    class Meta:
        model = VosAccessRule
        fields = ("id", "network", "directory")
