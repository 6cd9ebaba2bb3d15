"""Switching serializers: the models' own validation (a gateway's claimed addresses, a phone's password)."""

from softswitch_portal.api.serializers import ValidatedModelSerializer
from softswitch_portal.core.models import SystemParameter

from ..models import CallerNumberPool, MappingGateway, NumberTransformRule, Phone, RoutingGateway, RoutingSchedule


class MappingGatewaySerializer(ValidatedModelSerializer):
    class Meta:
        model = MappingGateway
        fields = "__all__"


class RoutingGatewaySerializer(ValidatedModelSerializer):
    class Meta:
        model = RoutingGateway
        fields = "__all__"


class PhoneSerializer(ValidatedModelSerializer):
    class Meta:
        model = Phone
        fields = "__all__"
        # The digest secret goes in, never out: an API reader must not learn every phone's password.
        extra_kwargs = {"password": {"write_only": True}}


class NumberTransformRuleSerializer(ValidatedModelSerializer):
    class Meta:
        model = NumberTransformRule
        fields = "__all__"


class RoutingScheduleSerializer(ValidatedModelSerializer):
    class Meta:
        model = RoutingSchedule
        fields = "__all__"


class CallerNumberPoolSerializer(ValidatedModelSerializer):
    class Meta:
        model = CallerNumberPool
        fields = "__all__"


class SystemParameterSerializer(ValidatedModelSerializer):
    class Meta:
        model = SystemParameter
        fields = "__all__"
