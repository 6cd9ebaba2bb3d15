"""Security serializers."""

from softswitch_portal.api.serializers import ValidatedModelSerializer

from ..api_clients import APIRequestLog
from ..models import BlackWhiteListGroup, DynamicBlacklistEntry, ListEntry


class BlackWhiteListGroupSerializer(ValidatedModelSerializer):
    class Meta:
        model = BlackWhiteListGroup
        fields = "__all__"


class ListEntrySerializer(ValidatedModelSerializer):
    class Meta:
        model = ListEntry
        fields = "__all__"
        # The unique constraint (group, number, match) is checked by full_clean, naming its fields.
        validators = []


# What an operator's review changes (as DynamicBlacklistEntryForm); the rest is what the switch recorded.
REVIEWED_FIELDS = ("status", "expires_at")


class DynamicBlacklistEntrySerializer(ValidatedModelSerializer):
    """What the switch recorded stays as recorded: an operator changes the status and expiry (as on the page)."""

    class Meta:
        model = DynamicBlacklistEntry
        fields = "__all__"
        read_only_fields = [
            field.name for field in DynamicBlacklistEntry._meta.concrete_fields if field.name not in REVIEWED_FIELDS
        ]


class APIRequestLogSerializer(ValidatedModelSerializer):
    class Meta:
        model = APIRequestLog
        fields = "__all__"
