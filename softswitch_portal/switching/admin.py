from django import forms
from django.contrib import admin

from .forms import PhonePasswordMixin, phone_password_field
from .models import (
    CallerNumberPool,
    MappingGateway,
    NumberTransformRule,
    Phone,
    RoutingGateway,
    RoutingSchedule,
)


@admin.register(MappingGateway)
class MappingGatewayAdmin(admin.ModelAdmin):
    list_display = ("name", "account", "remote_ips", "auth_mode", "capacity", "cps_limit", "route_policy", "enabled")
    list_filter = ("enabled", "auth_mode", "route_policy", "dynamic_blacklist_standalone", "require_caller_number")
    search_fields = ("name", "description", "account__name")
    list_select_related = ("account",)
    filter_horizontal = ("caller_transforms", "callee_transforms", "caller_list_groups", "callee_list_groups")


@admin.register(RoutingGateway)
class RoutingGatewayAdmin(admin.ModelAdmin):
    list_display = ("name", "host", "port", "transport", "prefixes", "priority", "capacity", "clearing_account",
                    "enabled")  # fmt: skip
    list_filter = ("enabled", "transport", "dynamic_blacklist_standalone")
    search_fields = ("name", "host", "description")
    list_select_related = ("clearing_account",)
    filter_horizontal = ("caller_transforms", "callee_transforms", "schedules")


class PhoneAdminForm(PhonePasswordMixin, forms.ModelForm):
    password = phone_password_field()

    class Meta:
        model = Phone
        fields = ("username", "password", "account", "capacity", "allowed_networks", "allowed_countries", "enabled",
                  "description")  # fmt: skip


@admin.register(Phone)
class PhoneAdmin(admin.ModelAdmin):
    form = PhoneAdminForm
    list_display = ("username", "account", "capacity", "enabled")
    list_filter = ("enabled",)
    search_fields = ("username", "description", "account__name")
    list_select_related = ("account",)


@admin.register(NumberTransformRule)
class NumberTransformRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "target", "priority", "match_prefix", "min_length", "max_length", "strip_digits", "prepend")
    list_filter = ("target",)
    search_fields = ("name", "match_prefix", "prepend")


@admin.register(RoutingSchedule)
class RoutingScheduleAdmin(admin.ModelAdmin):
    list_display = ("name", "weekdays", "start_time", "end_time")
    search_fields = ("name", "description")


@admin.register(CallerNumberPool)
class CallerNumberPoolAdmin(admin.ModelAdmin):
    list_display = ("name", "mode")
    list_filter = ("mode",)
    search_fields = ("name", "description")
