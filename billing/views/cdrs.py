"""CDR pages: the list (keyset pages, totals over a bounded window) and the detail with its decision trace."""

import datetime as dt

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django_tables2.paginators import LazyPaginator

from callcore.contract import END_REASONS_BY_CODE, BillingMode
from callcore.contract.trace import LimitSource, Skip, decode_trace
from softswitch_portal.generic import views as generic
from softswitch_portal.generic.keyset import keyset_page
from softswitch_portal.switching.models import RoutingGateway

from .. import filtersets, reports, tables
from ..models import CDR

# CDRs: read-only. The gateways and accounts may be gone (no database constraints),
# so pages show the names copied into the CDR; on the detail page, select_related
# turns a dangling id into None instead of a DoesNotExist on access.

CDR_RELATED = ("account", "vendor_account", "mapping_gateway", "routing_gateway", "phone")

# The sort orders served by keyset pages (sort parameter -> descending); any other column pages by offset.
KEYSET_SORTS = {"": True, "-start_time": True, "start_time": False}

# Totals of the filtered set cost one aggregate over every matching row. The rule: only when the
# filters bound the start time to a window of at most TOTALS_MAX_WINDOW (from "Start from" to
# "Start before", or to now when "Start before" is empty). PostgreSQL then reads only that
# window's day partitions; an account, gateway or caller IP filter narrows it further to an
# index range. Without a window the aggregate would read every partition (months of CDRs) on
# every page view, so the page asks for one instead. bench/cdr_query.py times the bounded cases.
TOTALS_MAX_WINDOW = dt.timedelta(days=7)
QUICK_RANGES = (
    ("Last hour", dt.timedelta(hours=1)),
    ("Last 24 hours", dt.timedelta(days=1)),
    ("Last 7 days", TOTALS_MAX_WINDOW),
)


def totals_window(filterset):
    """The start-time window the filters bound, or None when they bound none."""
    if filterset is None or not filterset.is_bound or not filterset.is_valid():
        return None
    after = filterset.form.cleaned_data.get("start_time_after")
    before = filterset.form.cleaned_data.get("start_time_before") or timezone.now()
    if after is None:
        return None
    return max(before - after, dt.timedelta(0))


class CDRListView(generic.ObjectListView):
    # No joins: the table shows the names copied into each CDR, never the related rows.
    queryset = CDR.objects.all()
    filterset = filtersets.CDRFilterSet
    table = tables.CDRTable
    template_name = "billing/cdr_list.html"
    # Sorted by another column than the start time, pages are numbered (OFFSET); counting a
    # month of CDRs on every page view costs more than the page, so show next/previous only.
    paginator_class = LazyPaginator
    primary_filters = (
        "start_time_after",
        "start_time_before",
        "billing_mode",
        "account",
        "mapping_gateway",
        "routing_gateway",
        "caller_prefix",
        "callee_prefix",
        "caller_ip",
        "end_direction",
        "end_reason",
        "sip_status",
    )
    keyset = None

    def get_table_data(self, request, queryset):
        descending = KEYSET_SORTS.get(request.GET.get("sort", ""))
        if descending is None:
            return queryset
        self.keyset = keyset_page(
            queryset,
            "start_time",
            descending=descending,
            per_page=self.per_page(request),
            after=request.GET.get("after"),
            before=request.GET.get("before"),
        )
        return self.keyset.rows

    def paginate(self, request, table):
        if self.keyset is None:
            super().paginate(request, table)
        else:
            table.keyset = self.keyset

    def get_extra_context(self, request, queryset, filterset):
        window = totals_window(filterset)
        totals = None
        if window is not None and window <= TOTALS_MAX_WINDOW:
            totals = reports.totals_of(queryset)
        return {
            "keyset": self.keyset,
            "totals": totals,
            "totals_window_too_long": window is not None and window > TOTALS_MAX_WINDOW,
            "totals_max_days": TOTALS_MAX_WINDOW.days,
            "quick_ranges": self.quick_ranges(request) if totals is None else (),
        }

    def quick_ranges(self, request):
        """Links that keep the filters and set a window short enough for totals."""
        now = timezone.localtime()
        links = []
        for label, delta in QUICK_RANGES:
            query = request.GET.copy()
            for name in ("start_time_before", "after", "before", "page", "export"):
                query.pop(name, None)
            # Rounded up to the minute the form keeps, so "Last 7 days" stays within the totals window.
            start = (now - delta).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
            query["start_time_after"] = start.strftime("%Y-%m-%dT%H:%M")
            links.append((label, f"?{query.urlencode()}"))
        return links


# Reason phrases of the SIP answers a CDR holds (RFC 3261 section 21), for the decision trace.
SIP_PHRASES = {
    100: "Trying",
    180: "Ringing",
    183: "Session Progress",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    480: "Temporarily Unavailable",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    500: "Server Internal Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    600: "Busy Everywhere",
    603: "Decline",
}


def sip_answer(status):
    if not status:
        return ""
    phrase = SIP_PHRASES.get(status, "")
    return f"{status} {phrase}".strip()


