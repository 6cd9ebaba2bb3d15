"""Security list tables."""

import json

import django_tables2 as tables
from django.template.defaultfilters import pluralize
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from softswitch_portal.generic.tables import BaseTable, ChoiceColumn, DateTimeColumn, NumberColumn, TextColumn

from .models import Alarm, BlacklistExemption, BlackWhiteListGroup, DynamicBlacklistEntry, ListEntry


class BlackWhiteListGroupTable(BaseTable):
    description = TextColumn()
    name = tables.Column(linkify=True)
    kind = ChoiceColumn(badges={"black": "dark", "white": "light", "highrisk": "danger"})
    entry_count = NumberColumn(verbose_name="Entries")

    class Meta(BaseTable.Meta):
        model = BlackWhiteListGroup
        fields = ("name", "kind", "entry_count", "description", "updated")


class ListEntryTable(BaseTable):
    note = TextColumn()
    number = tables.Column(linkify=True, attrs={"td": {"class": "mono"}})
    group = tables.Column(linkify=True)

    class Meta(BaseTable.Meta):
        model = ListEntry
        fields = ("number", "match", "group", "note", "created")


class FiguresColumn(tables.Column):
    """A rule's figures in one line: the count seen against the thresholds, then the rest."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("orderable", False)
        kwargs.setdefault("attrs", {"td": {"class": "wrap mono"}})
        super().__init__(*args, **kwargs)

    def render(self, value):
        return figures_text(value)

    def value(self, value):
        return json.dumps(value, sort_keys=True)


def figures_text(figures):
    if not isinstance(figures, dict) or not figures:
        return ""
    parts = []
    if "count" in figures:
        window = f" / {figures['window_s']} s" if figures.get("window_s") else ""
        parts.append(f"{figures['count']}{window}")
    levels = [f"{name[0]} {figures[name]}" for name in ("warning", "critical") if name in figures]
    if levels:
        parts.append(f"({', '.join(levels)})")
    shown = {"count", "window_s", "warning", "critical"}
    parts.extend(f"{name} {figures[name]}" for name in sorted(figures) if name not in shown)
    return " ".join(str(part) for part in parts)


class EvidenceColumn(tables.Column):
    """How many calls were counted, with the evidence calls' starts on a small timeline where their CDRs are in.

    The view hands the CDR start times per entry in ``table.evidence_starts``
    (one query for the page), so the column itself never queries.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("orderable", False)
        kwargs.setdefault("empty_values", ())
        super().__init__(*args, **kwargs)

    def render(self, value, record, table):
        calls = len(value or ())
        starts = getattr(table, "evidence_starts", {}).get(record.pk, [])
        return format_html("{} call{} {}", calls, pluralize(calls), timeline_svg(starts, width=120, height=14))

    def value(self, value):
        return " ".join(str(item) for item in value or ())


def timeline_caption(starts):
    if not starts:
        return ""
    first, last = timezone.localtime(min(starts)), timezone.localtime(max(starts))
    seconds = round((last - first).total_seconds())
    return f"{len(starts)} calls from {first:%H:%M:%S} to {last:%H:%M:%S} ({seconds} s)"


def timeline_svg(starts, *, width=480, height=36, title=True):
    """Tick marks of the calls' start times along the span they cover: a burst reads as a dense cluster."""
    if not starts:
        return ""
    starts = sorted(starts)
    first, last = starts[0], starts[-1]
    span = (last - first).total_seconds() or 1.0
    pad = 3
    ticks = []
    for start in starts:
        x = pad + (width - 2 * pad) * (start - first).total_seconds() / span
        tip = timezone.localtime(start).strftime("%H:%M:%S")
        ticks.append(
            format_html(
                '<line x1="{0}" x2="{0}" y1="2" y2="{1}" stroke="#c0392b" stroke-width="1.5"><title>{2}</title></line>',
                f"{x:.1f}",
                height - 2,
                tip,
            )
        )
    label = timeline_caption(starts) if title else ""
    return format_html(
        '<svg class="timeline" width="{}" height="{}" viewBox="0 0 {} {}" role="img" aria-label="{}">'
        '<line x1="0" x2="{}" y1="{}" y2="{}" stroke="#b8c0cc"></line>{}</svg>',
        width, height, width, height, label, width, height - 1, height - 1, mark_safe("".join(ticks)),
    )  # fmt: skip


