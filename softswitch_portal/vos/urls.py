from django.urls import path

from . import views

app_name = "vos"

urlpatterns = [
    path("server/<str:action>", views.ExternalServerView.as_view(), name="action"),
]
