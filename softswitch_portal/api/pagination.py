"""Pages of API lists: limit/offset for configuration, the CDR page's own keyset for CDRs."""

from django.conf import settings
from rest_framework import pagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from softswitch_portal.generic.keyset import keyset_page


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    max_limit = 1000


class KeysetPagination(pagination.BasePagination):
    """``?after=<key>`` / ``?before=<key>`` pages on (start time, id), as the CDR list page walks them.

    An OFFSET deep into months of CDRs reads and drops every row before it; a
    key reads an index range from where the last page ended. Keys are the
    page's own (generic.keyset), so a key copied from the portal's CDR list
    works here too. ``?ordering=start_time`` walks oldest first.
    """

    field = "start_time"
    page_size_query_param = "limit"
    max_page_size = 1000

    def page_size(self, request):
        try:
            size = int(request.query_params.get(self.page_size_query_param, settings.REST_FRAMEWORK["PAGE_SIZE"]))
        except ValueError:
            size = settings.REST_FRAMEWORK["PAGE_SIZE"]
        return max(1, min(size, self.max_page_size))

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        descending = request.query_params.get("ordering", f"-{self.field}") != self.field
        self.page = keyset_page(
            queryset,
            self.field,
            descending=descending,
            per_page=self.page_size(request),
            after=request.query_params.get("after"),
            before=request.query_params.get("before"),
        )
        return self.page.rows

    def link(self, name, key):
        if key is None:
            return None
        url = self.request.build_absolute_uri()
        url = remove_query_param(remove_query_param(url, "after"), "before")
        return replace_query_param(url, name, key)

    def get_paginated_response(self, data):
        return Response(
            {
                "next": self.link("after", self.page.next_key),
                "previous": self.link("before", self.page.previous_key),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        key = "A key from the previous page's next (or previous) link: a start time and an id."
        return [
            {"name": "after", "in": "query", "required": False, "description": key, "schema": {"type": "string"}},
            {"name": "before", "in": "query", "required": False, "description": key, "schema": {"type": "string"}},
            {
                "name": self.page_size_query_param,
                "in": "query",
                "required": False,
                "description": f"Rows per page, at most {self.max_page_size}.",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]
