"""/api/: the root, the schema and its documentation pages, and the lookups; apps' routers are added by the
project's urls (softswitch_portal.urls), so this package imports none of the apps."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from . import views

app_name = "api"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    path("lookup/<slug:kind>/", views.LookupView.as_view(), name="lookup"),
]
