"""Billing pages: declarations on the generic views, plus the payment and rate-import steps."""

import datetime as dt
import io

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.core.paginator import EmptyPage, PageNotAnInteger
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.views import View
from django_tables2 import RequestConfig
from django_tables2.paginators import LazyPaginator

from callcore.contract import END_REASONS_BY_CODE, BillingMode
from softswitch_portal.generic import views as generic
from softswitch_portal.generic.export import format_cell, stream_csv
from softswitch_portal.generic.keyset import keyset_page
from softswitch_portal.generic.utils import user_can
from softswitch_portal.switching.models import MappingGateway, Phone, RoutingGateway
from softswitch_portal.switching.tables import MappingGatewayTable, PhoneTable, RoutingGatewayTable

from . import filtersets, forms, reports, tables
from .models import CDR, Account, Payment, Rate, RateTable
from .rate_import import COLUMNS, REQUIRED_COLUMNS, import_rates

# Accounts


class AccountListView(generic.ObjectListView):
    queryset = Account.objects.select_related("rate_table")
    filterset = filtersets.AccountFilterSet
    table = tables.AccountTable


class AccountView(generic.ObjectView):
    queryset = Account.objects.select_related("rate_table")
    fieldsets = (
        ("Account", ("name", "account_type", "rate_table", "description")),
        ("Money", ("balance", "credit_limit", "available", "low_balance_threshold")),
        ("Limits", ("anti_overdraft", "capacity", "locked")),
        ("Alarms", ("alarm_email",)),
        ("Record", ("id", "created", "updated")),
    )

    def get_extra_context(self, request, obj):
        buttons = []
        if user_can(request.user, Payment, "add"):
            buttons.append(("Add payment", f"{reverse('billing:payment_add')}?account={obj.pk}", "btn-primary"))
        # Where an operator goes next from an account: its money over time and its calls.
        buttons.append(("Balance history", f"{reverse('billing:balance_history')}?account={obj.pk}", ""))
        if user_can(request.user, CDR, "list"):
            buttons.append(("CDRs", f"{reverse('billing:cdr_list')}?account={obj.pk}", ""))
        return {
            "extra_buttons": buttons,
            "related_tables": [
                generic.related_table(
                    "Recent payments", tables.PaymentTable, obj.payments.all(), "billing:payment_list", account=obj.pk
                ),
                generic.related_table(
                    "Mapping gateways",
                    MappingGatewayTable,
                    MappingGateway.objects.filter(account=obj),
                    "switching:mappinggateway_list",
                    account=obj.pk,
                ),
                generic.related_table(
                    "Routing gateways (clearing account)",
                    RoutingGatewayTable,
                    RoutingGateway.objects.filter(clearing_account=obj),
                    "switching:routinggateway_list",
                    clearing_account=obj.pk,
                ),
                generic.related_table(
                    "Phones", PhoneTable, Phone.objects.filter(account=obj), "switching:phone_list", account=obj.pk
                ),
            ],
        }


class AccountEditView(generic.ObjectEditView):
    queryset = Account.objects.all()
    form = forms.AccountForm


class AccountDeleteView(generic.ObjectDeleteView):
    queryset = Account.objects.all()


# Payments: created only; a wrong payment is corrected by another payment, never edited.


class PaymentListView(generic.ObjectListView):
    queryset = Payment.objects.select_related("account", "created_by")
    filterset = filtersets.PaymentFilterSet
    table = tables.PaymentTable


class PaymentView(generic.ObjectView):
    queryset = Payment.objects.select_related("account", "created_by")
    fieldsets = (("Payment", ("account", "kind", "amount", "balance_after", "memo", "created_by", "created", "id")),)


class PaymentCreateView(generic.ObjectEditView):
    queryset = Payment.objects.all()
    form = forms.PaymentForm

    def save_form(self, request, form):
        # Imported here: billing.services owns every balance move and must not be bypassed by form.save().
        from billing.services import apply_payment

        data = form.cleaned_data
        return apply_payment(data["account"], data["kind"], data["amount"], request.user, memo=data["memo"])


# Rate tables and rates


