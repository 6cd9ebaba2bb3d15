from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path

from . import views
from .api.views import APIRootView
from .core.metrics import metrics_view
from .vos.views import ExternalServerView

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Prometheus: no login, from METRICS_ALLOWED_NETWORKS only.
    path("metrics", metrics_view, name="metrics"),
    path("billing/", include("billing.urls")),
    path("switching/", include("softswitch_portal.switching.urls")),
    path("security/", include("security.urls")),
    # Live operations: current calls and forced disconnect, registered phones, traffic statistics.
    path("calls/", include("softswitch_portal.live.urls")),
    # The change log, each object's history, the logins and the login lockouts.
    path("audit/", include("softswitch_portal.core.urls")),
    # The REST API: the apps' routers, and the schema, docs and lookups (softswitch_portal.api.urls).
    path("api/", APIRootView.as_view(areas=("billing", "switching", "security", "vos", "live")), name="api-root"),
    path("api/billing/", include("billing.api.urls")),
    path("api/switching/", include("softswitch_portal.switching.api.urls")),
    path("api/security/", include("security.api.urls")),
    path("api/vos/", include("softswitch_portal.vos.api.urls")),
    path("api/live/", include("softswitch_portal.live.api.urls")),
    path("api/", include("softswitch_portal.api.urls")),
    # The VOS3000-compatible API: POST /external/server/<Action>; its access rules' pages under vos/.
    path("external/server/<str:action>", ExternalServerView.as_view(), name="vos-action"),
    path("vos/", include("softswitch_portal.vos.urls")),
    path("admin/", admin.site.urls),
]
# The demo's gunicorn serves the static files itself when DEBUG is on; in production the TLS proxy serves them.
urlpatterns += staticfiles_urlpatterns()
