from softswitch_portal.api.viewsets import BaseModelViewSet

from ..filtersets import VosAccessRuleFilterSet
from ..models import VosAccessRule
from .serializers import VosAccessRuleSerializer


class VosAccessRuleViewSet(BaseModelViewSet):
    queryset = VosAccessRule.objects.all()
    serializer_class = VosAccessRuleSerializer
    filterset_class = VosAccessRuleFilterSet
