"""Security viewsets, on the list pages' filtersets; reviews and alarm actions through the pages' own services."""

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.response import Response

from softswitch_portal.api.viewsets import BaseModelViewSet, ReadOnlyModelViewSet

from .. import alarms, api_client_filtersets, dynamic_blacklist, filtersets
from ..api_clients import APIRequestLog
from ..forms import ReviewForm
from ..ip_country_range_pages import IpCountryRangeFilterSet
from ..models import (
    Alarm,
    BlacklistExemption,
    BlackWhiteListGroup,
    DynamicBlacklistEntry,
    IpCountryRange,
    ListEntry,
)
from . import serializers

REVIEW_PERMISSION = "security.review_dynamicblacklistentry"


class BlackWhiteListGroupViewSet(BaseModelViewSet):
    queryset = BlackWhiteListGroup.objects.all()
    serializer_class = serializers.BlackWhiteListGroupSerializer
    filterset_class = filtersets.BlackWhiteListGroupFilterSet


class IpCountryRangeViewSet(BaseModelViewSet):
    queryset = IpCountryRange.objects.all()
    serializer_class = serializers.IpCountryRangeSerializer
    filterset_class = IpCountryRangeFilterSet


class ListEntryViewSet(BaseModelViewSet):
    queryset = ListEntry.objects.select_related("group")
    serializer_class = serializers.ListEntrySerializer
    filterset_class = filtersets.ListEntryFilterSet


class DynamicBlacklistEntryViewSet(ReadOnlyModelViewSet):
    """The switch adds entries; operators review them (confirm, release, release and exempt)."""

    queryset = DynamicBlacklistEntry.objects.select_related("account", "mapping_gateway", "reviewed_by")
    serializer_class = serializers.DynamicBlacklistEntrySerializer
    filterset_class = filtersets.DynamicBlacklistEntryFilterSet
    model_actions = {"review": "edit", "review_many": "edit"}

    def _review(self, request, ids, data):
        if not request.user.has_perm(REVIEW_PERMISSION):
            raise exceptions.PermissionDenied("You may not review dynamic blacklist entries.")
        # The page's form checks the combination (hours or permanent, days for an exemption), naming the field.
        form = ReviewForm({key: value for key, value in data.items() if key != "entries" and value is not None})
        if not form.is_valid():
            raise exceptions.ValidationError(form.errors)
        done, skipped = dynamic_blacklist.review(ids, form.cleaned_data["action"], request.user, **form.options())
        return Response({"done": [entry.pk for entry in done], "skipped": {e.pk: why for e, why in skipped}})

    @extend_schema(request=serializers.ReviewSerializer, responses={200: serializers.ReviewResultSerializer})
    @action(detail=True, methods=["post"])
    def review(self, request, pk=None):
        """Review one entry, as its page does; needs the review permission."""
        entry = self.get_object()
        body = serializers.ReviewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._review(request, [entry.pk], body.validated_data)

    @extend_schema(
        operation_id="security_dynamic_blacklist_review_many",
        request=serializers.BulkReviewSerializer,
        responses={200: serializers.ReviewResultSerializer},
    )
    @action(detail=False, methods=["post"], url_path="review")
    def review_many(self, request):
        """Review several entries with one action, as the list page's bulk form does."""
        body = serializers.BulkReviewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._review(request, body.validated_data["entries"], body.validated_data)


class BlacklistExemptionViewSet(BaseModelViewSet):
    queryset = BlacklistExemption.objects.select_related("account", "created_by")
    serializer_class = serializers.BlacklistExemptionSerializer
    filterset_class = filtersets.BlacklistExemptionFilterSet

    def perform_create(self, serializer):
        serializer.validated_data["created_by"] = self.request.user
        self._save(serializer)


class AlarmViewSet(ReadOnlyModelViewSet):
    """Alarms are raised and cleared by the switch; operators acknowledge or close them."""

    queryset = Alarm.objects.select_related("account", "mapping_gateway", "routing_gateway", "acknowledged_by")
    serializer_class = serializers.AlarmSerializer
    filterset_class = filtersets.AlarmFilterSet
    model_actions = {"acknowledge": "edit", "close": "edit"}

    def _act(self, function):
        alarm = self.get_object()
        return Response({"changed": function([alarm.pk], self.request.user)}, status=status.HTTP_200_OK)

    @extend_schema(request=None, responses={200: serializers.AlarmActionResultSerializer})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """Record who acknowledged the alarm, and when (once)."""
        return self._act(alarms.acknowledge)

    @extend_schema(request=None, responses={200: serializers.AlarmActionResultSerializer})
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        """Close the alarm by hand (it is acknowledged too)."""
        return self._act(alarms.close)


class APIRequestLogViewSet(ReadOnlyModelViewSet):
    queryset = APIRequestLog.objects.select_related("client", "user")
    serializer_class = serializers.APIRequestLogSerializer
    filterset_class = api_client_filtersets.APIRequestLogFilterSet
