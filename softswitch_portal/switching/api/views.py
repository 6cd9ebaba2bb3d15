"""Switching viewsets, on the list pages' filtersets; operator test calls placed and followed."""

from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response

from softswitch_portal.api.viewsets import BaseModelViewSet, ReadOnlyModelViewSet
from softswitch_portal.core.models import SystemParameter

from .. import filtersets
from ..models import (
    CallerNumberPool,
    MappingGateway,
    NumberTransformRule,
    Phone,
    RoutingGateway,
    RoutingSchedule,
    TestCall,
)
from ..testcalls import service
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
    # A test call is a real call billed to the test account: the portal's button asks as much as an edit.
    model_actions = {"test_call": "edit"}

    @extend_schema(
        request=serializers.TestCallStartSerializer,
        responses={
            202: serializers.TestCallDetailSerializer,
            400: OpenApiResponse(description="The number is not a phone number (the error names the field)."),
            404: OpenApiResponse(description="No such routing gateway."),
        },
    )
    @action(detail=True, methods=["post"], url_path="test-call")
    def test_call(self, request, pk=None):
        """Queue a test call through this gateway only; answers at once with the test call to poll (its ``url``,
        also in Location) until ``done``. Needs the write scope and the permission to change routing gateways."""
        gateway = self.get_object()
        body = serializers.TestCallStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with transaction.atomic():
            call = service.start(gateway, body.validated_data["number"], request.user)
        data = serializers.TestCallDetailSerializer(call, context=self.get_serializer_context()).data
        # str(): the url is DRF's Hyperlink, which WSGI servers refuse as a header value.
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": str(data["url"])})


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


class AudioRecording(BaseContentNegotiation):
    """No choice by Accept: the recording is audio/wav (the view's own response), its errors (403, 404) JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None


class TestCallViewSet(ReadOnlyModelViewSet):
    """Operators' test calls, newest first, with the list page's filters; start one on a routing gateway
    (``POST /api/switching/routing-gateways/{id}/test-call/``)."""

    queryset = TestCall.objects.all()
    filterset_class = filtersets.TestCallFilterSet

    def get_queryset(self):
        if self.action == "recording":
            return TestCall.objects.only("pk", "recording")
        # The audio and its picture stay in the database until asked for; the list leaves the SIP trace out too.
        left_out = ["recording", "waveform_svg"]
        if self.action == "list":
            left_out.append("sip_trace")
        has_recording = ExpressionWrapper(Q(recording__isnull=False), output_field=BooleanField())
        return TestCall.objects.defer(*left_out).annotate(has_recording=has_recording)

    def get_serializer_class(self):
        return serializers.TestCallSerializer if self.action == "list" else serializers.TestCallDetailSerializer

    @extend_schema(
        responses={
            (200, "audio/wav"): OpenApiResponse(OpenApiTypes.BINARY, description="The WAV the agent recorded."),
            404: OpenApiResponse(description="No such test call, or it has no recording (yet)."),
        },
        filters=False,
    )
    @action(detail=True, methods=["get"], content_negotiation_class=AudioRecording, pagination_class=None)
    def recording(self, request, pk=None):
        """What came back from the vendor during the test call, as recorded by the agent."""
        call = self.get_object()
        if call.recording is None:
            raise NotFound("This test call has no recording.")
        response = HttpResponse(bytes(call.recording), content_type="audio/wav")
        response["Content-Disposition"] = f'inline; filename="test-call-{call.pk}.wav"'
        return response
