"""The API's own endpoints: its root, and the portal's type-to-search lookups."""

from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from softswitch_portal.generic.lookups import LIMIT, MAX_QUERY, registry
from softswitch_portal.generic.utils import user_can

from .permissions import check_scope


class APIRootView(APIView):
    """The API's areas, its schema and its documentation."""

    areas = ()

    @extend_schema(exclude=True)
    def get(self, request, format=None):
        links = {area: reverse(f"{area}-api:api-root", request=request) for area in self.areas}
        links["lookup"] = reverse("api:lookup", args=["account"], request=request)
        links["schema"] = reverse("api:schema", request=request)
        links["docs"] = reverse("api:docs", request=request)
        links["redoc"] = reverse("api:redoc", request=request)
        return Response(links)


LookupResult = inline_serializer(
    "LookupResult",
    {
        "results": inline_serializer(
            "LookupRow",
            {"id": serializers.IntegerField(), "text": serializers.CharField(), "hint": serializers.CharField()},
            many=True,
        ),
        "more": serializers.BooleanField(),
    },
)


class LookupView(APIView):
    """``{"results": [{"id", "text", "hint"}], "more"}``: the best matches of ``q`` among a kind's rows.

    The portal's type-to-search boxes (static/js/lookup.js) call this with the
    operator's session; scripts call it with a token. Kinds: generic.lookups.
    """

    # Its own checks below: a lookup's permission is its kind's model, known only from the URL.
    permission_classes = ()

    @extend_schema(
        parameters=[OpenApiParameter("q", str, description=f"What was typed, at most {MAX_QUERY} characters.")],
        responses={200: LookupResult},
    )
    def get(self, request, kind):
        if not (request.user and request.user.is_authenticated):
            # 403, not the login page's redirect: the caller is a script, which would read the login form as JSON.
            raise exceptions.PermissionDenied("Your session has ended: log in again.")
        check_scope(request, self)
        lookup = registry().get(kind)
        if lookup is None:
            raise exceptions.NotFound(f"No lookup {kind!r}.")
        if not user_can(request.user, lookup.model, "list"):
            raise PermissionDenied(f"You may not list {lookup.model._meta.verbose_name_plural}.")
        text = request.query_params.get("q", "").strip()
        if len(text) > MAX_QUERY or "\x00" in text:
            raise exceptions.ValidationError({"q": f"Type at most {MAX_QUERY} characters."})
        rows = list(lookup.search(text)[: LIMIT + 1])
        return Response({"results": [lookup.as_json(obj) for obj in rows[:LIMIT]], "more": len(rows) > LIMIT})
