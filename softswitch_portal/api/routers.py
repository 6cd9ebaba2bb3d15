"""Each app's API router: its viewsets under /api/<app>/, with a browsable root listing them."""

from rest_framework.routers import DefaultRouter


class PortalRouter(DefaultRouter):
    """DefaultRouter with the portal's trailing slashes, and no format suffixes (``?format=csv`` says it)."""

    include_format_suffixes = False
