"""Report pages: a filter form, totals, charts of the trend and a sortable table, all from billing.reports."""

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.core.paginator import EmptyPage, PageNotAnInteger
from django.shortcuts import render
from django.views import View
from django_tables2 import RequestConfig

from softswitch_portal.generic.export import format_cell, stream_csv

from .. import forms, reports, tables


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
