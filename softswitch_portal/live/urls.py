from django.urls import path

from . import views

app_name = "live"

urlpatterns = [
    path("current/", views.CurrentCallsView.as_view(), name="current_calls"),
    path("current/disconnect/", views.DisconnectView.as_view(), name="disconnect"),
    path("registrations/", views.RegistrationsView.as_view(), name="registrations"),
    path("statistics/", views.StatisticsView.as_view(), name="statistics"),
]
