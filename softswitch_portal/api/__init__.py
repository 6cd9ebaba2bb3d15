"""The REST API's base: router, serializers, viewsets, authentication by API client, throttle, request log.

Each app declares its endpoints in its own ``api`` package (serializers, views,
urls) on these classes, as NetBox's apps do; the filtersets are the list
pages' own, so a filter is defined once for both.
"""
