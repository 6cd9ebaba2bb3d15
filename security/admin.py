from django.contrib import admin

from .models import Ban, BlacklistExemption, BlackWhiteListGroup, DynamicBlacklistEntry, ListEntry


@admin.register(Ban)
class BanAdmin(admin.ModelAdmin):
    """Read-only: bans are made by the call core and released on the ban page, which also clears them in Redis."""

    list_display = ("ip", "cause", "subject", "count", "offences", "node", "first_seen", "last_seen", "expires_at",
                    "released_at")  # fmt: skip
    list_filter = ("cause", "node")
    search_fields = ("ip", "subject")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(BlackWhiteListGroup)
class BlackWhiteListGroupAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "updated")
    list_filter = ("kind",)
    search_fields = ("name", "description")


@admin.register(ListEntry)
class ListEntryAdmin(admin.ModelAdmin):
    list_display = ("number", "match", "group", "note", "created")
    list_filter = ("match", "group")
    search_fields = ("number", "note")
    list_select_related = ("group",)


@admin.register(DynamicBlacklistEntry)
class DynamicBlacklistEntryAdmin(admin.ModelAdmin):
    list_display = ("__str__", "rule", "scope", "mapping_gateway", "status", "created", "expires_at", "reviewed_by")
    list_filter = ("status", "rule", "subject_kind", "scope")
    search_fields = ("number", "reason")
    list_select_related = ("account", "mapping_gateway", "reviewed_by")
    # What the switch recorded stays as recorded; the review page changes status and expiry.
    readonly_fields = ("subject_kind", "number", "account", "scope", "mapping_gateway", "rule", "severity", "reason",
                       "figures", "evidence", "node", "stream_id", "created", "reviewed_by", "reviewed_at")  # fmt: skip

    def has_add_permission(self, request):
        return False


@admin.register(BlacklistExemption)
class BlacklistExemptionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "subject_kind", "scope", "until", "created_by", "created")
    list_filter = ("subject_kind", "scope")
    search_fields = ("number", "reason")
    list_select_related = ("account", "created_by")
