"""Portal pages of the operators' IP-country ranges (VOS's IP limits): laid over the imported table when published."""

import ipaddress

import django_filters
import django_tables2 as tables
from django import forms

from softswitch_portal.generic import views as generic
from softswitch_portal.generic.filtersets import BOOKKEEPING, BaseFilterSet
from softswitch_portal.generic.forms import BaseModelForm
from softswitch_portal.generic.tables import BaseTable

from . import ip_countries
from .models import IpCountryRange


class IpCountryRangeFilterSet(BaseFilterSet):
    start_ip = django_filters.CharFilter(lookup_expr="startswith", label="Start IP starts with")
    country = django_filters.CharFilter(method="filter_country", label="Country")
    address = django_filters.CharFilter(method="filter_address", label="Holds address")
    memo = django_filters.CharFilter(lookup_expr="icontains")

    search_fields = ("start_ip__startswith", "country__iexact", "memo__icontains")
    unfiltered_fields = {
        "count": "a size: the Holds address filter finds the range an address is in",
        "created": BOOKKEEPING,
        "updated": BOOKKEEPING,
    }

    class Meta:
        model = IpCountryRange
        fields = ("id", "start_ip", "country", "memo")

    def filter_country(self, queryset, name, value):
        return queryset.filter(country__iexact=value.strip()) if value.strip() else queryset

    def filter_address(self, queryset, name, value):
        if not value.strip():
            return queryset
        try:
            address = int(ipaddress.IPv4Address(value.strip()))
        except ValueError:
            return queryset.none()
        # Operators keep a handful of ranges: compared here rather than in SQL over the inet type.
        held = [r.pk for r in queryset.only("start_ip", "count") if r.first <= address <= r.last]
        return queryset.filter(pk__in=held)


class IpCountryRangeForm(BaseModelForm):
    country = forms.CharField(max_length=2, help_text=IpCountryRange._meta.get_field("country").help_text)

    class Meta:
        model = IpCountryRange
        fields = ("start_ip", "count", "country", "memo")

    def clean_country(self):
        return self.cleaned_data["country"].strip().upper()


class IpCountryRangeTable(BaseTable):
    start_ip = tables.Column(verbose_name="Start IP", linkify=True, attrs={"td": {"class": "mono"}})
    end_ip = tables.Column(verbose_name="End IP", orderable=False, attrs={"td": {"class": "mono"}})
    count = tables.Column(verbose_name="Addresses", attrs={"td": {"class": "num"}})

    class Meta(BaseTable.Meta):
        model = IpCountryRange
        fields = ("start_ip", "end_ip", "count", "country", "memo", "updated")


class IpCountryRangeListView(generic.ObjectListView):
    queryset = IpCountryRange.objects.all()
    filterset = IpCountryRangeFilterSet
    table = IpCountryRangeTable


class IpCountryRangeView(generic.ObjectView):
    queryset = IpCountryRange.objects.all()
    fieldsets = (
        ("Range", ("start_ip", "end_ip", "count", "country", "memo")),
        ("Record", ("created", "updated", "id")),
    )

    def get_extra_context(self, request, obj):
        return {"extra_panels": [{"title": "Geofence data", "rows": [("IP-country table", ip_countries.state())]}]}


class IpCountryRangeEditView(generic.ObjectEditView):
    queryset = IpCountryRange.objects.all()
    form = IpCountryRangeForm


class IpCountryRangeDeleteView(generic.ObjectDeleteView):
    queryset = IpCountryRange.objects.all()
