"""Switching list tables."""

from functools import cached_property

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html

from billing import route_stats
from softswitch_portal.generic.tables import (
    ArrayColumn,
    BaseTable,
    BooleanColumn,
    ChoiceColumn,
    DateTimeColumn,
    ManyToManyColumn,
    NumberColumn,
    PageInfoMixin,
    TextColumn,
)

from .choices import WEEKDAYS, TestCallStatus
from .models import (
    CallerNumberPool,
    MappingGateway,
    NumberTransformRule,
    Phone,
    RoutingGateway,
    RoutingSchedule,
    TestCall,
)


class MappingGatewayTable(BaseTable):
    name = tables.Column(linkify=True)
    account = tables.Column(linkify=True)
    remote_ips = ArrayColumn(verbose_name="Remote IPs")
    capacity = NumberColumn()
    cps_limit = NumberColumn(verbose_name="CPS")
    conversation_limit = NumberColumn(verbose_name="Max s")
    enabled = BooleanColumn()

    class Meta(BaseTable.Meta):
        model = MappingGateway
        fields = (
            "name",
            "account",
            "remote_ips",
            "auth_mode",
            "capacity",
            "cps_limit",
            "conversation_limit",
            "route_policy",
            "enabled",
        )


class RouteAsrColumn(tables.Column):
    """A routing gateway's ASR and attempts as the Best ASR route policy sees them now (``table.route_asr``)."""

    def __init__(self, *args, **kwargs):
        # Not sortable: the figures are in Redis, not in the rows the database sorts.
        kwargs.update(empty_values=(), orderable=False, exclude_from_export=True)
        super().__init__(*args, **kwargs)

    def render(self, record, table):
        figures = table.route_asr.gateways.get(record.pk) if table.route_asr is not None else None
        if not figures:
            return "—"
        return route_stats.asr_text(*figures)


class RoutingGatewayTable(BaseTable):
    name = tables.Column(linkify=True)
    host = tables.Column(verbose_name="Host:port", order_by=("host", "port"), attrs={"td": {"class": "mono"}})
    prefixes = ArrayColumn()
    priority = NumberColumn()
    asr = RouteAsrColumn(
        verbose_name="Recent ASR",
        attrs={
            "td": {"class": "num"},
            "th": {
                "class": "num",
                "title": "Connected calls / attempts over the last SS_ROUTE_ASR_WINDOW_MINUTES, "
                "as the Best ASR route policy ranks this gateway now",
            },
        },
    )
    capacity = NumberColumn()
    cps_limit = NumberColumn(verbose_name="CPS")
    clearing_account = tables.Column(linkify=True)
    schedules = ManyToManyColumn()
    enabled = BooleanColumn()

    class Meta(BaseTable.Meta):
        model = RoutingGateway
        fields = (
            "name",
            "host",
            "transport",
            "prefixes",
            "tech_prefix",
            "priority",
            "capacity",
            "cps_limit",
            "clearing_account",
            "schedules",
            "enabled",
        )
        sequence = ("name", "host", "transport", "prefixes", "tech_prefix", "priority", "asr", "...", "actions")

    @cached_property
    def route_asr(self):
        """The published figures, read once for the whole table (None when nothing is published)."""
        return route_stats.published()

    def render_host(self, record):
        return f"{record.host}:{record.port}"


class PhoneTable(BaseTable):
    description = TextColumn()
    username = tables.Column(linkify=True, attrs={"td": {"class": "mono"}})
    account = tables.Column(linkify=True)
    capacity = NumberColumn(verbose_name="Lines")
    allowed_networks = ArrayColumn()
    allowed_countries = ArrayColumn()
    enabled = BooleanColumn()

    class Meta(BaseTable.Meta):
        model = Phone
        fields = ("username", "account", "capacity", "allowed_networks", "allowed_countries", "enabled", "description")


class NumberTransformRuleTable(BaseTable):
    description = TextColumn()
    name = tables.Column(linkify=True)
    priority = NumberColumn()
    match_prefix = tables.Column(attrs={"td": {"class": "mono"}})
    length = tables.Column(empty_values=(), order_by=("min_length", "max_length"), verbose_name="Length")
    strip_digits = NumberColumn(verbose_name="Strip")
    prepend = tables.Column(attrs={"td": {"class": "mono"}})

    class Meta(BaseTable.Meta):
        model = NumberTransformRule
        fields = ("name", "target", "priority", "match_prefix", "length", "strip_digits", "prepend", "description")

    def render_length(self, record):
        if not record.min_length and not record.max_length:
            return "any"
        return f"{record.min_length}–{record.max_length or '∞'}"


class RoutingScheduleTable(BaseTable):
    description = TextColumn()
    name = tables.Column(linkify=True)
    weekdays = tables.Column(empty_values=(), orderable=False, verbose_name="Days")
    start_time = tables.TimeColumn(format="H:i")
    end_time = tables.TimeColumn(format="H:i")

    class Meta(BaseTable.Meta):
        model = RoutingSchedule
        fields = ("name", "weekdays", "start_time", "end_time", "description")

    def render_weekdays(self, value):

        if not value:
            return "Every day"
        names = dict(WEEKDAYS)
        return ", ".join(names.get(day, str(day)) for day in value)


