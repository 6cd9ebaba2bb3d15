"""The request log of the REST and VOS APIs: one row per request (client, source IP, endpoint, status)."""

import logging

from django.db import DatabaseError

from security.api_clients import APIRequestLog

from .authentication import source_address

log = logging.getLogger(__name__)

LOGGED_PATHS = ("/api/", "/external/")


class APIRequestLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith(LOGGED_PATHS):
            self.record(request, response)
        return response

    def record(self, request, response):
        client = getattr(request, "api_client", None)
        user = getattr(request, "user", None)
        address = source_address(request)
        try:
            APIRequestLog.objects.create(
                client=client,
                user=user if user is not None and user.is_authenticated else (client.owner if client else None),
                source_ip=address or None,
                method=request.method[:8],
                endpoint=request.path[:200],
                status=response.status_code,
            )
        except DatabaseError as exc:
            # The answer already stands; a failed log row must not turn it into a 500.
            log.warning("API request to %s not logged: %s", request.path, exc)
