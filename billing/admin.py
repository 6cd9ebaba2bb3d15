"""Admin for billing. Balances and CDRs are read-only here too: money moves only through
billing.services, and CDRs only through the ingester."""

from django.contrib import admin

from .models import CDR, Account, Payment, Rate, RateTable


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ("name", "account_type", "balance", "credit_limit", "rate_table", "locked", "anti_overdraft")
    list_filter = ("account_type", "locked", "anti_overdraft", "rate_table")
    search_fields = ("name", "alarm_email", "description")
    readonly_fields = ("balance", "created", "updated")


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ("created", "account", "kind", "amount", "balance_after", "memo", "created_by")
    list_filter = ("kind", "created")
    search_fields = ("account__name", "memo")
    date_hierarchy = "created"


@admin.register(RateTable)
class RateTableAdmin(admin.ModelAdmin):
    list_display = ("name", "currency", "updated")
    list_filter = ("currency",)
    search_fields = ("name", "description")


@admin.register(Rate)
class RateAdmin(admin.ModelAdmin):
    list_display = ("rate_table", "prefix", "area", "price_per_minute", "first_period", "next_period", "connect_fee",
                    "valid_from", "valid_to")  # fmt: skip
    list_filter = ("rate_table", "first_period", "next_period")
    search_fields = ("prefix", "area")
    list_select_related = ("rate_table",)


@admin.register(CDR)
class CDRAdmin(ReadOnlyAdmin):
    list_display = ("start_time", "caller_number", "callee_number", "caller_ip", "mapping_gateway_name",
                    "routing_gateway_name", "hold_time_ms", "fee", "billing_mode", "end_reason")  # fmt: skip
    list_filter = ("billing_mode", "end_direction", "end_reason")
    search_fields = ("=call_uuid", "^caller_number", "^callee_number")
    # The admin's default paginator counts every row; a partitioned CDR table is too big for that.
    show_full_result_count = False
