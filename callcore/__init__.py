"""The call core: Kamailio below, our Python deciding every call through KEMI.

Nothing in this package imports Django or touches SQL: it learns the
configuration from the versioned snapshot in Redis and hands CDRs back through
a Redis stream. ``contract`` is the only module the portal imports from here.
"""
