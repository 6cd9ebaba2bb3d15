"""What an API request may do: the client's scope, and always the acting operator's model permission."""

from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission

from security.api_clients import APIClient, APIScope
from softswitch_portal.generic.utils import user_can

# The portal's action (generic.utils.ACTION_PERMISSIONS) each method needs on the model.
METHOD_ACTIONS = {"GET": "list", "HEAD": "list", "OPTIONS": "list", "POST": "add", "PUT": "edit", "PATCH": "edit"}
METHOD_ACTIONS["DELETE"] = "delete"


def required_scope(request, view) -> str:
    """``read`` for safe methods, ``write`` for changes; a view moving money says ``money`` (``view.scope``)."""
    scopes = getattr(view, "scopes", {})
    action = getattr(view, "action", None)
    if action in scopes:
        return scopes[action]
    return APIScope.READ if request.method in SAFE_METHODS else APIScope.WRITE


def check_scope(request, view):
    if isinstance(request.auth, APIClient):
        scope = required_scope(request, view)
        if scope not in request.auth.scopes:
            raise exceptions.PermissionDenied(f"This API client lacks the '{scope}' scope.")


class ScopedModelPermissions(BasePermission):
    """An API client needs the scope of the request; its owner, or the logged-in operator, the model permission.

    A view's ``model_actions = {"recharge": "add"}`` says which model action a
    custom action needs (on ``permission_model`` when it is not the view's).
    """

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            raise exceptions.NotAuthenticated()
        check_scope(request, view)
        model = getattr(view, "permission_model", None)
        if model is None:
            queryset = getattr(view, "queryset", None)
            if queryset is None:
                return True
            model = queryset.model
        action = getattr(view, "model_actions", {}).get(getattr(view, "action", None))
        action = action or METHOD_ACTIONS.get(request.method, "list")
        if not user_can(request.user, model, action):
            raise exceptions.PermissionDenied(f"You may not {action} {model._meta.verbose_name_plural}.")
        return True