class RateTableListView(generic.ObjectListView):
    queryset = RateTable.objects.annotate(
        rate_count=Count("rates", distinct=True), account_count=Count("accounts", distinct=True)
    )
    filterset = filtersets.RateTableFilterSet
    table = tables.RateTableTable


class RateTableView(generic.ObjectView):
    queryset = RateTable.objects.all()
    template_name = "billing/ratetable_detail.html"
    fieldsets = (("Rate table", ("name", "currency", "description", "created", "updated", "id")),)
    rates_shown = 50

    def get_extra_context(self, request, obj):
        rates = obj.rates.all()
        return {
            "import_form": forms.RateImportForm(),
            "import_url": reverse("billing:ratetable_import", args=[obj.pk]),
            "can_import": user_can(request.user, Rate, "add") and user_can(request.user, Rate, "edit"),
            "import_columns": COLUMNS,
            "required_columns": REQUIRED_COLUMNS,
            "extra_buttons": [("Add rate", f"{reverse('billing:rate_add')}?rate_table={obj.pk}", "btn-primary")]
            if user_can(request.user, Rate, "add")
            else [],
            "related_tables": [
                generic.related_table("Rates", tables.RatesTable, rates, "billing:rate_list", rate_table=obj.pk),
                generic.related_table(
                    "Accounts", tables.AccountTable, obj.accounts.all(), "billing:account_list", rate_table=obj.pk
                ),
            ],
        }


class RateTableEditView(generic.ObjectEditView):
    queryset = RateTable.objects.all()
    form = forms.RateTableForm


class RateTableDeleteView(generic.ObjectDeleteView):
    queryset = RateTable.objects.all()


class RateTableImportView(generic.BaseObjectView):
    """Upload a rate deck; show every bad row, or import all rows at once."""

    queryset = RateTable.objects.all()
    action = "edit"
    template_name = "billing/ratetable_import.html"
    errors_shown = 500

    def dispatch(self, request, *args, **kwargs):
        # Importing adds and replaces rates, so it needs both rights on rates too.
        if request.user.is_authenticated and not (
            user_can(request.user, Rate, "add") and user_can(request.user, Rate, "edit")
        ):
            raise PermissionDenied("You may not add or change rates.")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, pk):
        table = get_object_or_404(self.get_queryset(request), pk=pk)
        return self.render_page(request, table, forms.RateImportForm(), None)

    def post(self, request, pk):
        rate_table = get_object_or_404(self.get_queryset(request), pk=pk)
        form = forms.RateImportForm(request.POST, request.FILES)
        result = None
        if form.is_valid():
            try:
                # utf-8-sig: spreadsheets on Windows prefix a byte-order mark.
                text = form.cleaned_data["file"].read().decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                form.add_error("file", f"The file is not UTF-8 text (byte {exc.start}): save it as CSV UTF-8.")
            else:
                result = import_rates(rate_table, io.StringIO(text, newline=""))
                if result.ok:
                    messages.success(
                        request,
                        f"Imported {result.created + result.updated} rates into {rate_table}: "
                        f"{result.created} new, {result.updated} replaced.",
                    )
                    return redirect(rate_table.get_absolute_url())
        return self.render_page(request, rate_table, form, result)

    def render_page(self, request, rate_table, form, result):
        context = {
            **self.model_context(request),
            "object": rate_table,
            "form": form,
            "result": result,
            "errors": result.errors[: self.errors_shown] if result else [],
            "more_errors": max(0, len(result.errors) - self.errors_shown) if result else 0,
            "import_columns": COLUMNS,
            "required_columns": REQUIRED_COLUMNS,
            "cancel_url": rate_table.get_absolute_url(),
        }
        return render(request, self.template_name, context)


class RateListView(generic.ObjectListView):
    queryset = Rate.objects.select_related("rate_table")
    filterset = filtersets.RateFilterSet
    table = tables.RatesTable


class RateView(generic.ObjectView):
    queryset = Rate.objects.select_related("rate_table")
    fieldsets = (
        ("Rate", ("rate_table", "prefix", "area")),
        ("Price", ("price_per_minute", "first_period", "next_period", "connect_fee")),
        ("Validity", ("valid_from", "valid_to", "id")),
    )


