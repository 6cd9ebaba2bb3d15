"""Security list tables."""

import django_tables2 as tables

from softswitch_portal.generic.tables import BaseTable, ChoiceColumn, NumberColumn, TextColumn

from .models import BlackWhiteListGroup, DynamicBlacklistEntry, ListEntry


class BlackWhiteListGroupTable(BaseTable):
    description = TextColumn()
    name = tables.Column(linkify=True)
    kind = ChoiceColumn(badges={"black": "dark", "white": "light"})
    entry_count = NumberColumn(verbose_name="Entries")

    class Meta(BaseTable.Meta):
        model = BlackWhiteListGroup
        fields = ("name", "kind", "entry_count", "description", "updated")


class ListEntryTable(BaseTable):
    note = TextColumn()
    number = tables.Column(linkify=True, attrs={"td": {"class": "mono"}})
    group = tables.Column(linkify=True)

    class Meta(BaseTable.Meta):
        model = ListEntry
        fields = ("number", "match", "group", "note", "created")


class DynamicBlacklistEntryTable(BaseTable):
    reason = TextColumn()
    number = tables.Column(linkify=True, attrs={"td": {"class": "mono"}})
    mapping_gateway = tables.Column(linkify=True)
    status = ChoiceColumn(badges={"active": "danger", "confirmed": "dark", "released": "muted", "whitelisted": "light"})
    created = tables.DateTimeColumn(format="Y-m-d H:i", verbose_name="Blocked")
    expires_at = tables.DateTimeColumn(format="Y-m-d H:i", verbose_name="Expires")

    class Meta(BaseTable.Meta):
        model = DynamicBlacklistEntry
        fields = ("number", "scope", "mapping_gateway", "reason", "status", "created", "expires_at", "reviewed_by")
