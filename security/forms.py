"""Security forms."""

from softswitch_portal.generic.forms import BaseModelForm

from .models import BlackWhiteListGroup, DynamicBlacklistEntry, ListEntry


class BlackWhiteListGroupForm(BaseModelForm):
    class Meta:
        model = BlackWhiteListGroup
        fields = ("name", "kind", "description")


class ListEntryForm(BaseModelForm):
    class Meta:
        model = ListEntry
        fields = ("group", "number", "match", "note")


class DynamicBlacklistEntryForm(BaseModelForm):
    """Only the status and expiry: what the switch recorded (number, reason, evidence) stays as recorded."""

    class Meta:
        model = DynamicBlacklistEntry
        fields = ("status", "expires_at")
