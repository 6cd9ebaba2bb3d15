"""The routing simulator's page and its API endpoint (softswitch_portal.switching.simulator does the work)."""

from __future__ import annotations

import ipaddress

import django_tables2 as tables
from django import forms
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.utils import timezone
from django.views import View
from django_tables2 import RequestConfig
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from security.api_clients import APIScope
from softswitch_portal.api.permissions import ScopedModelPermissions
from softswitch_portal.generic.forms import style_widgets
from softswitch_portal.generic.lookups import LookupField

from . import simulator
from .models import RoutingGateway

PERMISSION = "switching.view_routinggateway"


def _epoch_ms(moment) -> int:
    return int(moment.timestamp() * 1000)


class SimulatorForm(forms.Form):
    """One call to simulate: where it comes from, the numbers and when; each error names its field."""

    mapping_gateway = LookupField("mapping-gateway", required=False, empty_label="Type a name, or give a source IP")
    source_ip = forms.CharField(
        label="Source IP", required=False, help_text="Instead of a mapping gateway: the address the INVITE comes from."
    )
    source_port = forms.IntegerField(label="Source port", required=False, min_value=1, max_value=65535)
    caller = forms.CharField(max_length=64, initial="15551230000")
    callee = forms.CharField(max_length=64)
    at = forms.DateTimeField(label="Time", required=False, help_text="Empty: now (live capacity and CPS are read).")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style_widgets(self.fields)

    def clean_source_ip(self):
        value = self.cleaned_data["source_ip"].strip()
        if value:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise forms.ValidationError(f"{value!r} is not an IP address.") from None
        return value

    def clean(self):
        data = super().clean()
        if not data.get("mapping_gateway") and not data.get("source_ip") and "source_ip" not in self.errors:
            self.add_error("source_ip", "Give a source IP or pick a mapping gateway.")
        return data

    def simulate(self):
        data = self.cleaned_data
        now = timezone.now()
        gateway = data.get("mapping_gateway")
        return simulator.simulate(
            source_ip=data.get("source_ip") or "",
            source_port=data.get("source_port") or 5060,
            mapping_gateway_id=gateway.pk if gateway is not None else None,
            caller=data["caller"],
            callee=data["callee"],
            at_ms=_epoch_ms(data.get("at") or now),
            now_ms=_epoch_ms(now),
        )


class CandidateTable(tables.Table):
    """Every routing gateway, kept in policy order or skipped with why."""

    order = tables.Column(verbose_name="#", attrs={"td": {"class": "num"}}, order_by=("rank",))
    gateway = tables.Column(verbose_name="Routing gateway")
    prefixes = tables.Column()
    priority = tables.Column(attrs={"td": {"class": "num"}})
    reason = tables.TemplateColumn(
        '{% if record.first %}<span class="badge badge-yes">first</span>{% elif record.kept %}<span class="badge '
        'badge-light">kept</span>{% else %}<span class="badge badge-warning">{{ value }}</span>{% endif %}',
        verbose_name="Kept or skipped",
    )
    why = tables.Column(verbose_name="Why", attrs={"td": {"class": "wrap"}})
    callee_out = tables.TemplateColumn(
        '{{ value }}{% if record.caller_out %}<div class="muted">from {{ record.caller_out }}</div>{% endif %}',
        verbose_name="Numbers sent",
    )
    customer_price = tables.TemplateColumn(
        "{{ value }}{% if record.vendor_price %} / {{ record.vendor_price }}{% endif %}",
        verbose_name="Rate / vendor rate",
        attrs={"td": {"class": "num"}},
    )
    live_calls = tables.TemplateColumn(
        "{% if value is not None %}{{ value }}{% if record.capacity %} / {{ record.capacity }}{% endif %}{% endif %}",
        verbose_name="Live calls",
        attrs={"td": {"class": "num"}},
    )
    cps_now = tables.TemplateColumn(
        "{% if value is not None %}{{ value }}{% if record.cps_limit %} / {{ record.cps_limit }}{% endif %}{% endif %}",
        verbose_name="CPS now",
        attrs={"td": {"class": "num"}},
    )

    class Meta:
        attrs = {"class": "table"}
        empty_text = "No routing gateway is configured."
        order_by = ("order",)


class SimulatorView(LoginRequiredMixin, View):
    template_name = "switching/simulator.html"

    def get(self, request):
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied("You may not see the routing gateways.")
        form = SimulatorForm(request.GET or None)
        context = {"form": form, "title": "Routing simulator"}
        if form.is_bound and form.is_valid():
            try:
                result = form.simulate()
            except simulator.SimulationError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            else:
                table = CandidateTable([vars(row) for row in result.rows])
                RequestConfig(request, paginate=False).configure(table)
                context.update(result=result, table=table)
        return render(request, self.template_name, context)


class SimulationSerializer(serializers.Serializer):
    """The simulator's input: the page's form, as JSON."""

    mapping_gateway = serializers.IntegerField(required=False, allow_null=True)
    source_ip = serializers.IPAddressField(required=False, allow_blank=True)
    source_port = serializers.IntegerField(required=False, min_value=1, max_value=65535, allow_null=True)
    caller = serializers.CharField(max_length=64)
    callee = serializers.CharField(max_length=64)
    at = serializers.DateTimeField(required=False, allow_null=True)


class SimulatorAPIView(APIView):
    """POST a call (source IP or mapping gateway, caller, callee, time): the call core's plan for it, every routing
    gateway kept or skipped with why, the rate, the maximum duration and the predicted first vendor. Reads only."""

    permission_classes = [ScopedModelPermissions]
    permission_model = RoutingGateway
    model_actions = {None: "list"}
    scopes = {None: APIScope.READ}  # it changes nothing
    serializer_class = SimulationSerializer

    def post(self, request):
        serializer = SimulationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        form = SimulatorForm(
            {
                "mapping_gateway": data.get("mapping_gateway") or "",
                "source_ip": data.get("source_ip") or "",
                "source_port": data.get("source_port") or "",
                "caller": data["caller"],
                "callee": data["callee"],
            }
        )
        if not form.is_valid():
            return Response({name: [str(e) for e in errors] for name, errors in form.errors.items()}, status=400)
        if data.get("at"):
            form.cleaned_data["at"] = data["at"]
        try:
            result = form.simulate()
        except simulator.SimulationError as exc:
            return Response({exc.field or "non_field_errors": [str(exc)]}, status=400 if exc.field else 503)
        return Response(result.as_dict())
