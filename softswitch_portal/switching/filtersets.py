"""Switching filtersets: one per model, used by the list pages and (later) the REST API."""

import django_filters

from callcore.contract import PARAMETERS
from security.models import BlackWhiteListGroup
from softswitch_portal.core.models import SystemParameter
from softswitch_portal.generic.filtersets import (
    BOOKKEEPING,
    FREE_TEXT,
    SORT_INSTEAD,
    ArrayContainsFilter,
    BaseFilterSet,
    IntArrayContainsFilter,
)
from softswitch_portal.generic.lookups import LookupFilter

from .choices import WEEKDAYS, TransformTarget
from .models import (
    CallerNumberPool,
    MappingGateway,
    NumberTransformRule,
    Phone,
    RoutingGateway,
    RoutingSchedule,
    TestCall,
)

LIMITS = SORT_INSTEAD


def transform_filter(target):
    return django_filters.ModelMultipleChoiceFilter(queryset=NumberTransformRule.objects.filter(target=target))


class MappingGatewayFilterSet(BaseFilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")
    remote_ips = ArrayContainsFilter(label="Has remote IP")
    prefix_allow = ArrayContainsFilter(label="Allows prefix")
    prefix_forbid = ArrayContainsFilter(label="Forbids prefix")
    caller_transforms = transform_filter(TransformTarget.CALLER)
    callee_transforms = transform_filter(TransformTarget.CALLEE)
    caller_list_groups = django_filters.ModelMultipleChoiceFilter(queryset=BlackWhiteListGroup.objects.all())
    callee_list_groups = django_filters.ModelMultipleChoiceFilter(queryset=BlackWhiteListGroup.objects.all())

    search_fields = ("name__icontains", "description__icontains", "remote_ips__icontains", "account__name__icontains")
    unfiltered_fields = {
        "capacity": LIMITS,
        "cps_limit": LIMITS,
        "conversation_limit": LIMITS,
        "description": FREE_TEXT,
        "created": BOOKKEEPING,
        "updated": BOOKKEEPING,
    }

    class Meta:
        model = MappingGateway
        fields = (
            "id",
            "name",
            "account",
            "auth_mode",
            "remote_port",
            "route_policy",
            "dynamic_blacklist_standalone",
            "high_risk_exempt",
            "require_caller_number",
            "media_proxy",
            "enabled",
        )


class RoutingGatewayFilterSet(BaseFilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")
    host = django_filters.CharFilter(lookup_expr="icontains")
    prefixes = ArrayContainsFilter(label="Serves prefix")
    failover_codes = IntArrayContainsFilter(label="Fails over on")
    clearing_account = LookupFilter("vendor-account")
    caller_transforms = transform_filter(TransformTarget.CALLER)
    callee_transforms = transform_filter(TransformTarget.CALLEE)
    schedules = django_filters.ModelMultipleChoiceFilter(queryset=RoutingSchedule.objects.all())

    search_fields = ("name__icontains", "host__icontains", "description__icontains")
    unfiltered_fields = {
        "capacity": LIMITS,
        "cps_limit": LIMITS,
        "conversation_limit": LIMITS,
        "description": FREE_TEXT,
        "created": BOOKKEEPING,
        "updated": BOOKKEEPING,
    }

    class Meta:
        model = RoutingGateway
        fields = (
            "id",
            "name",
            "host",
            "port",
            "transport",
            "tech_prefix",
            "priority",
            "clearing_account",
            "caller_number_pool",
            "dynamic_blacklist_standalone",
            "media_proxy",
            "enabled",
        )


class TestCallFilterSet(BaseFilterSet):
    number = django_filters.CharFilter(lookup_expr="startswith", label="Number starts with")

    search_fields = ("number__startswith", "gateway_name__icontains", "sip_reason__icontains")
    unfiltered_fields = {
        "gateway_name": "a copy kept should the gateway go: filter by gateway",
        "created": BOOKKEEPING,
        "finished": BOOKKEEPING,
        "error": FREE_TEXT,
        "sip_reason": "the status's words: filter by SIP status",
        "pdd_ms": SORT_INSTEAD,
        "ringing_ms": SORT_INSTEAD,
        "talk_ms": SORT_INSTEAD,
        "rtp_tx_packets": SORT_INSTEAD,
        "rtp_rx_packets": SORT_INSTEAD,
        "rtp_tx_loss": SORT_INSTEAD,
        "rtp_rx_loss": SORT_INSTEAD,
        "jitter_tx_ms": SORT_INSTEAD,
        "jitter_rx_ms": SORT_INSTEAD,
        "audio_verdict": "the words of audio_heard: filter by that",
        "recording": "audio: listen to it on the test call's page",
        "waveform_svg": "a picture: see it on the test call's page",
        "sip_trace": "the call's messages: read them on the test call's page",
    }

    class Meta:
        model = TestCall
        fields = ("id", "status", "gateway", "number", "requested_by", "answered", "audio_heard", "sip_status")


class PhoneFilterSet(BaseFilterSet):
    username = django_filters.CharFilter(lookup_expr="startswith", label="Username starts with")
    allowed_networks = ArrayContainsFilter(label="Allows network")
    allowed_countries = ArrayContainsFilter(label="Allows country")

    search_fields = ("username__startswith", "description__icontains", "account__name__icontains")
    unfiltered_fields = {
        "ha1": "a secret's hash: never searchable",
        "ha1b": "a secret's hash: never searchable",
        "digest_realm": "the same for every phone but those hashed before a realm change",
        "test_phone": "one phone, the test calls' own: its username is 999000999",
        "capacity": LIMITS,
        "description": FREE_TEXT,
        "created": BOOKKEEPING,
        "updated": BOOKKEEPING,
    }

    class Meta:
        model = Phone
        fields = ("id", "username", "account", "enabled")


class NumberTransformRuleFilterSet(BaseFilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")
    match_prefix = django_filters.CharFilter(lookup_expr="startswith", label="Match prefix starts with")

    search_fields = ("name__icontains", "match_prefix__startswith", "prepend__startswith", "description__icontains")
    unfiltered_fields = {
        "min_length": SORT_INSTEAD,
        "max_length": SORT_INSTEAD,
        "strip_digits": SORT_INSTEAD,
        "description": FREE_TEXT,
    }

    class Meta:
        model = NumberTransformRule
        fields = ("id", "name", "target", "priority", "match_prefix", "prepend")


class RoutingScheduleFilterSet(BaseFilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")
    weekdays = django_filters.TypedChoiceFilter(
        choices=WEEKDAYS, coerce=int, method="filter_weekday", label="Active on"
    )

    search_fields = ("name__icontains", "description__icontains")
    unfiltered_fields = {
        "start_time": "a time of day: sort the list by it instead",
        "end_time": "a time of day: sort the list by it instead",
        "description": FREE_TEXT,
    }

    class Meta:
        model = RoutingSchedule
        fields = ("id", "name")

    def filter_weekday(self, queryset, name, value):
        if value in (None, ""):
            return queryset
        # An empty list means every day.
        return queryset.filter(weekdays__contains=[int(value)]) | queryset.filter(weekdays=[])


class CallerNumberPoolFilterSet(BaseFilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")
    numbers = ArrayContainsFilter(label="Has number")

    search_fields = ("name__icontains", "description__icontains")
    unfiltered_fields = {"description": FREE_TEXT}

    class Meta:
        model = CallerNumberPool
        fields = ("id", "name", "mode")


class SystemParameterFilterSet(BaseFilterSet):
    name = django_filters.ChoiceFilter(choices=[(p.name, p.name) for p in PARAMETERS])

    search_fields = ("name__icontains",)
    unfiltered_fields = {"updated": BOOKKEEPING}

    class Meta:
        model = SystemParameter
        fields = ("id", "name", "value")