class RateEditView(generic.ObjectEditView):
    queryset = Rate.objects.all()
    form = forms.RateForm


class RateDeleteView(generic.ObjectDeleteView):
    queryset = Rate.objects.all()


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


class CDRView(generic.ObjectView):
    queryset = CDR.objects.select_related(*CDR_RELATED)
    fieldsets = (
        # First and across the page: what the switch decided, and why the call ended.
        ("Decision trace", ("billing_mode", "end_reason", "sip_status", "end_direction", "vendors_tried")),
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
                "pdd_ms",
            ),
        ),
        ("Numbers", ("caller_number", "callee_number", "caller_number_out", "callee_number_out")),
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
        }
        for panel in panels:
            for row in panel["rows"]:
                if trace.get(row["name"]) is not None:
                    row["value"] = trace[row["name"]]
        panels[0]["wide"] = True
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


# Reports: a filter form, totals, charts of the trend and a sortable table, all from billing.reports.


class ReportView(LoginRequiredMixin, View):
    """A report page; ``?export=csv`` downloads the table's rows (every page, same columns)."""

    title = ""
    description = ""
    slug = ""
    form_class = None
    table_class = None
    permission = "billing.view_cdr"
    template_name = "billing/report.html"
    per_page = 100
    # (label, row key, unit) of the figures in the strip above the charts.
    totals = ()

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not request.user.has_perm(self.permission):
            raise PermissionDenied("You may not see this report.")
        return super().dispatch(request, *args, **kwargs)

    # What each report declares.

    def get_report(self, form, period):
        """A billing.reports.Report: the rows, the series per day or month, the totals."""
        raise NotImplementedError

    def get_table(self, rows, form, period):
        return self.table_class(rows, period=period)

    def get_charts(self, series, period):
        """[{"title", "points", "kind", "unit"}], from ``self.chart``."""
        return []

    def get_tabs(self, request, form):
        return []

    def get(self, request):
        form = self.form_class(request.GET)
        context = {"title": self.title, "description": self.description, "form": form, "tabs": []}
        if form.is_valid():
            period = form.period()
            # One pass over the CDRs: the table sorts and pages these rows without asking again.
            report = self.get_report(form, period)
            table = self.get_table(report.rows, form, period)
            RequestConfig(request, paginate=False).configure(table)
            if request.GET.get("export") == "csv":
                return self.export_csv(table, period)
            per_page = request.GET.get("per_page", "")
            per_page = (
                int(per_page) if per_page.isdigit() and int(per_page) in table.per_page_choices else self.per_page
            )
            try:
                table.paginate(page=request.GET.get("page", 1), per_page=per_page)
            except (EmptyPage, PageNotAnInteger):
                table.paginate(page=1, per_page=per_page)
            export_query = request.GET.copy()
            export_query.pop("page", None)
            export_query["export"] = "csv"
            context.update(
                table=table,
                period=period,
                totals=[(label, report.totals[key], unit) for label, key, unit in self.totals],
                charts=self.get_charts(report.series, period),
                tabs=self.get_tabs(request, form),
                export_url=f"?{export_query.urlencode()}",
            )
        return render(request, self.template_name, context)

    def export_csv(self, table, period):
        values = iter(table.as_values())
        header = next(values)
        rows = ([format_cell(cell) for cell in row] for row in values)
        return stream_csv(f"{self.slug}-{period.first}-{period.last}.csv", header, rows)

    def chart(self, title, series, period, name, kind="bar", unit=""):
        """A chart of one figure over every day or month of the period; a bucket without calls is empty, not missing."""
        label = "%Y-%m" if period.group_by == reports.MONTH else "%d %b"
        points = [
            (bucket.strftime(label), series[bucket][name] if bucket in series else None) for bucket in period.buckets()
        ]
        return {"title": title, "points": points, "kind": kind, "unit": unit}


CALLS = (("Calls", "attempts", ""), ("Connected", "connected", ""), ("ASR", "asr", "%"))
MONEY = (("Revenue", "revenue", ""), ("Cost", "cost", ""), ("Margin", "margin", ""))


