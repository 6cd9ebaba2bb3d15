"""Security viewsets, on the list pages' filtersets."""

from django.utils import timezone

from softswitch_portal.api.viewsets import BaseModelViewSet, ReadOnlyModelViewSet

from .. import api_client_filtersets, filtersets
from ..api_clients import APIRequestLog
from ..models import BlackWhiteListGroup, DynamicBlacklistEntry, ListEntry
from . import serializers


class BlackWhiteListGroupViewSet(BaseModelViewSet):
    queryset = BlackWhiteListGroup.objects.all()
    serializer_class = serializers.BlackWhiteListGroupSerializer
    filterset_class = filtersets.BlackWhiteListGroupFilterSet


class ListEntryViewSet(BaseModelViewSet):
    queryset = ListEntry.objects.select_related("group")
    serializer_class = serializers.ListEntrySerializer
    filterset_class = filtersets.ListEntryFilterSet


class DynamicBlacklistEntryViewSet(BaseModelViewSet):
    """The switch adds entries; operators review them (status, expiry). Released entries are kept as records."""

    queryset = DynamicBlacklistEntry.objects.select_related("mapping_gateway", "reviewed_by")
    serializer_class = serializers.DynamicBlacklistEntrySerializer
    filterset_class = filtersets.DynamicBlacklistEntryFilterSet
    http_method_names = ["get", "patch", "put", "head", "options"]

    def perform_update(self, serializer):
        # A change through the API is a review, recorded as the page records one.
        serializer.validated_data.update(reviewed_by=self.request.user, reviewed_at=timezone.now())
        self._save(serializer)


class APIRequestLogViewSet(ReadOnlyModelViewSet):
    queryset = APIRequestLog.objects.select_related("client", "user")
    serializer_class = serializers.APIRequestLogSerializer
    filterset_class = api_client_filtersets.APIRequestLogFilterSet
