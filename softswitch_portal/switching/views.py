"""Switching pages: declarations on the generic views; system parameters list the declarations."""

from django.urls import reverse
from django.utils.http import urlencode

from callcore.contract import PARAMETERS, PARAMETERS_BY_NAME
from security import ip_countries
from softswitch_portal.core.models import SystemParameter
from softswitch_portal.generic import views as generic
from softswitch_portal.generic.utils import user_can

from . import filtersets, forms, tables
from .models import (
    CallerNumberPool,
    MappingGateway,
    NumberTransformRule,
    Phone,
    RoutingGateway,
    RoutingSchedule,
    TestCall,
)

RECORD = ("Record", ("id", "created", "updated"))
# Mapping gateways


class MappingGatewayListView(generic.ObjectListView):
    queryset = MappingGateway.objects.select_related("account")
    filterset = filtersets.MappingGatewayFilterSet
    table = tables.MappingGatewayTable
    primary_filters = ("name", "account", "remote_ips", "auth_mode", "route_policy", "enabled")


class MappingGatewayView(generic.ObjectView):
    queryset = MappingGateway.objects.select_related("account")
    fieldsets = (
        ("Gateway", ("name", "account", "enabled", "description")),
        ("Authentication", ("auth_mode", "remote_ips", "remote_port")),
        ("Limits", ("capacity", "cps_limit", "conversation_limit")),
        ("Numbers", ("caller_transforms", "callee_transforms", "prefix_allow", "prefix_forbid")),
        (
            "Screening",
            (
                "caller_list_groups",
                "callee_list_groups",
                "dynamic_blacklist_standalone",
                "high_risk_exempt",
                "require_caller_number",
            ),
        ),
        ("Routing", ("route_policy", "media_proxy")),
        RECORD,
    )

    def get_extra_context(self, request, obj):
        cdrs = f"{reverse('billing:cdr_list')}?{urlencode({'mapping_gateway': obj.pk})}"
        return {"extra_buttons": [("Calls", cdrs, "")]}


class MappingGatewayEditView(generic.ObjectEditView):
    queryset = MappingGateway.objects.all()
    form = forms.MappingGatewayForm


class MappingGatewayDeleteView(generic.ObjectDeleteView):
    queryset = MappingGateway.objects.all()


# Routing gateways


class RoutingGatewayListView(generic.ObjectListView):
    queryset = RoutingGateway.objects.select_related("clearing_account").prefetch_related("schedules")
    filterset = filtersets.RoutingGatewayFilterSet
    table = tables.RoutingGatewayTable
    primary_filters = ("name", "host", "prefixes", "transport", "clearing_account", "enabled")


class RoutingGatewayView(generic.ObjectView):
    queryset = RoutingGateway.objects.select_related("clearing_account", "caller_number_pool")
    fieldsets = (
        ("Gateway", ("name", "enabled", "description")),
        ("Destination", ("host", "port", "transport", "prefixes", "tech_prefix", "priority")),
        ("Limits", ("capacity", "cps_limit", "conversation_limit", "dynamic_blacklist_standalone")),
        ("Media", ("media_proxy",)),
        ("Billing", ("clearing_account",)),
        ("Numbers", ("caller_transforms", "callee_transforms", "caller_number_pool")),
        ("Failover and schedule", ("failover_codes", "schedules")),
        RECORD,
    )

    def get_extra_context(self, request, obj):
        cdrs = f"{reverse('billing:cdr_list')}?{urlencode({'routing_gateway': obj.pk})}"
        test_call = reverse("switching:testcall_start", args=[obj.pk])
        context = {"extra_buttons": [("Calls", cdrs, ""), ("Test call", test_call, "")]}
        if user_can(request.user, TestCall, "list"):
            context["related_tables"] = [
                generic.related_table(
                    "Recent test calls",
                    tables.TestCallTable,
                    obj.test_calls.select_related("requested_by").defer(*TestCallListView.left_out),
                    "switching:testcall_list",
                    gateway=obj.pk,
                )
            ]
        return context


class RoutingGatewayEditView(generic.ObjectEditView):
    queryset = RoutingGateway.objects.all()
    form = forms.RoutingGatewayForm


class RoutingGatewayDeleteView(generic.ObjectDeleteView):
    queryset = RoutingGateway.objects.all()


# Test calls: placed from a routing gateway's page (testcall_views), listed here.


