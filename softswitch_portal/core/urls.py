"""The audit pages, under the URL names the generic views derive from each model (``<app>:<model>_list``)."""

from django.urls import include, path

from . import views

change_log = [
    path("", views.LogEntryListView.as_view(), name="logentry_list"),
    path(
        "history/<slug:app_label>/<slug:model_name>/<int:pk>/",
        views.ObjectHistoryView.as_view(),
        name="object_history",
    ),
]
logins = [path("", views.LoginEventListView.as_view(), name="loginevent_list")]
lockouts = [
    path("", views.AccessAttemptListView.as_view(), name="accessattempt_list"),
    path("<int:pk>/release/", views.AccessAttemptReleaseView.as_view(), name="accessattempt_delete"),
]

urlpatterns = [
    path("", include((change_log, "auditlog"))),
    path("logins/", include((logins, "core"))),
    path("lockouts/", include((lockouts, "axes"))),
]
