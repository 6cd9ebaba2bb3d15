"""/api/: the root, the schema and its documentation pages, and the lookups; apps' routers are added by the
project's urls (softswitch_portal.urls), so this package imports none of the apps."""

from csp.decorators import csp_update
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from . import views

app_name = "api"

# Swagger UI and Redoc style their widgets with inline styles (Redoc writes <style> elements as it renders):
# allowed on these two pages only; their scripts still come from the project's static files alone.
docs_page = csp_update({"style-src": ["'unsafe-inline'"]})

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file of its own: no inline script.
    path("docs/", docs_page(SpectacularSwaggerSplitView.as_view(url_name="api:schema")), name="docs"),
    path("redoc/", docs_page(SpectacularRedocView.as_view(url_name="api:schema")), name="redoc"),
    path("lookup/<slug:kind>/", views.LookupView.as_view(), name="lookup"),
]