class TestCallListView(generic.ObjectListView):
    # The audio, its picture and the SIP trace are for the result page, not for a table of many calls.
    left_out = ("recording", "waveform_svg", "sip_trace")
    queryset = TestCall.objects.select_related("requested_by").defer(*left_out)
    filterset = filtersets.TestCallFilterSet
    table = tables.TestCallTable
    primary_filters = ("gateway", "number", "status", "audio_heard")
    export_exclude = ("recording", "waveform_svg")


# Phones


class PhoneListView(generic.ObjectListView):
    queryset = Phone.objects.select_related("account")
    filterset = filtersets.PhoneFilterSet
    table = tables.PhoneTable
    # The hashes are as good as the password to a digest client: never exported.
    export_exclude = ("ha1", "ha1b")


class PhoneView(generic.ObjectView):
    queryset = Phone.objects.select_related("account")
    # Shown as set or not, never their value: to a digest client a hash is as good as the password.
    secret_fields = ("ha1", "ha1b")
    fieldsets = (
        ("Phone", ("username", "account", "enabled", "test_phone", "description")),
        ("Digest secret", ("ha1", "ha1b", "digest_realm")),
        ("Limits", ("capacity", "allowed_networks", "allowed_countries")),
        RECORD,
    )

    def get_extra_context(self, request, obj):
        return {"extra_panels": [{"title": "Geofence data", "rows": [("IP-country table", ip_countries.state())]}]}


class PhoneEditView(generic.ObjectEditView):
    queryset = Phone.objects.all()
    form = forms.PhoneForm


class PhoneDeleteView(generic.ObjectDeleteView):
    queryset = Phone.objects.all()


# Number transform rules


class NumberTransformRuleListView(generic.ObjectListView):
    queryset = NumberTransformRule.objects.all()
    filterset = filtersets.NumberTransformRuleFilterSet
    table = tables.NumberTransformRuleTable


class NumberTransformRuleView(generic.ObjectView):
    queryset = NumberTransformRule.objects.all()
    fieldsets = (
        ("Rule", ("name", "target", "priority", "description")),
        ("Match", ("match_prefix", "min_length", "max_length")),
        ("Rewrite", ("strip_digits", "prepend", "id")),
    )

    def get_extra_context(self, request, obj):
        # The rule is attached through related_name="+", so look the gateways up from their side.
        field = "caller_transforms" if obj.target == "caller" else "callee_transforms"
        return {
            "related_tables": [
                generic.related_table(
                    "Mapping gateways using it",
                    tables.MappingGatewayTable,
                    MappingGateway.objects.filter(**{field: obj}).select_related("account"),
                    "switching:mappinggateway_list",
                    **{field: obj.pk},
                ),
                generic.related_table(
                    "Routing gateways using it",
                    tables.RoutingGatewayTable,
                    RoutingGateway.objects.filter(**{field: obj}).select_related("clearing_account"),
                    "switching:routinggateway_list",
                    **{field: obj.pk},
                ),
            ]
        }


class NumberTransformRuleEditView(generic.ObjectEditView):
    queryset = NumberTransformRule.objects.all()
    form = forms.NumberTransformRuleForm


class NumberTransformRuleDeleteView(generic.ObjectDeleteView):
    queryset = NumberTransformRule.objects.all()


# Routing schedules


class RoutingScheduleListView(generic.ObjectListView):
    queryset = RoutingSchedule.objects.all()
    filterset = filtersets.RoutingScheduleFilterSet
    table = tables.RoutingScheduleTable


class RoutingScheduleView(generic.ObjectView):
    queryset = RoutingSchedule.objects.all()

    def get_extra_context(self, request, obj):
        return {
            "related_tables": [
                generic.related_table(
                    "Routing gateways",
                    tables.RoutingGatewayTable,
                    obj.routing_gateways.select_related("clearing_account"),
                    "switching:routinggateway_list",
                    schedules=obj.pk,
                )
            ]
        }


class RoutingScheduleEditView(generic.ObjectEditView):
    queryset = RoutingSchedule.objects.all()
    form = forms.RoutingScheduleForm


class RoutingScheduleDeleteView(generic.ObjectDeleteView):
    queryset = RoutingSchedule.objects.all()


# Caller number pools


class CallerNumberPoolListView(generic.ObjectListView):
    queryset = CallerNumberPool.objects.all()
    filterset = filtersets.CallerNumberPoolFilterSet
    table = tables.CallerNumberPoolTable


class CallerNumberPoolView(generic.ObjectView):
    queryset = CallerNumberPool.objects.all()

    def get_extra_context(self, request, obj):
        return {
            "related_tables": [
                generic.related_table(
                    "Routing gateways",
                    tables.RoutingGatewayTable,
                    obj.routing_gateways.select_related("clearing_account"),
                    "switching:routinggateway_list",
                    caller_number_pool=obj.pk,
                )
            ]
        }


