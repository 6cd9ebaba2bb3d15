"""Security forms."""

from django import forms

from softswitch_portal.generic.forms import BaseModelForm, style_widgets

from .models import BlacklistExemption, BlackWhiteListGroup, DynamicBlacklistEntry, ListEntry


class BlackWhiteListGroupForm(BaseModelForm):
    class Meta:
        model = BlackWhiteListGroup
        fields = ("name", "kind", "description")


class ListEntryForm(BaseModelForm):
    class Meta:
        model = ListEntry
        fields = ("group", "number", "match", "note")


class DynamicBlacklistEntryForm(BaseModelForm):
    """Only the status and expiry: what the switch recorded (subject, rule, evidence) stays as recorded."""

    class Meta:
        model = DynamicBlacklistEntry
        fields = ("status", "expires_at")


# Longest confirmation and exemption an admin may give in one go; "permanent" covers longer.
MAX_CONFIRM_HOURS = 24 * 365
MAX_EXEMPT_DAYS = 365


class ReviewForm(forms.Form):
    """One review action on one entry or a selection: confirm, release, or release and exempt.

    ``entries`` is only used by the bulk form (the list page's checkboxes).
    """

    action = forms.ChoiceField(
        choices=(("confirm", "Confirm"), ("release", "Release"), ("release_exempt", "Release and exempt"))
    )
    hours = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_CONFIRM_HOURS, label="Extend by (hours)",
        help_text="Confirm: block for this many hours from now.",
    )  # fmt: skip
    permanent = forms.BooleanField(required=False, label="Permanent", help_text="Confirm: block until released.")
    days = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_EXEMPT_DAYS, label="Exempt for (days)",
        help_text="Release and exempt: no rule blocks the subject again for this many days.",
    )  # fmt: skip
    note = forms.CharField(required=False, max_length=300, label="Note")
    entries = forms.ModelMultipleChoiceField(queryset=DynamicBlacklistEntry.objects.all(), required=False)

    def __init__(self, *args, bulk=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.bulk = bulk
        style_widgets(self.fields)
        self.fields["note"].widget.attrs.setdefault("placeholder", "Why (kept with the entry)")

    def clean(self):
        data = super().clean()
        action = data.get("action")
        if action == "confirm" and not data.get("permanent") and not data.get("hours"):
            self.add_error("hours", "Give the hours to extend by, or tick Permanent.")
        if action == "confirm" and data.get("permanent") and data.get("hours"):
            self.add_error("hours", "Either extend by hours or make it permanent, not both.")
        if action == "release_exempt" and not data.get("days"):
            self.add_error("days", "Give the days the exemption lasts.")
        if self.bulk and not data.get("entries") and "entries" not in self.errors:
            self.add_error("entries", "Tick the entries to act on.")
        return data

    def options(self):
        data = self.cleaned_data
        return {"hours": data.get("hours"), "permanent": data.get("permanent"), "days": data.get("days"),
                "note": data.get("note", "")}  # fmt: skip


class BlacklistExemptionForm(BaseModelForm):
    """An exemption made by hand (one is made for every "release and exempt")."""

    fieldsets = (("Subject", ("subject_kind", "number", "account")), ("Exemption", ("until", "reason")))

    class Meta:
        model = BlacklistExemption
        fields = ("subject_kind", "number", "account", "until", "reason")
