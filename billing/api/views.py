"""Billing viewsets: the list pages' filtersets, payments through billing.services, CDRs by keyset or CSV."""

from functools import partial

from django.db import transaction
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response

from security.api_clients import APIScope
from softswitch_portal.api.pagination import KeysetPagination
from softswitch_portal.api.renderers import CSVRenderer
from softswitch_portal.api.viewsets import BaseModelViewSet, ReadOnlyModelViewSet
from softswitch_portal.generic.export import ModelColumns, stream_csv

from .. import filtersets, rerating_filtersets, services
from ..choices import PaymentKind
from ..forms import RerateJobForm
from ..models import CDR, Account, Payment, Rate, RateTable, RerateChange, RerateJob
from ..tasks import rerate
from . import serializers


class AccountViewSet(BaseModelViewSet):
    queryset = Account.objects.select_related("rate_table")
    serializer_class = serializers.AccountSerializer
    filterset_class = filtersets.AccountFilterSet
    # Money moves only through these two, as payments: the money scope and the permission to add payments.
    scopes = {"recharge": APIScope.MONEY, "deduct": APIScope.MONEY}
    model_actions = {"recharge": "add", "deduct": "add"}

    def get_permissions(self):
        if self.action in ("recharge", "deduct"):
            self.permission_model = Payment
        return super().get_permissions()

    def _pay(self, request, kind):
        account = self.get_object()
        body = serializers.AmountSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        payment = services.apply_payment(account, kind, body.validated_data["amount"], request.user,
                                         memo=body.validated_data["memo"])  # fmt: skip
        return Response(serializers.PaymentSerializer(payment).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=serializers.AmountSerializer, responses={201: serializers.PaymentSerializer})
    @action(detail=True, methods=["post"])
    def recharge(self, request, pk=None):
        """Add money to the account (a payment of kind recharge); needs the money scope."""
        return self._pay(request, PaymentKind.RECHARGE)

    @extend_schema(request=serializers.AmountSerializer, responses={201: serializers.PaymentSerializer})
    @action(detail=True, methods=["post"])
    def deduct(self, request, pk=None):
        """Take money off the account (a payment of kind deduct); needs the money scope."""
        return self._pay(request, PaymentKind.DEDUCT)


@extend_schema_view(create=extend_schema(request=serializers.PaymentCreateSerializer))
class PaymentViewSet(BaseModelViewSet):
    """Payments are recorded, never edited: a wrong one is corrected by another."""

    queryset = Payment.objects.select_related("account", "created_by")
    serializer_class = serializers.PaymentSerializer
    filterset_class = filtersets.PaymentFilterSet
    http_method_names = ["get", "post", "head", "options"]
    scopes = {"create": APIScope.MONEY}

    def create(self, request, *args, **kwargs):
        body = serializers.PaymentCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        payment = services.apply_payment(data["account"], data["kind"], data["amount"], request.user, memo=data["memo"])
        return Response(self.get_serializer(payment).data, status=status.HTTP_201_CREATED)


class RateTableViewSet(BaseModelViewSet):
    queryset = RateTable.objects.all()
    serializer_class = serializers.RateTableSerializer
    filterset_class = filtersets.RateTableFilterSet


class RateViewSet(BaseModelViewSet):
    queryset = Rate.objects.select_related("rate_table")
    serializer_class = serializers.RateSerializer
    filterset_class = filtersets.RateFilterSet


@extend_schema_view(
    list=extend_schema(
        responses={
            200: serializers.CDRSerializer(many=True),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="Every filtered CDR, one per row."),
        }
    )
)
class CDRViewSet(ReadOnlyModelViewSet):
    """CDRs with the CDR page's filters, paged by its keyset (``after``/``before``), or as CSV (``?format=csv``)."""

    queryset = CDR.objects.all()
    serializer_class = serializers.CDRSerializer
    filterset_class = filtersets.CDRFilterSet
    pagination_class = KeysetPagination
    # The keyset walks start time, newest first unless ``?ordering=start_time``.
    ordering_fields = ("start_time",)
    renderer_classes = (JSONRenderer, BrowsableAPIRenderer, CSVRenderer)
    export_chunk_size = 2000

    def list(self, request, *args, **kwargs):
        if request.accepted_renderer.format == "csv":
            return self.export_csv(self.filter_queryset(self.get_queryset()))
        return super().list(request, *args, **kwargs)

    def export_csv(self, queryset):
        """The whole filtered set, streamed; cells a spreadsheet would run as formulas are neutralised."""
        columns = ModelColumns(CDR)
        rows = (columns.row(obj) for obj in columns.prepare(queryset).iterator(chunk_size=self.export_chunk_size))
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        return stream_csv(f"cdrs-{stamp}.csv", columns.header, rows)


@extend_schema_view(create=extend_schema(request=serializers.RerateJobSerializer))
class RerateJobViewSet(BaseModelViewSet):
    """Re-rating a period's CDRs at today's rates moves balances by the difference: it needs the money scope."""

    queryset = RerateJob.objects.select_related("account", "rate_table", "created_by")
    serializer_class = serializers.RerateJobSerializer
    filterset_class = rerating_filtersets.RerateJobFilterSet
    http_method_names = ["get", "post", "head", "options"]
    scopes = {"create": APIScope.MONEY}

    def create(self, request, *args, **kwargs):
        # The page's form checks the scope and the period, naming the field; one definition for both.
        form = RerateJobForm(data=request.data)
        if not form.is_valid():
            raise ValidationError(form.errors)
        with transaction.atomic():
            job = form.save(commit=False)
            job.created_by = request.user
            job.save()
            # Queued once the job row is committed, or the worker could look for it before it exists.
            transaction.on_commit(partial(rerate.delay, job.pk))
        return Response(self.get_serializer(job).data, status=status.HTTP_201_CREATED)


class RerateChangeViewSet(ReadOnlyModelViewSet):
    """What each re-rating changed: every CDR's fee and vendor cost before and after."""

    queryset = RerateChange.objects.all()
    serializer_class = serializers.RerateChangeSerializer
    filterset_class = rerating_filtersets.RerateChangeFilterSet
