from django.contrib import admin

from .models import BlackWhiteListGroup, DynamicBlacklistEntry, ListEntry


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
    list_display = ("number", "scope", "mapping_gateway", "reason", "status", "created", "expires_at", "reviewed_by")
    list_filter = ("status", "scope")
    search_fields = ("number", "reason")
    list_select_related = ("mapping_gateway", "reviewed_by")
    # What the switch recorded stays as recorded; an admin changes status and expiry.
    readonly_fields = ("number", "scope", "mapping_gateway", "reason", "thresholds", "evidence", "created",
                       "reviewed_by", "reviewed_at")  # fmt: skip

    def has_add_permission(self, request):
        return False
