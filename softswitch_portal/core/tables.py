"""Tables of the audit pages."""

import django_tables2 as tables
from auditlog.models import LogEntry
from axes.models import AccessAttempt
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from softswitch_portal.generic.tables import BaseTable, ChoiceColumn, DateTimeColumn, NumberColumn, TextColumn
from softswitch_portal.generic.utils import object_url

from .lockout import cooloff_time, failure_limit
from .models import LoginEvent

ACTION_BADGES = {LogEntry.Action.CREATE: "yes", LogEntry.Action.DELETE: "no"}


class ChangesColumn(tables.Column):
    """Each changed field as ``field: before → after``; a creation shows only the values set."""

    def __init__(self, *args, **kwargs):
        kwargs.update(empty_values=(), orderable=False, attrs={"td": {"class": "wrap"}})
        super().__init__(*args, **kwargs)

    def render(self, record):
        rows = []
        for field, change in sorted(record.changes_dict.items()):
            before, after = self.before_after(change, self.shown_items)
            rows.append((field, Truncator(before).chars(self.shown_chars), Truncator(after).chars(self.shown_chars)))
        if not rows:
            return "—"
        return format_html_join(
            "",
            '<div class="change"><span class="change-field">{}</span>: '
            '<span class="change-before">{}</span> → <span class="change-after">{}</span></div>',
            rows,
        )

    def value(self, record):
        changes = sorted(record.changes_dict.items())
        return "; ".join("{}: {} → {}".format(field, *self.before_after(change)) for field, change in changes)

    # The table shows the gist (a role's hundred permissions would fill the page); the export has it all.
    shown_items = 6
    shown_chars = 200

    @staticmethod
    def before_after(change, shown_items=None):
        # A many-to-many change is recorded as the objects added or removed, not as two values.
        if isinstance(change, dict):
            items = [str(item) for item in change.get("objects", ())]
            if shown_items is not None and len(items) > shown_items:
                items = [*items[:shown_items], f"and {len(items) - shown_items} more"]
            objects = ", ".join(items)
            return ("", f"+ {objects}") if change.get("operation") == "add" else (f"− {objects}", "")
        before, after = change
        return "" if before is None else str(before), "" if after is None else str(after)


class AuditObjectColumn(tables.Column):
    """The changed object, linked to its page while it exists."""

    def render(self, value, record):
        model = record.content_type.model_class() if record.content_type_id else None
        if model is None or record.action == LogEntry.Action.DELETE:
            return value
        url = object_url(model, "detail", record.object_pk)
        return format_html('<a href="{}">{}</a>', url, value) if url else value


class LogEntryTable(BaseTable):
    timestamp = DateTimeColumn(verbose_name="Time")
    actor = tables.Column(verbose_name="User", default="(system)")
    action = ChoiceColumn(badges=ACTION_BADGES)
    content_type = tables.Column(verbose_name="Model", order_by=("content_type__model",))
    object_repr = AuditObjectColumn(verbose_name="Object")
    changes = ChangesColumn(verbose_name="Before → after")
    remote_addr = tables.Column(verbose_name="From")

    class Meta(BaseTable.Meta):
        model = LogEntry
        fields = ("timestamp", "actor", "action", "content_type", "object_repr", "changes", "remote_addr")
        exclude = ("actions",)
        order_by = ("-timestamp",)


class LoginEventTable(BaseTable):
    time = DateTimeColumn()
    outcome = ChoiceColumn(badges={"success": "yes", "failed": "no", "locked_out": "no"})

    class Meta(BaseTable.Meta):
        model = LoginEvent
        fields = ("time", "username", "outcome", "ip_address", "user_agent", "path")
        exclude = ("actions",)
        order_by = ("-time",)


class LockoutStateColumn(tables.Column):
    """Locked (until when) once the failures reach SS_MAX_LOGIN_FAILED, as django-axes decides."""

    def __init__(self, *args, **kwargs):
        kwargs.update(empty_values=(), orderable=False, exclude_from_export=True)
        super().__init__(*args, **kwargs)

    def render(self, record, table):
        if record.failures_since_start < table.failure_limit:
            return format_html('<span class="badge">{} of {} failures</span>', record.failures_since_start,
                               table.failure_limit)  # fmt: skip
        until = timezone.localtime(record.attempt_time + table.cooloff)
        return format_html('<span class="badge badge-no">Locked until {}</span>', until.strftime("%Y-%m-%d %H:%M"))


class ReleaseColumn(tables.Column):
    def __init__(self, *args, **kwargs):
        kwargs.update(empty_values=(), orderable=False, verbose_name="", exclude_from_export=True)
        kwargs["attrs"] = {"td": {"class": "actions"}}
        super().__init__(*args, **kwargs)

    def render(self, record, table):
        user = getattr(getattr(table, "request", None), "user", None)
        if user is None or not user.has_perm("axes.delete_accessattempt"):
            return ""
        url = reverse("axes:accessattempt_delete", args=[record.pk])
        return format_html('<a class="btn btn-xs btn-danger-outline" href="{}">Release</a>', url)


class AccessAttemptTable(BaseTable):
    username = tables.Column()
    ip_address = tables.Column(verbose_name="IP address")
    failures_since_start = NumberColumn(verbose_name="Failures")
    attempt_time = DateTimeColumn(verbose_name="Last failure")
    state = LockoutStateColumn(verbose_name="State")
    release = ReleaseColumn()
    user_agent = TextColumn(length=60)

    class Meta(BaseTable.Meta):
        model = AccessAttempt
        fields = ("username", "ip_address", "failures_since_start", "attempt_time", "state", "user_agent", "path_info")
        sequence = ("username", "ip_address", "failures_since_start", "attempt_time", "state", "release", "...")
        exclude = ("actions",)
        order_by = ("-attempt_time",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.failure_limit = failure_limit(None, None)
        self.cooloff = cooloff_time(None)
