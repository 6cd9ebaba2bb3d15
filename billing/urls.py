from django.urls import path

from softswitch_portal.generic.urls import model_urls

from .views import accounts, balance_history, cdrs, dead_letters, payments, rates, reports, rerating

app_name = "billing"

urlpatterns = [
    *model_urls(
        "accounts",
        list_view=accounts.AccountListView,
        detail_view=accounts.AccountView,
        edit_view=accounts.AccountEditView,
        delete_view=accounts.AccountDeleteView,
    ),
    *model_urls(
        "payments",
        list_view=payments.PaymentListView,
        detail_view=payments.PaymentView,
        add_view=payments.PaymentCreateView,
    ),
    *model_urls(
        "rate-tables",
        list_view=rates.RateTableListView,
        detail_view=rates.RateTableView,
        edit_view=rates.RateTableEditView,
        delete_view=rates.RateTableDeleteView,
        extra=(("import", rates.RateTableImportView),),
    ),
    *model_urls(
        "rates",
        list_view=rates.RateListView,
        detail_view=rates.RateView,
        edit_view=rates.RateEditView,
        delete_view=rates.RateDeleteView,
    ),
    *model_urls("cdrs", list_view=cdrs.CDRListView, detail_view=cdrs.CDRView),
    path("reports/revenue/", reports.RevenueReportView.as_view(), name="report_revenue"),
    path("reports/gateway-bill/", reports.GatewayBillView.as_view(), name="report_gateway_bill"),
    path("reports/account-balances/", reports.AccountBalanceReportView.as_view(), name="report_account_balances"),
    path("reports/vendor-clearing/", reports.VendorClearingView.as_view(), name="report_vendor_clearing"),
    *model_urls(
        "rerating",
        list_view=rerating.RerateJobListView,
        detail_view=rerating.RerateJobView,
        add_view=rerating.RerateJobCreateView,
    ),
    path("dead-letters/", dead_letters.DeadLetterView.as_view(), name="dead_letters"),
    path("balance-history/", balance_history.BalanceHistoryView.as_view(), name="balance_history"),
]
