"""How an API request says who it is: an API client's token, or the portal's own session.

``Authorization: Token <token>`` (or ``Bearer <token>``) names an API client
(security.api_clients.APIClient); the request then acts as the client's
owner, within the client's scopes. A token that is wrong, expired, disabled
or sent from outside the client's networks is refused, saying which.
"""

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, get_authorization_header

from security.api_clients import APIClient

KEYWORDS = (b"token", b"bearer")


def source_address(request) -> str:
    """The address the request came from: the socket's (a proxy in front must be trusted explicitly, not here)."""
    return request.META.get("REMOTE_ADDR", "")


def client_for_request(request, token: str) -> APIClient:
    """The API client a token names, checked for state, expiry and source network; raises AuthenticationFailed."""
    client = APIClient.for_token(token)
    if client is None:
        raise exceptions.AuthenticationFailed("Invalid token.")
    # The log names the client even when it is refused from here on.
    request.api_client = client
    if not client.enabled:
        raise exceptions.AuthenticationFailed("This API client is disabled.")
    if client.expired:
        raise exceptions.AuthenticationFailed(f"This token expired at {client.expires_at:%Y-%m-%d %H:%M} UTC.")
    address = source_address(request)
    if not client.allows_address(address):
        raise exceptions.AuthenticationFailed(f"{address} is not in this API client's allowed networks.")
    if not client.owner.is_active:
        raise exceptions.AuthenticationFailed("The operator this API client acts as is inactive.")
    now = timezone.now()
    # One write a minute at most: the request log has every request already.
    if client.last_used_at is None or (now - client.last_used_at).total_seconds() > 60:
        APIClient.objects.filter(pk=client.pk).update(last_used_at=now)
    return client


class APIClientAuthentication(BaseAuthentication):
    """``Authorization: Token <token>``: the API client it names, acting as its owner."""

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() not in KEYWORDS:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send the header as 'Authorization: Token <token>'.")
        try:
            token = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        client = client_for_request(request._request, token)
        return client.owner, client

    def authenticate_header(self, request):
        return "Token"


class PortalSessionAuthentication(SessionAuthentication):
    """A logged-in operator's session (the portal's own scripts: type-to-search). Writes need the CSRF token."""


class APIClientScheme(OpenApiAuthenticationExtension):
    """The token in the OpenAPI schema, so the docs' "Authorize" button and schema-driven clients send it."""

    target_class = APIClientAuthentication
    name = "token"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <token>`: an API client's token, shown once when the client is made.",
        }


class PortalSessionScheme(OpenApiAuthenticationExtension):
    target_class = PortalSessionAuthentication
    name = "session"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
