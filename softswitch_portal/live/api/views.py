"""The live calls through the API: the list the current-calls page shows, and a forced disconnect."""

from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from redis import RedisError
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from softswitch_portal.api.pagination import LimitOffsetPagination

from .. import calls, forms
from ..models import LiveCall
from ..views import DISCONNECT, operator_name

ORDERINGS = {"start_ms", "answer_ms", "duration_s", "caller", "callee", "node", "account", "mapping_gateway"}


class LiveCallSerializer(serializers.Serializer):
    """One live call, as the current-calls page shows it (times in epoch ms)."""

    call_id = serializers.CharField()
    node = serializers.CharField()
    state = serializers.ChoiceField(choices=["answered", "setup"])
    caller = serializers.CharField(help_text="As received.")
    callee = serializers.CharField(help_text="As received.")
    callee_routed = serializers.CharField(help_text="After the mapping gateway's transforms: what was routed on.")
    caller_out = serializers.CharField(help_text="As sent to the vendor that answered; empty until answered.")
    callee_out = serializers.CharField(help_text="As sent to the vendor that answered; empty until answered.")
    source_ip = serializers.CharField()
    account_id = serializers.IntegerField(allow_null=True)
    account = serializers.CharField()
    mapping_gateway_id = serializers.IntegerField(allow_null=True)
    mapping_gateway = serializers.CharField()
    phone_id = serializers.IntegerField(allow_null=True)
    routing_gateway_id = serializers.IntegerField(allow_null=True, help_text="The vendor answering, or being tried.")
    routing_gateway = serializers.CharField()
    route_gateway_ids = serializers.ListField(child=serializers.IntegerField(), help_text="Every vendor planned.")
    start_ms = serializers.IntegerField(allow_null=True)
    answer_ms = serializers.IntegerField(allow_null=True)
    duration_s = serializers.IntegerField(help_text="Talk time once answered; until then, time since set-up.")


DisconnectBody = inline_serializer("DisconnectRequest", {"call_id": serializers.CharField(max_length=500)})


def unavailable(exc):
    return Response({"detail": f"The live state did not answer: {exc}"}, status=status.HTTP_503_SERVICE_UNAVAILABLE)


class LiveCallViewSet(viewsets.GenericViewSet):
    """Every live call on every node (the live-call registry), and the forced disconnect of one."""

    permission_model = LiveCall
    serializer_class = LiveCallSerializer
    pagination_class = LimitOffsetPagination
    filter_backends = ()  # the current-calls form's filters, below
    model_actions = {"disconnect": "list"}  # and the disconnect permission, checked below

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, description="Part of the caller or callee, as received or sent."),
            OpenApiParameter("account", int),
            OpenApiParameter("mapping_gateway", int),
            OpenApiParameter("routing_gateway", int),
            OpenApiParameter("node", str),
            OpenApiParameter("state", str, enum=["answered", "setup"]),
            OpenApiParameter("ordering", str, description=f"One of {', '.join(sorted(ORDERINGS))}; - for descending."),
        ],
        responses={200: LiveCallSerializer(many=True)},
    )
    def list(self, request):
        form = forms.CurrentCallFilterForm(request.query_params)
        if not form.is_valid():
            raise exceptions.ValidationError({name: [str(e) for e in errors] for name, errors in form.errors.items()})
        ordering = request.query_params.get("ordering", "-start_ms")
        if ordering.lstrip("-") not in ORDERINGS:
            raise exceptions.ValidationError({"ordering": [f"Order by one of {', '.join(sorted(ORDERINGS))}."]})
        now = calls.now_ms()
        try:
            answered = {}
            found = calls.live_calls(answered)
        except RedisError as exc:
            return unavailable(exc)
        rows = calls.filter_rows(calls.call_rows(found, answered, now), **form.filters())
        key = ordering.lstrip("-")
        rows.sort(
            key=lambda row: (row[key] is None, row[key] if row[key] is not None else 0),
            reverse=ordering.startswith("-"),
        )
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(LiveCallSerializer(page, many=True).data)

    @extend_schema(
        request=DisconnectBody,
        responses={
            202: inline_serializer(
                "DisconnectAccepted", {"call_id": serializers.CharField(), "node": serializers.CharField()}
            )
        },
    )
    @action(detail=False, methods=["post"])
    def disconnect(self, request):
        """Ask the node holding the call to end it: BYE both ways (a call still setting up is cancelled), end
        reason operator_disconnect, and who asked on its CDR. 404: no such live call; 409: its node unknown."""
        if not request.user.has_perm(DISCONNECT):
            raise PermissionDenied("You may not end live calls.")
        call_id = request.data.get("call_id") if hasattr(request.data, "get") else None
        if not isinstance(call_id, str) or not call_id.strip() or len(call_id) > 500:
            raise exceptions.ValidationError({"call_id": ["The Call-ID of a live call (from the list), as text."]})
        try:
            node = calls.request_disconnect(call_id.strip(), operator_name(request, "api"))
        except calls.DisconnectError as exc:
            gone = "ended already" in str(exc)
            return Response(
                {"detail": str(exc)}, status=status.HTTP_404_NOT_FOUND if gone else status.HTTP_409_CONFLICT
            )
        except RedisError as exc:
            return unavailable(exc)
        return Response({"call_id": call_id.strip(), "node": node}, status=status.HTTP_202_ACCEPTED)
