"""How an API request says who it is: an API client's token, or the portal's own session."""

from rest_framework.authentication import SessionAuthentication


class APIClientAuthentication(SessionAuthentication):
    def authenticate(self, request):
        return None


class PortalSessionAuthentication(SessionAuthentication):
    pass
