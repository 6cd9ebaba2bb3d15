from django.urls import path

from softswitch_portal.generic.urls import model_urls

from . import rerating_views, views

app_name = "billing"

urlpatterns = [
    *model_urls(
        "accounts",
        list_view=views.AccountListView,
        detail_view=views.AccountView,
        edit_view=views.AccountEditView,
        delete_view=views.AccountDeleteView,
    ),
    *model_urls(
        "payments",
        list_view=views.PaymentListView,
        detail_view=views.PaymentView,
        add_view=views.PaymentCreateView,
    ),
    *model_urls(
        "rate-tables",
        list_view=views.RateTableListView,
        detail_view=views.RateTableView,
        edit_view=views.RateTableEditView,
        delete_view=views.RateTableDeleteView,
        extra=(("import", views.RateTableImportView),),
    ),
    *model_urls(
        "rates",
        list_view=views.RateListView,
        detail_view=views.RateView,
        edit_view=views.RateEditView,
        delete_view=views.RateDeleteView,
    ),
    *model_urls("cdrs", list_view=views.CDRListView, detail_view=views.CDRView),
]

urlpatterns += [
    path("reports/revenue/", views.RevenueReportView.as_view(), name="report_revenue"),
    path("reports/gateway-bill/", views.GatewayBillView.as_view(), name="report_gateway_bill"),
    path("reports/account-balances/", views.AccountBalanceReportView.as_view(), name="report_account_balances"),
    path("reports/vendor-clearing/", views.VendorClearingView.as_view(), name="report_vendor_clearing"),
]

# Re-rating, dead letters, balance history (billing/rerating_views.py)
urlpatterns += [
    *model_urls(
        "rerating",
        list_view=rerating_views.RerateJobListView,
        detail_view=rerating_views.RerateJobView,
        add_view=rerating_views.RerateJobCreateView,
    ),
    path("dead-letters/", rerating_views.DeadLetterView.as_view(), name="dead_letters"),
    path("balance-history/", rerating_views.BalanceHistoryView.as_view(), name="balance_history"),
]