class RevenueReportView(ReportView):
    title = "Revenue details"
    description = "Per customer account and day or month: calls, billed minutes, revenue, vendor cost and margin."
    slug = "revenue"
    form_class = forms.RevenueReportForm
    table_class = tables.RevenueReportTable
    totals = (*CALLS, ("Billed minutes", "billed_minutes", ""), *MONEY)

    def get_report(self, form, period):
        return reports.revenue(period, form.cleaned_data["account"])

    def get_charts(self, series, period):
        return [
            self.chart("Revenue", series, period, "revenue"),
            self.chart("Margin", series, period, "margin"),
        ]


class GatewayBillView(ReportView):
    title = "Gateway bill"
    description = (
        "Per mapping gateway (customer side) or routing gateway (vendor side): attempts, ASR, ACD, minutes and money. "
        "On the vendor side every vendor a call tried counts an attempt (a 503 before a failover too); "
        "minutes and money stay with the vendor the call ended on."
    )
    slug = "gateway-bill"
    form_class = forms.GatewayBillForm
    table_class = tables.GatewayBillTable
    totals = (
        ("Attempts", "attempts", ""),
        *CALLS[1:],
        ("ACD", "acd", "s"),
        ("Talk minutes", "talk_minutes", ""),
        ("Billed minutes", "billed_minutes", ""),
        *MONEY,
    )

    def get_report(self, form, period):
        data = form.cleaned_data
        return reports.gateway_bill(period, data["side"], data["mapping_gateway"], data["routing_gateway"])

    def get_table(self, rows, form, period):
        return self.table_class(rows, period=period, side=form.cleaned_data["side"])

    def get_charts(self, series, period):
        return [
            self.chart("Attempts", series, period, "attempts"),
            self.chart("ASR", series, period, "asr", kind="line", unit="%"),
            self.chart("ACD", series, period, "acd", kind="line", unit="s"),
            self.chart("Talk minutes", series, period, "talk_minutes"),
        ]

    def get_tabs(self, request, form):
        tabs = []
        for side, label in ((reports.MAPPING, "Per mapping gateway"), (reports.ROUTING, "Per routing gateway")):
            query = request.GET.copy()
            query.pop("page", None)
            query.pop("sort", None)
            query["side"] = side
            tabs.append((label, f"?{query.urlencode()}", form.cleaned_data["side"] == side))
        return tabs


class AccountBalanceReportView(ReportView):
    title = "Account balances"
    description = (
        "Every account's balance, credit and what moved it in the period: payments, and CDR fees "
        "(customers) or vendor cost accrued (vendor clearing accounts)."
    )
    slug = "account-balances"
    form_class = forms.AccountBalanceReportForm
    table_class = tables.AccountBalanceTable
    permission = "billing.view_account"
    totals = (
        ("Accounts", "accounts", ""),
        ("Low balance", "low", ""),
        ("Customer balances", "customer_balance", ""),
        ("Customer available", "customer_available", ""),
        ("Recharges", "recharges", ""),
        ("Deductions", "deductions", ""),
        ("CDR fees", "fees", ""),
        ("Vendor cost accrued", "vendor_cost", ""),
    )

    def get_report(self, form, period):
        data = form.cleaned_data
        return reports.account_balances(
            period, account_type=data["account_type"], account=data["account"], low_only=data["low_only"]
        )


class VendorClearingView(ReportView):
    title = "Vendor clearing"
    description = "Per vendor clearing account: calls, talk minutes and the cost accrued to it in the period."
    slug = "vendor-clearing"
    form_class = forms.VendorClearingForm
    table_class = tables.VendorClearingTable
    totals = (*CALLS, ("ACD", "acd", "s"), ("Talk minutes", "talk_minutes", ""), ("Cost accrued", "cost", ""))

    def get_report(self, form, period):
        return reports.vendor_clearing(period, form.cleaned_data["vendor_account"])

    def get_charts(self, series, period):
        return [
            self.chart("Cost accrued", series, period, "cost"),
            self.chart("Talk minutes", series, period, "talk_minutes"),
        ]
