"""CSV as an alternative format of list endpoints (``?format=csv`` or ``Accept: text/csv``)."""

from rest_framework.renderers import BaseRenderer


class CSVRenderer(BaseRenderer):
    """Chosen by content negotiation only: the view streams the rows itself (generic.export), whole filtered set."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        # Errors (a bad filter) reach here as data: answer them as text rather than a CSV of a dict.
        if isinstance(data, dict | list):
            return "\n".join(f"{key}: {value}" for key, value in dict(data).items()).encode() if data else b""
        return data or b""
