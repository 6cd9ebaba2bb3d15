"""The live pages' tables: rows are dicts (from Redis or an aggregate), sorted by django-tables2 in Python."""

import django_tables2 as tables
from django.middleware.csrf import get_token
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.timezone import template_localtime

from softswitch_portal.generic.tables import DateTimeColumn, NumberColumn, PageInfoMixin

ANSWERED = mark_safe('<span class="badge badge-yes">Answered</span>')
SETTING_UP = mark_safe('<span class="badge badge-light" title="Set up, not answered yet">Setting up</span>')


def duration(seconds):
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class TimeColumn(tables.Column):
    """A local time of day (the date when not today's); "—" for none."""

    def __init__(self, *args, fmt="H:i:s", **kwargs):
        self.fmt = fmt
        kwargs.setdefault("attrs", {"td": {"class": "nowrap"}})
        super().__init__(*args, **kwargs)

    def render(self, value):
        return date_format(template_localtime(value), self.fmt) if value else "—"


class DictTable(PageInfoMixin, tables.Table):
    class Meta:
        attrs = {"class": "table table-hover"}
        template_name = "generic/table.html"


def _link(name, pk, text):
    return format_html('<a href="{}">{}</a>', reverse(name, args=[pk]), text) if pk else text or "—"


class CurrentCallTable(DictTable):
    start = TimeColumn(verbose_name="Start")
    answer = TimeColumn(verbose_name="Answer", empty_values=())
    duration_s = NumberColumn(verbose_name="Duration")
    state = tables.Column()
    caller = tables.Column(verbose_name="Caller")
    callee = tables.Column(verbose_name="Callee in")
    callee_out = tables.Column(verbose_name="Callee sent", default="—")
    mapping_gateway = tables.Column(verbose_name="Mapping gateway", order_by=("mapping_gateway",))
    routing_gateway = tables.Column(verbose_name="Routing gateway", default="—")
    account = tables.Column()
    node = tables.Column()
    disconnect = tables.Column(empty_values=(), orderable=False, verbose_name="", exclude_from_export=True)

    class Meta(DictTable.Meta):
        empty_text = "No calls in progress."
        # The action first: on a narrow screen the table scrolls, and the button must not scroll away.
        sequence = ("disconnect", "...")
        order_by = ("-start",)
        row_attrs = {"data-call-id": lambda record: record["call_id"]}

    def __init__(self, *args, can_disconnect=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.can_disconnect = can_disconnect
        if not can_disconnect:
            self.columns.hide("disconnect")

    def render_duration_s(self, value, record):
        text = duration(value)
        return text if record["answer_ms"] else format_html('<span class="muted" title="ringing">{}</span>', text)

    def render_state(self, value):
        if value == "answered":
            return ANSWERED
        return SETTING_UP

    def render_callee(self, value, record):
        if record["callee_routed"] and record["callee_routed"] != value:
            return format_html('{} <span class="muted" title="routed on">→ {}</span>', value, record["callee_routed"])
        return value

    def render_mapping_gateway(self, value, record):
        return _link("switching:mappinggateway", record["mapping_gateway_id"], value)

    def render_routing_gateway(self, value, record):
        link = _link("switching:routinggateway", record["routing_gateway_id"], value)
        if record["answer_ms"] or not record["routing_gateway_id"]:
            return link
        return format_html('{} <span class="muted">trying</span>', link)

    def render_account(self, value, record):
        return _link("billing:account", record["account_id"], value)

    def render_disconnect(self, record):
        # Answered: BYE both ways; still setting up: cancelled, no other vendor tried.
        title = "BYE both ways, now" if record["answer_ms"] else "Cancel it now: no other vendor is tried"
        return format_html(
            '<form method="post" action="{}" class="inline-form">'
            '<input type="hidden" name="csrfmiddlewaretoken" value="{}">'
            '<input type="hidden" name="call_id" value="{}">'
            '<button type="submit" class="btn btn-xs btn-danger-outline" title="{}">Disconnect</button>'
            "</form>",
            reverse("live:disconnect"),
            get_token(self.request),
            record["call_id"],
            title,
        )


class ConcurrencyTable(DictTable):
    name = tables.Column(verbose_name="Name")
    calls = NumberColumn(verbose_name="Calls")
    answered = NumberColumn(verbose_name="Answered")
    cps = NumberColumn(verbose_name="CPS")

    class Meta(DictTable.Meta):
        empty_text = "None."
        order_by = ("-calls",)

    def __init__(self, *args, detail=None, title="", **kwargs):
        super().__init__(*args, **kwargs)
        self.detail = detail
        self.columns["name"].column.verbose_name = title

    def render_name(self, value, record):
        return _link(self.detail, record["id"], value) if self.detail else value


class RegistrationTable(DictTable):
    phone = tables.Column(verbose_name="Phone")
    account = tables.Column(default="—")
    contact = tables.Column(attrs={"td": {"class": "mono wrap"}})
    source = tables.Column(verbose_name="Source", order_by=("source_ip",))
    transport = tables.Column()
    user_agent = tables.Column(verbose_name="User agent", default="—")
    registered = DateTimeColumn(verbose_name="Registered")
    expires = DateTimeColumn(verbose_name="Expires")
    expires_in_s = NumberColumn(verbose_name="Left")
    node = tables.Column()

    class Meta(DictTable.Meta):
        empty_text = "No phone is registered."
        order_by = ("phone",)

    def render_phone(self, value, record):
        return _link("switching:phone", record["phone_id"], value)

    def render_expires_in_s(self, value):
        return duration(value)


def _figure(value, unit=""):
    return "—" if value is None else f"{value}{unit}"


class GatewayStatsTable(DictTable):
    """One row per gateway and window (5, 15, 60 minutes): attempts, connected, ASR, NER, ACD, PDD, minutes."""

    name = tables.Column(verbose_name="Gateway")
    window = tables.Column(verbose_name="Last", attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    attempts = NumberColumn()
    connected = NumberColumn()
    asr = NumberColumn(verbose_name="ASR %", default="—")
    ner = NumberColumn(verbose_name="NER %", default="—")
    acd = NumberColumn(verbose_name="ACD s", default="—")
    pdd = NumberColumn(verbose_name="PDD s", default="—")
    minutes = NumberColumn()

    class Meta(DictTable.Meta):
        empty_text = "No traffic in the last hour."
        row_attrs = {"class": lambda record: "window-first" if record["window"] == min(record["windows"]) else ""}

    def __init__(self, data, *args, detail=None, **kwargs):
        rows = [
            {"id": row["id"], "name": row["name"], "window": minutes, "windows": tuple(row["windows"]), **figures}
            for row in data
            for minutes, figures in row["windows"].items()
        ]
        super().__init__(rows, *args, **kwargs)
        self.detail = detail

    def render_name(self, value, record):
        return _link(self.detail, record["id"], value) if self.detail else value

    def render_window(self, value):
        return f"{value} min"


class HourlyTable(DictTable):
    hour = TimeColumn(fmt="D d M H:00", verbose_name="Hour")
    attempts = NumberColumn()
    connected = NumberColumn()
    asr = NumberColumn(verbose_name="ASR %", default="—")
    ner = NumberColumn(verbose_name="NER %", default="—")
    acd = NumberColumn(verbose_name="ACD s", default="—")
    pdd = NumberColumn(verbose_name="PDD s", default="—")
    minutes = NumberColumn()

    class Meta(DictTable.Meta):
        order_by = ("-hour",)
