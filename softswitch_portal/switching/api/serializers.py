"""Switching serializers: the models' own validation (a gateway's claimed addresses, a phone's password)."""

from rest_framework import serializers

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
    # The digest secret goes in, never out, and is kept only as its hashes, which are never shown either:
    # to a digest client they are as good as the password. Omitted on an update, the password is kept.
    password = serializers.CharField(write_only=True, required=False, style={"input_type": "password"})

    class Meta:
        model = Phone
        exclude = ("ha1", "ha1b", "digest_realm")


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
