"""Switching viewsets, on the list pages' filtersets."""

from softswitch_portal.api.viewsets import BaseModelViewSet
from softswitch_portal.core.models import SystemParameter

from .. import filtersets
from ..models import CallerNumberPool, MappingGateway, NumberTransformRule, Phone, RoutingGateway, RoutingSchedule
from . import serializers


class MappingGatewayViewSet(BaseModelViewSet):
    queryset = MappingGateway.objects.select_related("account").prefetch_related(
        "caller_transforms", "callee_transforms", "caller_list_groups", "callee_list_groups"
    )
    serializer_class = serializers.MappingGatewaySerializer
    filterset_class = filtersets.MappingGatewayFilterSet


class RoutingGatewayViewSet(BaseModelViewSet):
    queryset = RoutingGateway.objects.select_related("clearing_account", "caller_number_pool").prefetch_related(
        "caller_transforms", "callee_transforms", "schedules"
    )
    serializer_class = serializers.RoutingGatewaySerializer
    filterset_class = filtersets.RoutingGatewayFilterSet


class PhoneViewSet(BaseModelViewSet):
    queryset = Phone.objects.select_related("account")
    serializer_class = serializers.PhoneSerializer
    filterset_class = filtersets.PhoneFilterSet


class NumberTransformRuleViewSet(BaseModelViewSet):
    queryset = NumberTransformRule.objects.all()
    serializer_class = serializers.NumberTransformRuleSerializer
    filterset_class = filtersets.NumberTransformRuleFilterSet


class RoutingScheduleViewSet(BaseModelViewSet):
    queryset = RoutingSchedule.objects.all()
    serializer_class = serializers.RoutingScheduleSerializer
    filterset_class = filtersets.RoutingScheduleFilterSet


class CallerNumberPoolViewSet(BaseModelViewSet):
    queryset = CallerNumberPool.objects.all()
    serializer_class = serializers.CallerNumberPoolSerializer
    filterset_class = filtersets.CallerNumberPoolFilterSet


class SystemParameterViewSet(BaseModelViewSet):
    queryset = SystemParameter.objects.all()
    serializer_class = serializers.SystemParameterSerializer
    filterset_class = filtersets.SystemParameterFilterSet
