from softswitch_portal.api.serializers import ValidatedModelSerializer

from ..models import VosAccessRule


class VosAccessRuleSerializer(ValidatedModelSerializer):
    class Meta:
        model = VosAccessRule
        fields = "__all__"
        # The unique constraint (network, directory) is checked by full_clean, naming its fields.
        validators = []
