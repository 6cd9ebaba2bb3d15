"""Small helpers the generic views, tables and templates share."""

from functools import cache

from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme

# URL name suffix per action; the detail page has none (reverse("billing:account", args=[pk])).
ACTION_SUFFIXES = {"list": "_list", "add": "_add", "detail": "", "edit": "_edit", "delete": "_delete"}
# The permission each action needs, as Django's model permissions name them.
ACTION_PERMISSIONS = {
    "list": "view",
    "detail": "view",
    "export": "view",
    "add": "add",
    "edit": "change",
    "delete": "delete",
}


def viewname(model, action):
    # A model moved between apps may keep its pages' URL names (url_namespace).
    namespace = getattr(model, "url_namespace", model._meta.app_label)
    return f"{namespace}:{model._meta.model_name}{ACTION_SUFFIXES[action]}"


@cache
def _has_route(name, with_pk):
    try:
        reverse(name, args=[1] if with_pk else None)
    except NoReverseMatch:
        return False
    return True


def has_action(model, action):
    """Whether the portal has a page for this action on this model (CDRs have no add, payments no edit)."""
    return _has_route(viewname(model, action), action in ("detail", "edit", "delete"))


def object_url(model, action, pk=None):
    """The URL of an action's page, or None when the portal has no such page."""
    if not has_action(model, action):
        return None
    return reverse(viewname(model, action), args=[pk] if pk is not None else None)


def permission_name(model, action):
    return f"{model._meta.app_label}.{ACTION_PERMISSIONS[action]}_{model._meta.model_name}"


def user_can(user, model, action):
    return user.has_perm(permission_name(model, action))


def safe_return_url(request, default):
    """The ``return_url`` the page was given, if it stays on this site; else the default."""
    url = request.POST.get("return_url") or request.GET.get("return_url")
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return default
