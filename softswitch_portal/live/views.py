"""The live pages: current calls (refreshed in place by htmx), forced disconnect, registered phones, statistics."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.core.paginator import EmptyPage, PageNotAnInteger
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View
from django_tables2 import RequestConfig
from redis import RedisError

from softswitch_portal.generic.charts import svg_chart
from softswitch_portal.switching.models import Phone

from . import calls, forms, registrations, stats, tables

VIEW_CALLS = "live.view_livecall"
DISCONNECT = "live.disconnect_livecall"
# How often the current calls refresh themselves (htmx polling), in seconds.
REFRESH_S = 3


def operator_name(request, channel="portal"):
    """Who asked, as the CDR records it: ``portal:<user>``, ``api:<user>``, or ``api:<user> (<API client>)``."""
    name = request.user.get_username()
    client_name = getattr(getattr(request, "auth", None), "name", None)
    return f"{channel}:{name} ({client_name})" if client_name else f"{channel}:{name}"


class PermissionView(LoginRequiredMixin, View):
    permission = None

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not request.user.has_perm(self.permission):
            raise PermissionDenied("You may not see this page.")
        return super().dispatch(request, *args, **kwargs)


def paginate(request, table):
    try:
        per_page = max(1, min(int(request.GET.get("per_page", settings.PAGINATE_BY)), 1000))
        page = int(request.GET.get("page", 1))
    except ValueError:
        per_page, page = settings.PAGINATE_BY, 1
    try:
        table.paginate(page=page, per_page=per_page)
    except (EmptyPage, PageNotAnInteger):
        table.paginate(page=1, per_page=per_page)


class CurrentCallsView(PermissionView):
    """Every live call on every node; the table and the counters below it refresh every few seconds."""

    permission = VIEW_CALLS

    def get(self, request):
        form = forms.CurrentCallFilterForm(request.GET or None)
        valid = form.is_valid() if form.is_bound else True
        error, rows, summary = None, [], {}
        now = calls.now_ms()
        try:
            answered = {}
            found = calls.live_calls(answered)
            every = calls.call_rows(found, answered, now)
        except RedisError as exc:
            error, every = f"The live state did not answer: {exc}", []
        rows = calls.filter_rows(every, **form.filters()) if valid and form.is_bound else every
        if not valid:
            rows = []
        summary = calls.concurrency(rows, now)
        table = tables.CurrentCallTable(rows, can_disconnect=request.user.has_perm(DISCONNECT))
        RequestConfig(request, paginate=False).configure(table)
        paginate(request, table)
        context = {
            "form": form,
            "filters_invalid": not valid,
            "is_filtered": form.is_bound,
            "table": table,
            "error": error,
            "total": len(every),
            "shown": len(rows),
            "answered": sum(1 for row in rows if row["answer_ms"]),
            "nodes": calls.nodes_of(every),
            "cps_window": calls.CPS_WINDOW_S,
            "mapping_table": tables.ConcurrencyTable(
                summary["mapping"], title="Mapping gateway", detail="switching:mappinggateway"
            ),
            "routing_table": tables.ConcurrencyTable(
                summary["routing"], title="Routing gateway", detail="switching:routinggateway"
            ),
            "account_table": tables.ConcurrencyTable(summary["account"], title="Account", detail="billing:account"),
            "refresh_s": REFRESH_S,
            "refresh_url": request.get_full_path(),
        }
        # htmx asks for the live part alone; a browser without it gets the whole page.
        template = "live/_current_calls.html" if request.headers.get("HX-Request") else "live/current_calls.html"
        return render(request, template, context)


class DisconnectView(PermissionView):
    """Ask the node holding a call to end it: BYE both ways, or cancelled while setting up; end reason
    operator_disconnect, who asked."""

    permission = DISCONNECT

    def post(self, request):
        call_id = request.POST.get("call_id", "").strip()
        back = reverse("live:current_calls")
        if not call_id or len(call_id) > 500:
            messages.error(request, "Say which call to end (its Call-ID).")
            return redirect(back)
        try:
            node = calls.request_disconnect(call_id, operator_name(request))
        except calls.DisconnectError as exc:
            messages.error(request, str(exc))
        except RedisError as exc:
            messages.error(request, f"The live state did not answer: {exc}")
        else:
            messages.success(request, f"Asked {node} to end the call {call_id}: its CDR will say you did.")
        return redirect(back)


class RegistrationsView(PermissionView):
    """The phones registered now, on every node."""

    permission = "switching.view_phone"

    def get(self, request):
        form = forms.RegistrationFilterForm(request.GET or None)
        error, rows = None, []
        try:
            rows = registrations.registrations(calls.now_ms())
        except RedisError as exc:
            error = f"The live state did not answer: {exc}"
        total = len(rows)
        if form.is_bound and form.is_valid():
            text, ip, node = (form.cleaned_data[k].strip() for k in ("q", "source_ip", "node"))
            rows = [
                r
                for r in rows
                if (not text or text in r["phone"] or text in r["contact"])
                and (not ip or ip in r["source_ip"])
                and (not node or r["node"] == node)
            ]
        elif form.is_bound:
            rows = []
        table = tables.RegistrationTable(rows)
        RequestConfig(request, paginate=False).configure(table)
        paginate(request, table)
        return render(
            request,
            "live/registrations.html",
            {
                "form": form,
                "table": table,
                "error": error,
                "total": total,
                "phones": Phone.objects.filter(enabled=True).count(),
                "is_filtered": form.is_bound,
                "filters_invalid": form.is_bound and not form.is_valid(),
            },
        )


def hourly_charts(hours):
    """The hourly figures as charts: attempts, ASR, ACD and minutes."""
    labels = [h["hour"].strftime("%d %H:00") for h in hours]
    charts = []
    for key, title, kind, unit in (
        ("attempts", "Attempts", "bar", ""),
        ("asr", "ASR", "line", "%"),
        ("acd", "ACD", "line", "s"),
        ("minutes", "Minutes", "bar", ""),
    ):
        points = list(zip(labels, [h[key] for h in hours], strict=True))
        charts.append({"title": title, "unit": unit, "svg": svg_chart(points, kind=kind, title=title, unit=unit)})
    return charts


class StatisticsView(PermissionView):
    """Per gateway over the last 5, 15 and 60 minutes, and per hour over days with charts, from the CDRs."""

    permission = "billing.view_cdr"

    def get(self, request):
        form = forms.StatisticsForm(request.GET or None)
        data = form.cleaned_data if form.is_bound and form.is_valid() else {}
        side = data.get("side") or stats.MAPPING
        days = data.get("days") or 2
        gateway, gateway_side = None, stats.MAPPING
        if data.get("routing_gateway"):
            gateway, gateway_side = data["routing_gateway"], stats.ROUTING
        elif data.get("mapping_gateway"):
            gateway = data["mapping_gateway"]
        hours = stats.hourly(days=days, side=gateway_side, gateway=gateway)
        detail = "switching:mappinggateway" if side == stats.MAPPING else "switching:routinggateway"
        table = tables.GatewayStatsTable(stats.recent(side), detail=detail)
        RequestConfig(request, paginate=False).configure(table)
        hourly_table = tables.HourlyTable(hours, prefix="h-")
        RequestConfig(request, paginate=False).configure(hourly_table)
        return render(
            request,
            "live/statistics.html",
            {
                "form": form,
                "filters_invalid": form.is_bound and not form.is_valid(),
                "table": table,
                "side": side,
                "gateway": gateway,
                "days": days,
                "charts": hourly_charts(hours),
                "hourly_table": hourly_table,
                "cdrs_url": reverse("billing:cdr_list"),
            },
        )