class CallerNumberPoolTable(BaseTable):
    description = TextColumn()
    name = tables.Column(linkify=True)
    numbers = ArrayColumn()
    size = tables.Column(empty_values=(), orderable=False, verbose_name="Numbers", attrs={"td": {"class": "num"}})

    class Meta(BaseTable.Meta):
        model = CallerNumberPool
        fields = ("name", "mode", "size", "numbers", "description")

    def render_size(self, record):
        return len(record.numbers)


class SystemParameterTable(PageInfoMixin, tables.Table):
    """Every declared parameter, whether or not the database holds a value for it (rows are dicts)."""

    name = tables.Column(attrs={"td": {"class": "mono"}})
    value = tables.Column(attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    default = tables.Column(attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    allowed = tables.Column(verbose_name="Range", orderable=False)
    description = TextColumn(orderable=False, length=300)
    updated = tables.DateTimeColumn(format="Y-m-d H:i")
    actions = tables.Column(empty_values=(), orderable=False, verbose_name="", exclude_from_export=True)

    class Meta:
        attrs = {"class": "table table-hover"}
        template_name = "generic/table.html"
        empty_text = "No system parameters match."
        row_attrs = {"class": lambda record: "row-changed" if record["changed"] else ""}

    def render_name(self, value, record):
        if record["pk"]:
            url = reverse("switching:systemparameter", args=[record["pk"]])
            return format_html('<a href="{}">{}</a>', url, value)
        return value

    def render_value(self, value, record):
        if not record["declared"]:
            return format_html('{} <span class="badge badge-danger">unknown parameter</span>', value)
        if record["changed"]:
            return format_html("<strong>{}</strong>", value)
        return value

    def render_actions(self, record):
        if not record["edit_url"]:
            return ""
        label = "Edit" if record["pk"] else "Set"
        return format_html('<a class="btn btn-xs" href="{}">{}</a>', record["edit_url"], label)


def gateway_page(record):
    # By id, not record.gateway: no query per row; a deleted gateway keeps its name and no link.
    return reverse("switching:routinggateway", args=[record.gateway_id]) if record.gateway_id else None


def ms(value):
    return f"{value} ms"


class TestCallTable(BaseTable):
    """Operators' test calls: each row links to its result page."""

    created = DateTimeColumn(verbose_name="When", linkify=True)
    gateway = tables.Column(accessor="gateway_name", verbose_name="Gateway", linkify=gateway_page)
    number = tables.Column(attrs={"td": {"class": "mono"}})
    status = ChoiceColumn(badges={TestCallStatus.FAILED: "danger", TestCallStatus.RUNNING: "warning"})
    sip_status = tables.Column(verbose_name="SIP answer")
    pdd_ms = NumberColumn(verbose_name="PDD")
    talk_ms = NumberColumn(verbose_name="Talk")
    audio_heard = tables.Column(
        verbose_name="Audio heard",
        attrs={"th": {"title": "Whether the agent heard sound from the vendor (a tone, or any audio)"}},
    )
    rtp_tx_packets = NumberColumn(
        verbose_name="RTP out",
        attrs={"td": {"class": "num"}, "th": {"class": "num", "title": "Packets sent to the vendor, and lost"}},
    )
    rtp_rx_packets = NumberColumn(
        verbose_name="RTP in",
        attrs={"td": {"class": "num"}, "th": {"class": "num", "title": "Packets received from the vendor, and lost"}},
    )
    requested_by = tables.Column(verbose_name="Placed by", order_by=("requested_by__username",))

    class Meta(BaseTable.Meta):
        model = TestCall
        fields = (
            "created",
            "gateway",
            "number",
            "status",
            "sip_status",
            "pdd_ms",
            "talk_ms",
            "audio_heard",
            "rtp_tx_packets",
            "rtp_rx_packets",
            "requested_by",
        )
        exclude = ("actions",)
        empty_text = "No test calls found: place one from a routing gateway's page."

    def render_sip_status(self, value, record):
        return format_html('<span title="{}">{} {}</span>', record.sip_reason, value, record.sip_reason)

    def render_pdd_ms(self, value):
        return ms(value)

    def render_talk_ms(self, value):
        return ms(value)

    def render_audio_heard(self, value, record):
        if value:
            return format_html('<span class="badge badge-yes">{}</span>', record.audio_verdict or "heard")
        return format_html('<span class="badge badge-danger">{}</span>', record.audio_verdict or "no audio")

    def render_rtp_tx_packets(self, value, record):
        return packets(value, record.rtp_tx_loss)

    def render_rtp_rx_packets(self, value, record):
        return packets(value, record.rtp_rx_loss)


def packets(count, lost):
    if lost is None or lost <= 0:  # duplicated packets count as negative loss: nothing was lost
        return count
    return format_html('{} <span class="negative" title="lost">−{}</span>', count, lost)