class DynamicBlacklistEntryTable(BaseTable):
    """The review queue: entries awaiting review first (the view orders them), with a checkbox for bulk actions."""

    select = tables.CheckBoxColumn(
        accessor="pk",
        attrs={"input": {"form": "bulk-review", "name": "entries"}, "th__input": {"class": "select-all"}},
        exclude_from_export=True,
    )
    subject = tables.Column(accessor="pk", verbose_name="Subject", linkify=True, order_by=("number", "account"))
    reason = TextColumn()
    rule = ChoiceColumn()
    severity = ChoiceColumn(badges={"critical": "danger", "warning": "warning"})
    figures = FiguresColumn()
    evidence = EvidenceColumn(verbose_name="Evidence")
    mapping_gateway = tables.Column(linkify=True)
    status = ChoiceColumn(
        badges={"awaiting_review": "danger", "confirmed": "dark", "released": "muted", "expired": "light"}
    )
    created = tables.DateTimeColumn(format="Y-m-d H:i", verbose_name="Blocked")
    expires_at = tables.DateTimeColumn(format="Y-m-d H:i", verbose_name="Expires", default="never")

    class Meta(BaseTable.Meta):
        model = DynamicBlacklistEntry
        fields = ("select", "subject", "rule", "severity", "figures", "evidence", "status", "scope", "mapping_gateway",
                  "created", "expires_at", "reviewed_by", "reviewed_at", "reason")  # fmt: skip
        sequence = ("select", "subject", "...", "actions")

    def render_subject(self, record):
        return str(record)

    def value_subject(self, record):
        return record.member


class BlacklistExemptionTable(BaseTable):
    subject = tables.Column(accessor="pk", verbose_name="Subject", linkify=True, order_by=("number", "account"))
    reason = TextColumn()
    entry = tables.Column(linkify=True, verbose_name="Released entry")
    until = tables.DateTimeColumn(format="Y-m-d H:i")
    created = tables.DateTimeColumn(format="Y-m-d H:i")

    class Meta(BaseTable.Meta):
        model = BlacklistExemption
        fields = ("subject", "subject_kind", "until", "scope", "mapping_gateway", "entry", "reason", "created_by",
                  "created")  # fmt: skip

    def render_subject(self, record):
        return record.number if record.subject_kind == "number" else str(record.account)

    def value_subject(self, record):
        return record.member


SEVERITY_BADGES = {"critical": "danger", "warning": "warning", "info": "light"}


SEVERITY_BADGES = {"critical": "danger", "warning": "warning", "info": "light"}


class AlarmStateColumn(tables.Column):
    """Open, acknowledged or cleared, as a badge: the state an operator scans the list for."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("accessor", "resolved_at")
        kwargs.setdefault("empty_values", ())
        kwargs.setdefault("verbose_name", "State")
        super().__init__(*args, **kwargs)

    def state(self, record):
        if record.resolved_at is not None:
            return "muted", "Cleared"
        if record.acknowledged_at is not None:
            return "dark", "Acknowledged"
        return "danger", "Open"

    def render(self, record):
        css, label = self.state(record)
        return format_html('<span class="badge badge-{}">{}</span>', css, label)

    def value(self, record):
        return self.state(record)[1]


class AlarmTable(BaseTable):
    select = tables.CheckBoxColumn(
        accessor="pk",
        attrs={
            "th__input": {"class": "select-all", "aria-label": "Select every alarm shown"},
            # Ticked rows are posted by the bulk-action form above the table (templates/security/alarm_list.html).
            "td__input": {"name": "pk", "form": "alarm-actions", "aria-label": "Select this alarm"},
        },
        exclude_from_export=True,
    )
    severity = ChoiceColumn(badges=SEVERITY_BADGES)
    kind = tables.Column(linkify=True)
    subject = tables.Column(
        accessor="subject_label", order_by=("subject_kind", "subject"), linkify=False, attrs={"td": {"class": "wrap"}}
    )
    rule = tables.Column(verbose_name="Fraud rule")
    count = NumberColumn(verbose_name="Seen")
    state = AlarmStateColumn(order_by=("resolved_at", "acknowledged_at"))
    first_seen = DateTimeColumn(format="Y-m-d H:i", verbose_name="Raised")
    last_seen = DateTimeColumn(format="Y-m-d H:i", verbose_name="Last seen")

    class Meta(BaseTable.Meta):
        model = Alarm
        fields = (
            "select",
            "severity",
            "kind",
            "subject",
            "rule",
            "count",
            "state",
            "last_seen",
            "first_seen",
            "acknowledged_by",
        )
        exclude = ("actions",)
        row_attrs = {"class": lambda record: "row-alert" if record.is_open and record.severity == "critical" else ""}

    def render_subject(self, value, record):
        # What the subject is (a source IP, a node) beside it: the cell is read without its own column.
        kind = record.get_subject_kind_display()
        url = record.subject_link
        if url:
            return format_html('<a href="{}">{}</a> <span class="muted">{}</span>', url, value, kind)
        return format_html('<span class="mono">{}</span> <span class="muted">{}</span>', value, kind)

    def value_subject(self, value):
        return value