def decision_trace(cdr):
    """The vendors the switch tried for the call, in order, each with its answer and what followed."""
    tried = [entry for entry in cdr.vendors_tried or [] if isinstance(entry, dict)]
    ids = {entry.get("gateway_id") for entry in tried if isinstance(entry.get("gateway_id"), int)}
    # One query for all: a vendor tried may have been deleted since (its name stays in the CDR).
    existing = set(RoutingGateway.objects.filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
    vendors = []
    for order, entry in enumerate(tried, start=1):
        status = entry.get("status")
        if status == 200:
            outcome, css = "Answered", "yes"
        elif order < len(tried):
            outcome, css = "Failed: tried the next vendor", "warning"
        else:
            outcome, css = "Final answer", "danger"
        gateway_id = entry.get("gateway_id")
        vendors.append(
            {
                "order": order,
                "gateway": entry.get("gateway") or (f"#{gateway_id}" if gateway_id else "—"),
                "url": reverse("switching:routinggateway", args=[gateway_id]) if gateway_id in existing else None,
                "deleted": gateway_id is not None and gateway_id not in existing,
                "ip": entry.get("ip") or "",
                "status": sip_answer(status) or "no answer",
                "outcome": outcome,
                "css": css,
            }
        )
    return vendors


LIMIT_SOURCES = {
    LimitSource.DEFAULT: "SS_DEFAULT_MAX_DURATION (no conversation limit)",
    LimitSource.MAPPING_GATEWAY: "the mapping gateway's conversation limit",
    LimitSource.ROUTE: "the first vendor's conversation limit",
}
SKIP_LABELS = {skip.value: skip.label for skip in Skip}


def routing_decision(cdr):
    """The CDR's decision trace for the page: the policy, the vendors planned and those skipped with why."""
    if not cdr.decision_trace:
        return None
    trace = decode_trace(cdr.decision_trace)
    ids = set(trace.routes) | set(trace.busy) | {gateway for gateway, _ in trace.skipped}
    names = dict(RoutingGateway.objects.filter(pk__in=ids).values_list("pk", "name")) if ids else {}

    def gateway(pk):
        return {
            "name": names.get(pk, f"#{pk}"),
            "url": reverse("switching:routinggateway", args=[pk]) if pk in names else None,
        }

    skipped = []
    for pk, code in trace.skipped:
        skipped.append({**gateway(pk), "reason": code, "why": SKIP_LABELS.get(code, code)})
    for pk in trace.busy:
        skipped.append({**gateway(pk), "reason": Skip.BUSY.value, "why": Skip.BUSY.label})
    return {
        "policy": trace.policy,
        "routes": [gateway(pk) for pk in trace.routes],
        "skipped": skipped,
        "max_duration_s": trace.max_duration_s,
        "max_by": LIMIT_SOURCES.get(trace.max_by, trace.max_by),
    }


class CDRView(generic.ObjectView):
    queryset = CDR.objects.select_related(*CDR_RELATED)
    fieldsets = (
        # First and across the page: what the switch decided, and why the call ended.
        (
            "Decision trace",
            ("billing_mode", "end_reason", "sip_status", "end_direction", "disconnected_by", "vendors_tried"),
        ),
        ("Routing decision", ("decision_trace",)),
        (
            "Call",
            (
                "call_uuid",
                "start_time",
                "answer_time",
                "stop_time",
                "hold_time_ms",
                "hold_seconds",
                "fee_time",
                "estimated",
                "pdd_ms",
            ),
        ),
        (
            "Numbers",
            ("caller_number", "callee_number", "callee_number_routed", "caller_number_out", "callee_number_out"),
        ),
        (
            "Source",
            ("caller_ip", "caller_port", "caller_user_agent", "mapping_gateway", "mapping_gateway_name", "phone"),
        ),
        ("Customer", ("account", "account_name", "fee", "rate_prefix", "rate_area")),
        (
            "Vendor",
            (
                "routing_gateway",
                "routing_gateway_name",
                "vendor_ip",
                "vendor_account",
                "vendor_cost",
                "vendor_rate_prefix",
                "vendor_rate_area",
            ),
        ),
        ("Signalling", ("caller_call_id", "callee_call_id", "node", "snapshot_version", "ingested", "id")),
    )

    def render_fieldsets(self, obj):
        panels = super().render_fieldsets(obj)
        reason = END_REASONS_BY_CODE.get(obj.end_reason)
        try:
            mode = BillingMode(obj.billing_mode)
        except ValueError:
            mode = None
        badge = {BillingMode.ILLEGAL: "badge-danger", BillingMode.NOT_BILLED: "badge-muted"}.get(mode, "badge-light")
        trace = {
            "billing_mode": format_html(
                '<span class="badge {}">{}</span> <span class="muted mono">({})</span>',
                badge,
                mode.label if mode is not None else "Unknown",
                obj.billing_mode,
            ),
            "end_reason": format_html(
                '<strong>{}</strong> <span class="muted mono">{}</span>', reason.description, reason.code
            )
            if reason
            else obj.end_reason or None,
            "sip_status": format_html('<span class="mono">{}</span>', sip_answer(obj.sip_status))
            if obj.sip_status
            else None,
            "vendors_tried": render_to_string("billing/cdr_vendors_tried.html", {"vendors": decision_trace(obj)}),
            "decision_trace": render_to_string("billing/cdr_decision_trace.html", {"trace": routing_decision(obj)}),
        }
        for panel in panels:
            for row in panel["rows"]:
                if trace.get(row["name"]) is not None:
                    row["value"] = trace[row["name"]]
        panels[0]["wide"] = True
        panels[1]["wide"] = True
        return panels

    def get_extra_context(self, request, obj):
        list_url = reverse("billing:cdr_list")
        buttons = []
        if obj.caller_ip:
            buttons.append(("Calls from this IP", f"{list_url}?{urlencode({'caller_ip': obj.caller_ip})}", ""))
        if obj.caller_number:
            buttons.append(
                ("Calls from this caller", f"{list_url}?{urlencode({'caller_prefix': obj.caller_number})}", "")
            )
        return {"extra_buttons": buttons, "object_title": f"CDR {obj.call_uuid}"}
