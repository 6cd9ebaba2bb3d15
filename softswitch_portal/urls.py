from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views
from .generic.lookups import lookup_view

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("billing/", include("billing.urls")),
    path("switching/", include("softswitch_portal.switching.urls")),
    path("security/", include("security.urls")),
    path("lookup/<slug:kind>/", lookup_view, name="lookup"),
    path("admin/", admin.site.urls),
]
