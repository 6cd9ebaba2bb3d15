"""The ban pages: the call core's source-IP bans, current and past, and their release (security.bans)."""

import redis
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.views import View

from softswitch_portal.generic import views as generic
from softswitch_portal.generic.urls import model_urls
from softswitch_portal.generic.utils import safe_return_url

from . import bans
from .ban_tables import BanFilterSet, BanTable
from .bans import RELEASE_PERMISSION, Ban


def _recorded(request):
    """The bans in Redis into the history first, so the page shows what every node applies now."""
    try:
        bans.record()
    except redis.RedisError as exc:
        messages.warning(request, f"Redis did not answer, so bans made since the last record may be missing: {exc}")


class BanListView(generic.ObjectListView):
    queryset = Ban.objects.select_related("released_by")
    filterset = BanFilterSet
    table = BanTable
    primary_filters = ("state", "ip", "cause", "node", "last_seen_after")

    def get(self, request):
        _recorded(request)
        return super().get(request)


class BanView(generic.ObjectView):
    queryset = Ban.objects.select_related("released_by")
    template_name = "security/ban_detail.html"
    fieldsets = (
        ("Ban", ("ip", "cause", "subject", "node", "id")),
        ("Offences", ("count", "offences", "first_seen", "last_seen")),
        ("Until", ("expires_at", "released_at", "released_by")),
    )

    def get_extra_context(self, request, obj):
        return {
            "can_release": obj.active and request.user.has_perm(RELEASE_PERMISSION),
            "release_url": reverse("security:ban_release", args=[obj.pk]),
            "object_title": str(obj),
        }


class BanReleaseView(LoginRequiredMixin, View):
    """End a ban now: every node serves the source again within a second."""

    def post(self, request, pk):
        if not request.user.has_perm(RELEASE_PERMISSION):
            raise PermissionDenied("You may not release bans.")
        ban = get_object_or_404(Ban, pk=pk)
        try:
            released = bans.release(ban, request.user)
        except redis.RedisError as exc:
            messages.error(request, f"Redis did not answer: {ban.ip} is still banned ({exc}).")
        else:
            if released:
                messages.success(request, f"Released {ban.ip}: every node serves it again within a second.")
            else:
                messages.warning(request, f"{ban.ip}'s ban had already ended.")
        return redirect(safe_return_url(request, ban.get_absolute_url()))


urlpatterns = [
    *model_urls("bans", list_view=BanListView, detail_view=BanView, add_view=None),
    path("bans/<int:pk>/release/", BanReleaseView.as_view(), name="ban_release"),
]
