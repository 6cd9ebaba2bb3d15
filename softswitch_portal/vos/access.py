"""Who may call an action: a source address in a VOS access rule, or an API client's token with the VOS flag.

An access rule lets its network call every action, money included, as
VOS's Web access control does; a token is held to its client's scopes.
"""

from dataclasses import dataclass, field

from rest_framework.exceptions import AuthenticationFailed

from security.api_clients import APIScope
from softswitch_portal.api.authentication import client_for_request, source_address
from softswitch_portal.api.throttling import allow

from .codes import RetCode, VosError
from .models import VosAccessRule

KEYWORDS = ("token ", "bearer ")


@dataclass
class Call:
    """Who is calling: the operator a token acts as (None for an address rule) and what they may do."""

    who: str
    user: object = None
    client: object = None
    scopes: tuple = field(default=tuple(APIScope.values))


def authorise(request, action) -> Call:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header.lower().startswith(KEYWORDS):
        try:
            client = client_for_request(request, header.split(None, 1)[1].strip())
        except AuthenticationFailed as exc:
            raise VosError(RetCode.ACCESS_DENIED, str(exc.detail)) from None
        if not client.vos_api:
            raise VosError(RetCode.ACCESS_DENIED, "This API client may not call the VOS3000 API.")
        if action.scope not in client.scopes:
            raise VosError(RetCode.ACCESS_DENIED, f"This API client lacks the '{action.scope}' scope.")
        allowed, _ = allow(client)
        if not allowed:
            raise VosError(RetCode.THROTTLED, "Too many requests: over this API client's rate per minute.")
        return Call(who=client.name, user=client.owner, client=client, scopes=tuple(client.scopes))
    address = source_address(request)
    if any(rule.allows(address, action.name) for rule in VosAccessRule.objects.all()):
        return Call(who=address)
    raise VosError(RetCode.ACCESS_DENIED, f"{address} may not call {action.name}: add an access rule or use a token.")
