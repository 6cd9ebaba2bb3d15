"""The audit pages: every recorded change, one object's history, the logins, and the login lockouts."""

from auditlog.models import LogEntry
from auditlog.registry import auditlog
from axes.models import AccessAttempt
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render
from django_tables2 import RequestConfig

from softswitch_portal.generic import views as generic
from softswitch_portal.generic.export import format_cell
from softswitch_portal.generic.utils import object_url, user_can

from . import filtersets, tables
from .models import LoginEvent


class AuditPageMixin:
    """The audit pages sit under Security, named for what operators look for, not for the library's models."""

    page_names = ("", "")

    def model_context(self, request):
        singular, plural = self.page_names
        return {**super().model_context(request), "area": "Security", "verbose_name": singular,
                "verbose_name_plural": plural}  # fmt: skip


class LogEntryListView(AuditPageMixin, generic.ObjectListView):
    page_names = ("audit log entry", "audit log")
    queryset = LogEntry.objects.select_related("actor", "content_type")
    filterset = filtersets.LogEntryFilterSet
    table = tables.LogEntryTable
    primary_filters = ("actor", "content_type", "action", "timestamp_after", "timestamp_before")

    def export_header_and_rows(self, request, queryset):
        table = self.table(queryset)
        columns = ("timestamp", "actor", "action", "content_type", "object_pk", "object_repr", "changes", "remote_addr")
        rows = (
            [
                entry.timestamp,
                entry.actor,
                entry.get_action_display(),
                entry.content_type,
                entry.object_pk,
                entry.object_repr,
                table.columns["changes"].column.value(entry),
                entry.remote_addr,
            ]
            for entry in queryset.iterator(chunk_size=self.export_chunk_size)
        )
        return list(columns), ([format_cell(cell) for cell in row] for row in rows)


class ObjectHistoryView(generic.BaseObjectView):
    """The history tab of an object's page: its log entries, newest first."""

    queryset = LogEntry.objects.all()
    template_name = "core/object_history.html"

    def dispatch(self, request, *args, **kwargs):
        try:
            self.target = apps.get_model(kwargs["app_label"], kwargs["model_name"])
        except LookupError:
            raise Http404("No such model.") from None
        if not auditlog.contains(self.target):
            raise Http404("This model's changes are not recorded.")
        if request.user.is_authenticated and not user_can(request.user, self.target, "detail"):
            raise PermissionDenied(f"You may not view {self.target._meta.verbose_name_plural}.")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, app_label, model_name, pk):
        content_type = ContentType.objects.get_for_model(self.target)
        entries = LogEntry.objects.filter(content_type=content_type, object_pk=str(pk)).select_related("actor")
        obj = self.target._default_manager.filter(pk=pk).first()
        if obj is None and not entries.exists():
            raise Http404("No such object.")
        table = tables.LogEntryTable(entries, exclude=("content_type", "object_repr", "actions"))
        RequestConfig(request, paginate=False).configure(table)
        self.paginate(request, table)
        meta = self.target._meta
        context = {
            "object": obj,
            "object_title": obj if obj is not None else entries.first().object_repr,
            "area": meta.app_config.verbose_name,
            "verbose_name": meta.verbose_name,
            "verbose_name_plural": meta.verbose_name_plural,
            "list_url": object_url(self.target, "list"),
            "detail_url": object_url(self.target, "detail", pk) if obj is not None else None,
            "table": table,
        }
        return render(request, self.template_name, context)

    paginate = generic.ObjectListView.paginate
    per_page = generic.ObjectListView.per_page
    paginator_class = generic.ObjectListView.paginator_class
    max_per_page = generic.ObjectListView.max_per_page


class LoginEventListView(AuditPageMixin, generic.ObjectListView):
    page_names = ("login", "logins")
    queryset = LoginEvent.objects.all()
    filterset = filtersets.LoginEventFilterSet
    table = tables.LoginEventTable


class AccessAttemptListView(AuditPageMixin, generic.ObjectListView):
    page_names = ("login lockout", "login lockouts")
    queryset = AccessAttempt.objects.all()
    filterset = filtersets.AccessAttemptFilterSet
    table = tables.AccessAttemptTable
    export_exclude = ("post_data", "get_data")


class AccessAttemptReleaseView(AuditPageMixin, generic.ObjectDeleteView):
    """Releasing a lockout forgets the failures behind it, so the user may log in at once."""

    page_names = ("login lockout", "login lockouts")

    queryset = AccessAttempt.objects.all()
