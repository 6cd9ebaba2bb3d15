"""Switching serializers: the models' own validation (a gateway's claimed addresses, a phone's password)."""

from rest_framework import serializers
from rest_framework.reverse import reverse

from softswitch_portal.api.serializers import ValidatedModelSerializer
from softswitch_portal.core import roles
from softswitch_portal.core.models import SystemParameter
from softswitch_portal.validators import validate_number

from ..forms import WIDE_IPV4, WIDE_IPV6, is_wide_network
from ..models import (
    CallerNumberPool,
    MappingGateway,
    NumberTransformRule,
    Phone,
    RoutingGateway,
    RoutingSchedule,
    TestCall,
)


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


class TestCallSerializer(serializers.ModelSerializer):
    """A test call as the list shows it: status and figures; the SIP trace is on the detail."""

    url = serializers.HyperlinkedIdentityField(
        view_name="switching-api:testcall-detail", help_text="This test call in the API: poll it until done."
    )
    page = serializers.SerializerMethodField(help_text="Its result page in the portal.")
    done = serializers.BooleanField(read_only=True, help_text="Finished or failed: its figures will not change.")
    recording = serializers.SerializerMethodField(
        help_text="What came back from the vendor (audio/wav), or null while there is none."
    )

    class Meta:
        model = TestCall
        exclude = ("sip_trace", "waveform_svg")
        read_only_fields = [field.name for field in TestCall._meta.concrete_fields]

    def get_page(self, obj) -> str:
        request = self.context.get("request")
        url = obj.get_absolute_url()
        return request.build_absolute_uri(url) if request is not None else url

    def get_recording(self, obj) -> str | None:
        # The list's queryset leaves the audio out and says whether there is any (has_recording).
        has = obj.has_recording if hasattr(obj, "has_recording") else obj.recording is not None
        if not has:
            return None
        return reverse("switching-api:testcall-recording", args=[obj.pk], request=self.context.get("request"))


class TestCallDetailSerializer(TestCallSerializer):
    class Meta(TestCallSerializer.Meta):
        exclude = ("waveform_svg",)


class TestCallStartSerializer(serializers.Serializer):
    number = serializers.CharField(
        max_length=64,
        validators=[validate_number],
        help_text="Dialled through this gateway only, from the test-call phone: digits, optionally after a +.",
    )
