from softswitch_portal.generic.urls import model_urls

from . import views

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
    *model_urls(
        "dynamic-blacklist",
        list_view=views.DynamicBlacklistEntryListView,
        detail_view=views.DynamicBlacklistEntryView,
        edit_view=views.DynamicBlacklistEntryEditView,
        add_view=None,
    ),
]
