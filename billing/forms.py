"""Billing forms. An account's balance is absent on purpose: it moves only through payments."""

from django import forms
from django.core.exceptions import ValidationError

from softswitch_portal.generic.forms import BaseModelForm

from .models import Account, Payment, Rate, RateTable


class AccountForm(BaseModelForm):
    fieldsets = (
        ("Account", ("name", "account_type", "rate_table", "description")),
        ("Limits", ("credit_limit", "anti_overdraft", "capacity", "locked")),
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
            "alarm_email",
            "low_balance_threshold",
        )


class PaymentForm(BaseModelForm):
    """Validated here for the page; billing.services.apply_payment does the move and checks again."""

    class Meta:
        model = Payment
        fields = ("account", "kind", "amount", "memo")
        help_texts = {"amount": "Always positive: choose Deduct to take money off."}


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
