"""The access rules' pages; the API itself is routed by the project's urls at /external/server/<Action>."""

from softswitch_portal.generic.urls import model_urls

from . import pages

app_name = "vos"

urlpatterns = [
    *model_urls(
        "access-rules",
        list_view=pages.VosAccessRuleListView,
        detail_view=pages.VosAccessRuleView,
        edit_view=pages.VosAccessRuleEditView,
        delete_view=pages.VosAccessRuleDeleteView,
    ),
]
