"""Security pages: declarations on the generic views."""

from django.db.models import Count
from django.urls import reverse
from django.utils.http import urlencode

from billing.models import CDR
from billing.tables import CDRTable
from softswitch_portal.generic import views as generic
from softswitch_portal.generic.utils import user_can

from . import filtersets, forms, tables
from .models import BlackWhiteListGroup, DynamicBlacklistEntry, ListEntry

# Black/white list groups


class BlackWhiteListGroupListView(generic.ObjectListView):
    queryset = BlackWhiteListGroup.objects.annotate(entry_count=Count("entries"))
    filterset = filtersets.BlackWhiteListGroupFilterSet
    table = tables.BlackWhiteListGroupTable


class BlackWhiteListGroupView(generic.ObjectView):
    queryset = BlackWhiteListGroup.objects.all()

    def get_extra_context(self, request, obj):
        buttons = []
        if user_can(request.user, ListEntry, "add"):
            buttons.append(("Add entry", f"{reverse('security:listentry_add')}?group={obj.pk}", "btn-primary"))
        return {
            "extra_buttons": buttons,
            "related_tables": [
                generic.related_table(
                    "Entries",
                    tables.ListEntryTable,
                    obj.entries.all(),
                    "security:listentry_list",
                    shown=25,
                    group=obj.pk,
                )
            ],
        }


class BlackWhiteListGroupEditView(generic.ObjectEditView):
    queryset = BlackWhiteListGroup.objects.all()
    form = forms.BlackWhiteListGroupForm


class BlackWhiteListGroupDeleteView(generic.ObjectDeleteView):
    queryset = BlackWhiteListGroup.objects.all()


# List entries


class ListEntryListView(generic.ObjectListView):
    queryset = ListEntry.objects.select_related("group")
    filterset = filtersets.ListEntryFilterSet
    table = tables.ListEntryTable


class ListEntryView(generic.ObjectView):
    queryset = ListEntry.objects.select_related("group")


class ListEntryEditView(generic.ObjectEditView):
    queryset = ListEntry.objects.all()
    form = forms.ListEntryForm


class ListEntryDeleteView(generic.ObjectDeleteView):
    queryset = ListEntry.objects.all()


# Dynamic blacklist: filled by the worker; operators change the status and expiry
# (the review workflow with the evidence beside each entry comes later).


class DynamicBlacklistEntryListView(generic.ObjectListView):
    queryset = DynamicBlacklistEntry.objects.select_related("mapping_gateway", "reviewed_by")
    filterset = filtersets.DynamicBlacklistEntryFilterSet
    table = tables.DynamicBlacklistEntryTable
    primary_filters = ("number", "status", "scope", "mapping_gateway", "reason", "created_after", "created_before")


class DynamicBlacklistEntryView(generic.ObjectView):
    queryset = DynamicBlacklistEntry.objects.select_related("mapping_gateway", "reviewed_by")
    fieldsets = (
        ("Entry", ("number", "scope", "mapping_gateway", "status", "created", "expires_at", "id")),
        ("Why", ("reason", "thresholds", "evidence")),
        ("Review", ("reviewed_by", "reviewed_at")),
    )

    def get_extra_context(self, request, obj):
        buttons = []
        if obj.number:
            url = reverse("billing:cdr_list")
            buttons.append(("Calls from this number", f"{url}?{urlencode({'caller_prefix': obj.number})}", ""))
        related = []
        if obj.evidence and user_can(request.user, CDR, "list"):
            # The CDRs that tripped the threshold; call_uuid leads a unique index, so this stays cheap.
            evidence = [uuid for uuid in obj.evidence if isinstance(uuid, str)]
            cdrs = CDR.objects.filter(call_uuid__in=evidence)
            related.append(generic.related_table("Evidence CDRs", CDRTable, cdrs, shown=50))
        return {"extra_buttons": buttons, "related_tables": related}


class DynamicBlacklistEntryEditView(generic.ObjectEditView):
    queryset = DynamicBlacklistEntry.objects.all()
    form = forms.DynamicBlacklistEntryForm
