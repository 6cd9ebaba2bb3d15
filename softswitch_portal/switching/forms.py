"""Switching forms. List fields are typed as text and checked entry by entry."""

import ipaddress

from django import forms

from billing.choices import AccountType
from billing.models import Account
from callcore.contract import PARAMETERS, PARAMETERS_BY_NAME
from security import ip_countries
from softswitch_portal.core import roles
from softswitch_portal.core.models import SystemParameter
from softswitch_portal.generic.forms import ArrayTextField, BaseModelForm
from softswitch_portal.validators import validate_ip_or_cidr, validate_number, validate_prefix

from .choices import WEEKDAYS, MediaProxy, TransformTarget
from .models import (
    PHONE_PASSWORD_MIN_LENGTH,
    CallerNumberPool,
    MappingGateway,
    NumberTransformRule,
    Phone,
    RoutingGateway,
    RoutingSchedule,
)


def validate_sip_failure(code):
    if not 300 <= code <= 699:
        raise forms.ValidationError("%(value)s is not a final SIP failure status (300-699).", params={"value": code})


def validate_country(code):
    if len(code) != 2 or not code.isalpha():
        raise forms.ValidationError("%(value)r is not a two-letter country code.", params={"value": code})


def ip_list(**kwargs):
    return ArrayTextField(item_validator=validate_ip_or_cidr, **kwargs)


def prefix_list(**kwargs):
    return ArrayTextField(item_validator=validate_prefix, **kwargs)


def transforms_field(target, label):
    """Only rules written for this side: a callee rule on the caller list is always a mistake."""
    return forms.ModelMultipleChoiceField(
        queryset=NumberTransformRule.objects.filter(target=target),
        required=False,
        label=label,
        help_text="Applied in ascending priority; the first matching rule wins.",
    )


class MediaProxyMixin:
    """The media proxy setting may be left out (an API client, an older form): off, the model's default."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["media_proxy"].required = False

    def clean_media_proxy(self):
        return self.cleaned_data.get("media_proxy") or MediaProxy.OFF


class MappingGatewayForm(MediaProxyMixin, BaseModelForm):
    remote_ips = ip_list(label="Remote IPs", help_text="Source IPs or CIDR networks calls are accepted from.")
    prefix_allow = prefix_list(required=False, label="Allowed prefixes", help_text="Callee prefixes; empty = all.")
    prefix_forbid = prefix_list(required=False, label="Forbidden prefixes")
    caller_transforms = transforms_field(TransformTarget.CALLER, "Caller transforms")
    callee_transforms = transforms_field(TransformTarget.CALLEE, "Callee transforms")

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
        ("Routing", ("route_policy",)),
        ("Media", ("media_proxy",)),
    )

    class Meta:
        model = MappingGateway
        fields = (
            "name",
            "account",
            "enabled",
            "description",
            "auth_mode",
            "remote_ips",
            "remote_port",
            "capacity",
            "cps_limit",
            "conversation_limit",
            "caller_transforms",
            "callee_transforms",
            "prefix_allow",
            "prefix_forbid",
            "caller_list_groups",
            "callee_list_groups",
            "dynamic_blacklist_standalone",
            "high_risk_exempt",
            "require_caller_number",
            "route_policy",
            "media_proxy",
        )

    def clean_remote_ips(self):
        remote_ips = self.cleaned_data["remote_ips"]
        user = getattr(self, "user", None)
        if user is None or user.has_perm(roles.WIDE_NETWORK):
            return remote_ips
        # Only networks this edit adds: a gateway an administrator opened wide stays editable by its engineers.
        before = set(self.instance.remote_ips or ()) if self.instance.pk else set()
        wide = [value for value in remote_ips if value not in before and is_wide_network(value)]
        if wide:
            raise forms.ValidationError(
                f"{', '.join(wide)}: a network wider than /{WIDE_IPV4} (IPv4) or /{WIDE_IPV6} (IPv6) lets in "
                "strangers' calls billed to this customer, and needs the wide-network permission."
            )
        return remote_ips


# The widest networks a mapping gateway may claim without the wide-network permission.
WIDE_IPV4 = 24
WIDE_IPV6 = 48


def is_wide_network(value):
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return network.prefixlen < (WIDE_IPV4 if network.version == 4 else WIDE_IPV6)


class RoutingGatewayForm(MediaProxyMixin, BaseModelForm):
    prefixes = prefix_list(required=False, help_text="Callee prefixes this vendor serves (VOS prefix); empty = all.")
    failover_codes = ArrayTextField(
        required=False,
        coerce=int,
        item_validator=validate_sip_failure,
        label="Failover codes",
        help_text="SIP codes that fail over to the next vendor besides 408, 480, 500, 502, 503, 504.",
    )
    clearing_account = forms.ModelChoiceField(
        queryset=Account.objects.filter(account_type=AccountType.VENDOR),
        required=False,
        help_text="The vendor account the cost of calls accrues on.",
    )
    caller_transforms = transforms_field(TransformTarget.CALLER, "Caller transforms")
    callee_transforms = transforms_field(TransformTarget.CALLEE, "Callee transforms")

    fieldsets = (
        ("Gateway", ("name", "enabled", "description")),
        ("Destination", ("host", "port", "transport", "prefixes", "tech_prefix", "priority")),
        ("Limits", ("capacity", "cps_limit", "conversation_limit", "dynamic_blacklist_standalone")),
        ("Billing", ("clearing_account",)),
        ("Numbers", ("caller_transforms", "callee_transforms", "caller_number_pool")),
        ("Failover and schedule", ("failover_codes", "schedules")),
        ("Media", ("media_proxy",)),
    )

    class Meta:
        model = RoutingGateway
        fields = (
            "name",
            "enabled",
            "description",
            "host",
            "port",
            "transport",
            "prefixes",
            "tech_prefix",
            "priority",
            "capacity",
            "cps_limit",
            "conversation_limit",
            "dynamic_blacklist_standalone",
            "clearing_account",
            "caller_transforms",
            "callee_transforms",
            "caller_number_pool",
            "failover_codes",
            "schedules",
            "media_proxy",
        )


class PhonePasswordMixin:
    """A phone's password, write-only: never rendered back, blank keeps the hashes it has (switching.Phone)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["password"]
        field.required = self.instance.pk is None
        if field.required:
            field.help_text = (
                f"Digest secret, stored only as its hashes (HA1). At least {PHONE_PASSWORD_MIN_LENGTH} characters, "
                "not only digits, not the username, not a common password."
            )

    def _post_clean(self):
        # Set before the model's clean(), which refuses a weak one; save() hashes it with the username saved.
        password = self.cleaned_data.get("password")
        if password:
            self.instance.password = password
        super()._post_clean()


