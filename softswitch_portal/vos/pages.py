"""Portal pages of the VOS API access rules: which networks may call which actions by address alone."""

import django_tables2 as tables

from softswitch_portal.generic import views as generic
from softswitch_portal.generic.forms import BaseModelForm
from softswitch_portal.generic.tables import BaseTable

from .filtersets import VosAccessRuleFilterSet
from .models import VosAccessRule


class VosAccessRuleTable(BaseTable):
    network = tables.Column(linkify=True, attrs={"td": {"class": "mono"}})
    directory = tables.Column(attrs={"td": {"class": "mono"}})

    class Meta(BaseTable.Meta):
        model = VosAccessRule
        fields = ("network", "directory", "memo", "created")


class VosAccessRuleForm(BaseModelForm):
    class Meta:
        model = VosAccessRule
        fields = ("network", "directory", "memo")


class VosAccessRuleListView(generic.ObjectListView):
    queryset = VosAccessRule.objects.all()
    filterset = VosAccessRuleFilterSet
    table = VosAccessRuleTable


class VosAccessRuleView(generic.ObjectView):
    queryset = VosAccessRule.objects.all()


class VosAccessRuleEditView(generic.ObjectEditView):
    queryset = VosAccessRule.objects.all()
    form = VosAccessRuleForm


class VosAccessRuleDeleteView(generic.ObjectDeleteView):
    queryset = VosAccessRule.objects.all()
