"""Builds a model's URL patterns from the views an app declares for it.

Names follow the models' get_absolute_url: ``<model>`` for the detail page,
``<model>_list``, ``<model>_add``, ``<model>_edit``, ``<model>_delete``, and
``<model>_<suffix>`` for extra per-object pages.
"""

from django.urls import path

# Default of ``add_view``: the edit view serves the add page too.
SAME_AS_EDIT = object()


def model_urls(
    prefix, *, list_view=None, detail_view=None, edit_view=None, add_view=SAME_AS_EDIT, delete_view=None, extra=()
):
    """URL patterns for one model under ``prefix/``.

    ``edit_view`` serves both add and edit unless ``add_view`` is given
    (``add_view=None``: no add page); a view left out means the portal has no such page (CDRs have no add, payments no
    edit) and the generic templates hide its buttons.
    ``extra`` is ``((suffix, view), ...)`` for pages on one object.
    """
    if add_view is SAME_AS_EDIT:
        add_view = edit_view
    views = [v for v in (list_view, detail_view, edit_view, add_view, delete_view) if v is not None]
    name = views[0].queryset.model._meta.model_name
    patterns = []
    if list_view:
        patterns.append(path(f"{prefix}/", list_view.as_view(), name=f"{name}_list"))
    if add_view:
        patterns.append(path(f"{prefix}/add/", add_view.as_view(), name=f"{name}_add"))
    if detail_view:
        patterns.append(path(f"{prefix}/<int:pk>/", detail_view.as_view(), name=name))
    if edit_view:
        patterns.append(path(f"{prefix}/<int:pk>/edit/", edit_view.as_view(), name=f"{name}_edit"))
    if delete_view:
        patterns.append(path(f"{prefix}/<int:pk>/delete/", delete_view.as_view(), name=f"{name}_delete"))
    for suffix, view in extra:
        patterns.append(path(f"{prefix}/<int:pk>/{suffix}/", view.as_view(), name=f"{name}_{suffix}"))
    return patterns