def phone_password_field():
    return forms.CharField(
        required=False,
        strip=False,
        label="Password",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored only as its hashes (HA1): leave blank to keep the current password.",
    )


class PhoneForm(PhonePasswordMixin, BaseModelForm):
    password = phone_password_field()
    allowed_networks = ip_list(
        required=False, label="Allowed networks", help_text="Source networks it may register from; empty = anywhere."
    )
    allowed_countries = ArrayTextField(
        required=False,
        normalize=str.upper,
        item_validator=validate_country,
        label="Allowed countries",
        help_text="ISO 3166 codes such as DE, US (geofence); empty = anywhere. With allowed networks too, a source "
        "in any of the networks or any of the countries may register and call.",
    )

    fieldsets = (
        ("Phone", ("username", "password", "account", "enabled", "description")),
        ("Limits", ("capacity", "allowed_networks", "allowed_countries")),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # What the countries are checked against, where the operator types them.
        field = self.fields["allowed_countries"]
        field.help_text = f"{field.help_text} {ip_countries.state()}"

    class Meta:
        model = Phone
        fields = (
            "username",
            "account",
            "enabled",
            "description",
            "capacity",
            "allowed_networks",
            "allowed_countries",
        )
        # render_value: editing a phone must not blank its secret.
        widgets = {"password": forms.PasswordInput(render_value=True, attrs={"autocomplete": "new-password"})}


class NumberTransformRuleForm(BaseModelForm):
    fieldsets = (
        ("Rule", ("name", "target", "priority", "description")),
        ("Match", ("match_prefix", "min_length", "max_length")),
        ("Rewrite", ("strip_digits", "prepend")),
    )

    class Meta:
        model = NumberTransformRule
        fields = (
            "name",
            "target",
            "priority",
            "description",
            "match_prefix",
            "min_length",
            "max_length",
            "strip_digits",
            "prepend",
        )


class RoutingScheduleForm(BaseModelForm):
    weekdays = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "inline-choices"}),
        help_text="None ticked = every day.",
    )

    class Meta:
        model = RoutingSchedule
        fields = ("name", "weekdays", "start_time", "end_time", "description")


class CallerNumberPoolForm(BaseModelForm):
    numbers = ArrayTextField(item_validator=validate_number, help_text="Caller numbers presented to the vendor.")

    class Meta:
        model = CallerNumberPool
        fields = ("name", "mode", "numbers", "description")


def parameter_help(declaration):
    if declaration.type is bool:
        shape = "0 or 1"
    else:
        low = "" if declaration.min_value is None else declaration.min_value
        high = "" if declaration.max_value is None else declaration.max_value
        shape = f"an integer {low}…{high}"
    return f"{declaration.description} Default {int(declaration.default)}; {shape}."


class SystemParameterForm(BaseModelForm):
    """The name is chosen from the declared parameters; the model's clean() checks the value."""

    name = forms.ChoiceField(choices=[("", "---------")] + [(p.name, p.name) for p in PARAMETERS])

    class Meta:
        model = SystemParameter
        fields = ("name", "value")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # Renaming a row would silently reset one parameter and set another.
            self.fields["name"].disabled = True
        else:
            taken = set(SystemParameter.objects.values_list("name", flat=True))
            self.fields["name"].choices = [(v, label) for v, label in self.fields["name"].choices if v not in taken]
        name = self.instance.name or self.initial.get("name") or self.data.get("name")
        declaration = PARAMETERS_BY_NAME.get(name or "")
        if declaration is not None:
            self.fields["value"].help_text = parameter_help(declaration)
            if not self.instance.pk and self.initial.get("value") in (None, ""):
                self.initial["value"] = int(declaration.default)
