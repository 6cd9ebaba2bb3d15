"""Filters of the audit pages: the change log, the logins and the login lockouts."""

import django_filters
from auditlog.models import LogEntry
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType

from softswitch_portal.generic.filtersets import BaseFilterSet

from .models import LoginEvent

BOOKKEEPING = "kept for the record, not searched by"


def audited_content_types(request=None):
    from auditlog.registry import auditlog

    models = sorted(auditlog.get_models(), key=lambda model: str(model._meta.verbose_name))
    return ContentType.objects.filter(pk__in=[ContentType.objects.get_for_model(model).pk for model in models])


class LogEntryFilterSet(BaseFilterSet):
    actor = django_filters.ModelChoiceFilter(queryset=get_user_model().objects.order_by("username"), label="User")
    content_type = django_filters.ModelChoiceFilter(queryset=audited_content_types, label="Model")
    object_pk = django_filters.CharFilter(label="Object ID")
    object_repr = django_filters.CharFilter(lookup_expr="icontains", label="Object")
    timestamp_after = django_filters.DateTimeFilter(field_name="timestamp", lookup_expr="gte", label="From")
    timestamp_before = django_filters.DateTimeFilter(field_name="timestamp", lookup_expr="lt", label="Before")
    remote_addr = django_filters.CharFilter(label="From address")

    search_fields = ("object_repr__icontains", "changes_text__icontains", "actor__username__icontains")
    unfiltered_fields = {
        "object_id": "object_pk filters the same object",
        "serialized_data": BOOKKEEPING,
        "changes_text": "searched by the quick search",
        "changes": "searched by the quick search",
        "cid": BOOKKEEPING,
        "remote_port": BOOKKEEPING,
        "additional_data": BOOKKEEPING,
        "actor_email": "the user filter covers it",
    }

    class Meta:
        model = LogEntry
        fields = ("id", "action", "actor", "content_type", "object_pk", "object_repr", "remote_addr")


class LoginEventFilterSet(BaseFilterSet):
    username = django_filters.CharFilter(lookup_expr="iexact")
    time_after = django_filters.DateTimeFilter(field_name="time", lookup_expr="gte", label="From")
    time_before = django_filters.DateTimeFilter(field_name="time", lookup_expr="lt", label="Before")
    ip_address = django_filters.CharFilter(label="IP address")

    search_fields = ("username__icontains", "ip_address__startswith", "user_agent__icontains")
    unfiltered_fields = {
        "user": "the username filter covers it (a failed login has no user)",
        "user_agent": "searched by the quick search",
        "path": BOOKKEEPING,
    }

    class Meta:
        model = LoginEvent
        fields = ("id", "outcome", "username", "ip_address")


class AccessAttemptFilterSet(BaseFilterSet):
    username = django_filters.CharFilter(lookup_expr="iexact")
    ip_address = django_filters.CharFilter(label="IP address")
    failures_min = django_filters.NumberFilter(
        field_name="failures_since_start", lookup_expr="gte", label="Failures at least"
    )

    search_fields = ("username__icontains", "ip_address__startswith")
    unfiltered_fields = {
        "user_agent": BOOKKEEPING,
        "http_accept": BOOKKEEPING,
        "path_info": BOOKKEEPING,
        "attempt_time": "the list is sorted by it",
        "get_data": BOOKKEEPING,
        "post_data": BOOKKEEPING,
    }

    class Meta:
        model = AccessAttempt
        fields = ("id", "username", "ip_address")
