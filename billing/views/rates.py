"""Rate table and rate pages, and the rate deck import."""

import io

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from softswitch_portal.generic import views as generic
from softswitch_portal.generic.utils import user_can

from .. import filtersets, forms, tables
from ..models import Rate, RateTable
from ..rate_import import COLUMNS, REQUIRED_COLUMNS, import_rates


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
                try:
                    result = import_rates(rate_table, io.StringIO(text, newline=""))
                except ValidationError as exc:
                    form.add_error("file", exc)
                if result is not None and result.ok:
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
