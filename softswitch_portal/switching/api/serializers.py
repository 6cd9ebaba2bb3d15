"""Switching serializers: the models' own validation (a gateway's claimed addresses, a phone's password)."""

from rest_framework import serializers

from softswitch_portal.api.serializers import ValidatedModelSerializer
from softswitch_portal.core import roles
from softswitch_portal.core.models import SystemParameter

from ..forms import WIDE_IPV4, WIDE_IPV6, is_wide_network
from ..models import CallerNumberPool, MappingGateway, NumberTransformRule, Phone, RoutingGateway, RoutingSchedule


class MappingGatewaySerializer(ValidatedModelSerializer):
    class Meta:
        model = MappingGateway
        fields = "__all__"

    def validate_remote_ips(self, remote_ips):
        """As the page's form: a network wider than /24 or /48 that this write adds needs the wide-network
        permission (strangers' calls would be billed to the customer)."""
        request = self.context.get("request")
        user = getattr(request, "user", None)
        if user is None or user.has_perm(roles.WIDE_NETWORK):
            return remote_ips
        before = set(self.instance.remote_ips or ()) if self.instance is not None else set()
        wide = [value for value in remote_ips or () if value not in before and is_wide_network(value)]
        if wide:
            raise serializers.ValidationError(
                f"{', '.join(wide)}: a network wider than /{WIDE_IPV4} (IPv4) or /{WIDE_IPV6} (IPv6) needs the "
                "wide-network permission."
            )
        return remote_ips


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