class CallerNumberPoolEditView(generic.ObjectEditView):
    queryset = CallerNumberPool.objects.all()
    form = forms.CallerNumberPoolForm


class CallerNumberPoolDeleteView(generic.ObjectDeleteView):
    queryset = CallerNumberPool.objects.all()


# System parameters: the list shows every declared parameter, stored or at its default.


def parameter_range(declaration):
    if declaration.type is bool:
        return "0 / 1"
    low = "" if declaration.min_value is None else declaration.min_value
    high = "" if declaration.max_value is None else declaration.max_value
    return f"{low} … {high}"


class SystemParameterListView(generic.ObjectListView):
    queryset = SystemParameter.objects.all()
    filterset = filtersets.SystemParameterFilterSet
    table = tables.SystemParameterTable

    def parameter_rows(self, request, queryset):
        """One row per declaration, with its stored value if any, then stored rows nobody declares.

        ``queryset`` is the filtered set of stored rows; a declared parameter
        without a row still matches a name or search filter by its own name.
        """
        stored = {}
        for row in self.get_queryset(request):
            declaration = PARAMETERS_BY_NAME.get(row.name)
            stored[declaration.name if declaration else row.name] = row
        matching = {row.name for row in queryset}
        filtering_stored = any(request.GET.get(name) for name in ("value", "id"))
        name_filter = request.GET.get("name", "")
        search = request.GET.get("q", "").strip().lower()
        can_add = user_can(request.user, SystemParameter, "add")
        can_edit = user_can(request.user, SystemParameter, "edit")

        rows = []
        for declaration in PARAMETERS:
            row = stored.pop(declaration.name, None)
            if filtering_stored and (row is None or row.name not in matching):
                continue
            if name_filter and declaration.name != name_filter:
                continue
            if search and search not in declaration.name.lower() and search not in declaration.description.lower():
                continue
            value = row.value if row is not None else str(int(declaration.default))
            if row is not None:
                edit_url = reverse("switching:systemparameter_edit", args=[row.pk]) if can_edit else None
            else:
                edit_url = f"{reverse('switching:systemparameter_add')}?name={declaration.name}" if can_add else None
            rows.append(
                {
                    "pk": row.pk if row else None,
                    "name": declaration.name,
                    "value": value,
                    "default": int(declaration.default),
                    "allowed": parameter_range(declaration),
                    "description": declaration.description,
                    "updated": row.updated if row else None,
                    "declared": True,
                    "is_set": row is not None,
                    "changed": value != str(int(declaration.default)),
                    "edit_url": edit_url,
                }
            )
        for name, row in stored.items():
            if row.name in matching and (not search or search in name.lower()):
                rows.append(
                    {
                        "pk": row.pk,
                        "name": name,
                        "value": row.value,
                        "default": None,
                        "allowed": "",
                        "description": "Not a declared parameter: left by an older version. Delete it.",
                        "updated": row.updated,
                        "declared": False,
                        "is_set": True,
                        "changed": True,
                        "edit_url": None,
                    }
                )
        return rows

    def get_table_data(self, request, queryset):
        return self.parameter_rows(request, queryset)

    def export_header_and_rows(self, request, queryset):
        header = ["name", "value", "default", "range", "description"]
        rows = [
            [r["name"], r["value"], "" if r["default"] is None else r["default"], r["allowed"], r["description"]]
            for r in self.parameter_rows(request, queryset)
        ]
        return header, rows


class SystemParameterView(generic.ObjectView):
    queryset = SystemParameter.objects.all()
    fieldsets = (("Parameter", ("name", "value", "description", "updated", "id")),)

    def get_extra_context(self, request, obj):
        declaration = obj.declaration
        panels = []
        if declaration is not None:
            panels.append(
                {
                    "title": "Declaration",
                    "rows": [
                        ("Default", int(declaration.default)),
                        ("Range", parameter_range(declaration)),
                        ("Type", "boolean (0/1)" if declaration.type is bool else "integer"),
                        ("Aliases", ", ".join(declaration.aliases) or "—"),
                    ],
                    "note": "Delete this row to return the parameter to its default.",
                }
            )
        return {"extra_panels": panels}


class SystemParameterEditView(generic.ObjectEditView):
    queryset = SystemParameter.objects.all()
    form = forms.SystemParameterForm


class SystemParameterDeleteView(generic.ObjectDeleteView):
    queryset = SystemParameter.objects.all()
