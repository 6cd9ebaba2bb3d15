"""Security serializers."""

from rest_framework import serializers

from softswitch_portal.api.serializers import ValidatedModelSerializer

from ..api_clients import APIRequestLog
from ..models import (
    Alarm,
    BlacklistExemption,
    BlackWhiteListGroup,
    DynamicBlacklistEntry,
    IpCountryRange,
    ListEntry,
)


class BlackWhiteListGroupSerializer(ValidatedModelSerializer):
    class Meta:
        model = BlackWhiteListGroup
        fields = "__all__"


class IpCountryRangeSerializer(ValidatedModelSerializer):
    """An operator's IPv4 range laid over the imported IP-country table (the geofence's VOS IP limits)."""

    class Meta:
        model = IpCountryRange
        fields = "__all__"
        # Overlaps and the unique start are checked by full_clean, naming their fields.
        validators = []


class ListEntrySerializer(ValidatedModelSerializer):
    class Meta:
        model = ListEntry
        fields = "__all__"
        # The unique constraint (group, number, match) is checked by full_clean, naming its fields.
        validators = []


class DynamicBlacklistEntrySerializer(ValidatedModelSerializer):
    """What the switch recorded stays as recorded: an operator reviews it (the review actions)."""

    class Meta:
        model = DynamicBlacklistEntry
        fields = "__all__"
        read_only_fields = [field.name for field in DynamicBlacklistEntry._meta.concrete_fields]


class ReviewSerializer(serializers.Serializer):
    """A review of one entry, as the entry's page takes it (security.forms.ReviewForm checks it)."""

    action = serializers.ChoiceField(choices=("confirm", "release", "release_exempt"))
    hours = serializers.IntegerField(required=False, min_value=1, help_text="Confirm: block this many hours from now.")
    permanent = serializers.BooleanField(required=False, default=False, help_text="Confirm: block until released.")
    days = serializers.IntegerField(required=False, min_value=1, help_text="Release and exempt: days of exemption.")
    note = serializers.CharField(required=False, allow_blank=True, max_length=300, default="")


class BulkReviewSerializer(ReviewSerializer):
    entries = serializers.ListField(child=serializers.IntegerField(), min_length=1)


class ReviewResultSerializer(serializers.Serializer):
    done = serializers.ListField(child=serializers.IntegerField(), help_text="Entries the action was applied to.")
    skipped = serializers.DictField(child=serializers.CharField(), help_text="Entry id -> why it was left alone.")


class BlacklistExemptionSerializer(ValidatedModelSerializer):
    class Meta:
        model = BlacklistExemption
        fields = "__all__"
        read_only_fields = ("created_by",)


class AlarmSerializer(ValidatedModelSerializer):
    class Meta:
        model = Alarm
        fields = "__all__"
        read_only_fields = [field.name for field in Alarm._meta.concrete_fields]


class AlarmActionResultSerializer(serializers.Serializer):
    changed = serializers.IntegerField(help_text="Alarms changed (0 when it was done already).")


class APIRequestLogSerializer(ValidatedModelSerializer):
    class Meta:
        model = APIRequestLog
        fields = "__all__"
