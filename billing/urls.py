from softswitch_portal.generic.urls import model_urls

from . import views

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
