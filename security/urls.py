from django.urls import path

from softswitch_portal.generic.urls import model_urls

from . import api_client_pages, ip_country_range_pages, views
from .ban_views import urlpatterns as ban_urls
from .review_run_views import urlpatterns as review_run_urls

app_name = "security"

urlpatterns = [
    *model_urls(
        "list-groups",
        list_view=views.BlackWhiteListGroupListView,
        detail_view=views.BlackWhiteListGroupView,
        edit_view=views.BlackWhiteListGroupEditView,
        delete_view=views.BlackWhiteListGroupDeleteView,
    ),
    *model_urls(
        "list-entries",
        list_view=views.ListEntryListView,
        detail_view=views.ListEntryView,
        edit_view=views.ListEntryEditView,
        delete_view=views.ListEntryDeleteView,
    ),
    # No add (the switch creates entries) and no delete (a released entry is kept as a record).
    path(
        "dynamic-blacklist/review/",
        views.DynamicBlacklistBulkReviewView.as_view(),
        name="dynamicblacklistentry_bulk_review",
    ),
    *model_urls(
        "dynamic-blacklist",
        list_view=views.DynamicBlacklistEntryListView,
        detail_view=views.DynamicBlacklistEntryView,
        edit_view=views.DynamicBlacklistEntryEditView,
        add_view=None,
        extra=(("review", views.DynamicBlacklistEntryReviewView),),
    ),
    *model_urls(
        "blacklist-exemptions",
        list_view=views.BlacklistExemptionListView,
        detail_view=views.BlacklistExemptionView,
        edit_view=views.BlacklistExemptionEditView,
        delete_view=views.BlacklistExemptionDeleteView,
    ),
    # The operators' IP-country ranges, laid over the imported table when it is published (VOS's IP limits).
    *model_urls(
        "ip-country-ranges",
        list_view=ip_country_range_pages.IpCountryRangeListView,
        detail_view=ip_country_range_pages.IpCountryRangeView,
        edit_view=ip_country_range_pages.IpCountryRangeEditView,
        delete_view=ip_country_range_pages.IpCountryRangeDeleteView,
    ),
    # API clients: adding one or asking for a new token shows the token once (api_client_pages.show_token).
    *model_urls(
        "api-clients",
        list_view=api_client_pages.APIClientListView,
        detail_view=api_client_pages.APIClientView,
        edit_view=api_client_pages.APIClientEditView,
        delete_view=api_client_pages.APIClientDeleteView,
        extra=(("token", api_client_pages.APIClientTokenView),),
    ),
    *model_urls(
        "api-requests", list_view=api_client_pages.APIRequestLogListView, detail_view=api_client_pages.APIRequestLogView
    ),
    # Alarms are raised by the switch and closed by it or an operator: no add, edit or delete.
    *model_urls("alarms", list_view=views.AlarmListView, detail_view=views.AlarmView, add_view=None),
    path("alarms/action/", views.AlarmActionView.as_view(), name="alarm_action"),
    # The review run: the post-call rules replayed over a period (security.review_run).
    *review_run_urls,
    # The call core's source-IP bans: recorded from Redis, released by an operator; never added or edited here.
    *ban_urls,
]
