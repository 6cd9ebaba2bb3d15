"""Billing forms. An account's balance is absent on purpose: it moves only through payments."""

import datetime as dt

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from softswitch_portal.core import roles
from softswitch_portal.core.models import SystemParameter
from softswitch_portal.generic.forms import BaseModelForm, refuse_without_permission, style_widgets
from softswitch_portal.generic.lookups import LookupField

from . import reports
from .choices import AccountType
from .models import Account, Payment, Rate, RateTable, RerateJob


class AccountForm(BaseModelForm):
    fieldsets = (
        ("Account", ("name", "account_type", "rate_table", "description")),
        ("Limits", ("credit_limit", "anti_overdraft", "capacity", "locked", "high_risk_exempt")),
        ("Alarms", ("alarm_email", "low_balance_threshold")),
    )

    class Meta:
        model = Account
        fields = (
            "name",
            "account_type",
            "rate_table",
            "description",
            "credit_limit",
            "anti_overdraft",
            "capacity",
            "locked",
            "high_risk_exempt",
            "alarm_email",
            "low_balance_threshold",
        )

    def clean(self):
        cleaned = super().clean()
        refuse_without_permission(
            self, "credit_limit", roles.CREDIT_LIMIT, "Changing a credit limit needs the credit-limit permission."
        )
        return cleaned


class PaymentForm(BaseModelForm):
    """Validated here for the page; billing.services.apply_payment does the move and checks again."""

    class Meta:
        model = Payment
        fields = ("account", "kind", "amount", "memo")
        help_texts = {"amount": "Always positive: choose Deduct to take money off."}

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        ceiling = SystemParameter.current("SS_PAYMENT_APPROVAL_AMOUNT")
        user = getattr(self, "user", None)
        if user is not None and amount is not None and amount > ceiling and not user.has_perm(roles.LARGE_PAYMENT):
            raise ValidationError(
                f"A payment above {ceiling} (SS_PAYMENT_APPROVAL_AMOUNT) needs the large-payment permission."
            )
        return amount


class RateTableForm(BaseModelForm):
    class Meta:
        model = RateTable
        fields = ("name", "currency", "description")
        help_texts = {"currency": "ISO 4217 code, e.g. USD, EUR."}

    def clean_currency(self):
        currency = self.cleaned_data["currency"].strip().upper()
        if len(currency) != 3 or not currency.isalpha():
            raise ValidationError(f"{currency!r} is not a three-letter currency code.")
        return currency


class RateForm(BaseModelForm):
    fieldsets = (
        ("Rate", ("rate_table", "prefix", "area")),
        ("Price", ("price_per_minute", "first_period", "next_period", "connect_fee")),
        ("Validity", ("valid_from", "valid_to")),
    )

    class Meta:
        model = Rate
        fields = (
            "rate_table",
            "prefix",
            "area",
            "price_per_minute",
            "first_period",
            "next_period",
            "connect_fee",
            "valid_from",
            "valid_to",
        )


class RateImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8, comma-separated, with a header row.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = settings.RATE_IMPORT_MAX_BYTES
        if upload.size > limit:
            raise ValidationError(
                f"The file has {upload.size:,} bytes; the limit is {limit:,} (RATE_IMPORT_MAX_BYTES)."
            )
        return upload


# Report filters. Always bound: an empty query string means the defaults, so a report shows at once.


class ReportForm(forms.Form):
    """The period every report shares: whole local days, grouped by day, month or not at all."""

    date_from = forms.DateField(label="From")
    date_to = forms.DateField(label="To (included)")
    group_by = forms.ChoiceField(label="Group by", choices=reports.GROUP_BY_CHOICES)

    default_days = 7
    default_group_by = reports.DAY
    max_days = 400

    def __init__(self, query):
        today = timezone.localdate()
        defaults = {
            "date_from": (today - dt.timedelta(days=self.default_days - 1)).isoformat(),
            "date_to": today.isoformat(),
            "group_by": self.default_group_by,
        }
        data = {**defaults, **{key: value for key, value in query.items() if value not in ("", None)}}
        super().__init__(data)
        style_widgets(self.fields)
        for field in self.fields.values():
            if getattr(field, "empty_label", None) is not None:
                field.widget.choices = field.choices

    def clean(self):
        data = super().clean()
        first, last = data.get("date_from"), data.get("date_to")
        if first and last:
            if last < first:
                self.add_error("date_to", "The period must end on or after its first day.")
            elif (last - first).days >= self.max_days:
                self.add_error("date_from", f"At most {self.max_days} days at once.")
        return data

    def period(self):
        data = self.cleaned_data
        return reports.Period(data["date_from"], data["date_to"], data.get("group_by") or reports.TOTAL)


class RevenueReportForm(ReportForm):
    account = LookupField("customer-account", required=False, empty_label="All customers")


class GatewayBillForm(ReportForm):
    # Chosen by the tabs above the table.
    side = forms.ChoiceField(
        choices=((reports.MAPPING, "Mapping gateway"), (reports.ROUTING, "Routing gateway")), widget=forms.HiddenInput
    )
    mapping_gateway = LookupField("mapping-gateway", required=False, empty_label="Any")
    routing_gateway = LookupField("routing-gateway", required=False, empty_label="Any")

    default_group_by = reports.TOTAL

    def __init__(self, query):
        query = {"side": reports.MAPPING, **{k: v for k, v in query.items() if v not in ("", None)}}
        super().__init__(query)


class AccountBalanceReportForm(ReportForm):
    account_type = forms.ChoiceField(label="Type", choices=(("", "Any"), *AccountType.choices), required=False)
    account = LookupField("account", required=False, empty_label="All accounts")
    low_only = forms.BooleanField(label="Low balance only", required=False)

    def __init__(self, query):
        super().__init__(query)
        del self.fields["group_by"]


class VendorClearingForm(ReportForm):
    vendor_account = LookupField(
        "vendor-account", required=False, empty_label="All vendor accounts", label="Vendor account"
    )

    default_group_by = reports.TOTAL


class BalanceHistoryForm(forms.Form):
    account = LookupField("account")
    days = forms.IntegerField(min_value=1, max_value=366, initial=30, required=False)


class RerateJobForm(BaseModelForm):
    fieldsets = (("Scope", ("account", "rate_table")), ("Period", ("start", "end")))

    class Meta:
        model = RerateJob
        fields = ["account", "rate_table", "start", "end"]
        help_texts = {
            "account": "Re-rate this account's calls (its fees as a customer, its cost as a vendor)…",
            "rate_table": "…or the calls of every account now on this rate table.",
            "start": (
                "Calls are rated on the callee as routed (or as sent, when SERVER_BILLING_GATEWAY_ROUTE_PREFIX is 1); "
                "calls recorded before CDRs carried the routed callee are rated on the callee as received."
            ),
        }

    def clean(self):
        data = super().clean()
        account, rate_table = data.get("account"), data.get("rate_table")
        if not account and not rate_table:
            raise ValidationError("Choose an account or a rate table.")
        if account and rate_table:
            raise ValidationError("Choose an account or a rate table, not both.")
        start, end = data.get("start"), data.get("end")
        if start and end and end <= start:
            self.add_error("end", "The end must be after the start.")
        if end and end > timezone.now() + dt.timedelta(days=1):
            self.add_error("end", "The end cannot be in the future.")
        return data
