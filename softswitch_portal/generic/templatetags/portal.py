"""Template helpers for the portal's layout: which navigation entry is current."""

from django import template

register = template.Library()

# Pages of one model share the list's navigation entry: account, account_edit, ratetable_import...
PAGE_SUFFIXES = ("_list", "_add", "_edit", "_delete", "_import")


def _page_base(view_name):
    for suffix in PAGE_SUFFIXES:
        if view_name.endswith(suffix):
            return view_name[: -len(suffix)]
    return view_name


@register.filter
def nav_active(url_name, request):
    """Whether ``url_name`` (a list page in the menu) is the page, or the list of the object, shown."""
    match = getattr(request, "resolver_match", None)
    if match is None or not match.view_name:
        return False
    return _page_base(match.view_name) == _page_base(url_name)


@register.filter
def area_active(entries, request):
    """Whether any page of a menu area is the one shown."""
    return any(nav_active(url_name, request) for _, url_name in entries)
