"""The live pages' filter forms: what the current calls, registrations and statistics are narrowed by."""

from django import forms

from softswitch_portal.generic.forms import style_widgets
from softswitch_portal.generic.lookups import LookupField

from . import stats

STATE_CHOICES = (("", "Any"), ("answered", "Answered"), ("setup", "Setting up"))


class CurrentCallFilterForm(forms.Form):
    q = forms.CharField(
        label="Number", required=False, max_length=64, help_text="Part of the caller or callee, as received or sent."
    )
    account = LookupField("account", required=False, empty_label="Any")
    mapping_gateway = LookupField("mapping-gateway", required=False, empty_label="Any")
    routing_gateway = LookupField("routing-gateway", required=False, empty_label="Any")
    node = forms.CharField(required=False, max_length=64)
    state = forms.ChoiceField(choices=STATE_CHOICES, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style_widgets(self.fields)

    def filters(self):
        data = self.cleaned_data
        return {
            "text": data["q"].strip(),
            "account": data["account"].pk if data["account"] else None,
            "mapping_gateway": data["mapping_gateway"].pk if data["mapping_gateway"] else None,
            "routing_gateway": data["routing_gateway"].pk if data["routing_gateway"] else None,
            "node": data["node"].strip(),
            "state": data["state"],
        }


class RegistrationFilterForm(forms.Form):
    q = forms.CharField(label="Phone or contact", required=False, max_length=100)
    source_ip = forms.CharField(label="Source IP", required=False, max_length=64)
    node = forms.CharField(required=False, max_length=64)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style_widgets(self.fields)


class StatisticsForm(forms.Form):
    side = forms.ChoiceField(
        choices=((stats.MAPPING, "Mapping gateways"), (stats.ROUTING, "Routing gateways")), required=False
    )
    mapping_gateway = LookupField(
        "mapping-gateway", required=False, empty_label="All traffic", help_text="The hourly chart of one gateway."
    )
    routing_gateway = LookupField(
        "routing-gateway", required=False, empty_label="All traffic", help_text="The hourly chart of one gateway."
    )
    days = forms.IntegerField(min_value=1, max_value=stats.MAX_DAYS, required=False, initial=2)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style_widgets(self.fields)

    def clean(self):
        data = super().clean()
        if data.get("mapping_gateway") and data.get("routing_gateway"):
            self.add_error("routing_gateway", "Pick one gateway: a mapping or a routing one.")
        return data
