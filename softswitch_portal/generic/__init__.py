"""Shared UI and API base classes: generic views, base filterset, tables, navigation."""
