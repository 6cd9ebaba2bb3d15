"""Billing pages: declarations on the generic views, plus the payment and rate-import steps."""

import io

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django_tables2.paginators import LazyPaginator

from softswitch_portal.generic import views as generic
from softswitch_portal.generic.utils import user_can
from softswitch_portal.switching.models import MappingGateway, Phone, RoutingGateway
from softswitch_portal.switching.tables import MappingGatewayTable, PhoneTable, RoutingGatewayTable

from . import filtersets, forms, tables
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
# so pages show the names copied into the CDR; select_related turns a dangling id
# into None instead of a DoesNotExist on access.

CDR_RELATED = ("account", "vendor_account", "mapping_gateway", "routing_gateway", "phone")


class CDRListView(generic.ObjectListView):
    queryset = CDR.objects.select_related(*CDR_RELATED)
    filterset = filtersets.CDRFilterSet
    table = tables.CDRTable
    # Counting a month of CDRs on every page view costs more than the page; show next/previous instead.
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

    def export_header_and_rows(self, request, queryset):
        # The export writes ids and copied names, never the related rows: drop the joins.
        return super().export_header_and_rows(request, queryset.select_related(None))


class CDRView(generic.ObjectView):
    queryset = CDR.objects.select_related(*CDR_RELATED)
    fieldsets = (
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
                "billing_mode",
            ),
        ),
        ("Numbers", ("caller_number", "callee_number", "caller_number_out", "callee_number_out")),
        ("End", ("end_direction", "end_reason", "sip_status")),
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
        ("Vendors tried", ("vendors_tried",)),
    )

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
