"""Live operations have no table: calls, registrations and counters live in Redis, statistics are CDRs.

``LiveCall`` exists for its permissions only, so the roles can grant watching
the live calls and ending them apart (unmanaged: no table is made).
"""

from django.db import models


class LiveCall(models.Model):
    """A call in progress on some call-core node (read from the live-call registry, never stored)."""

    class Meta:
        managed = False
        default_permissions = ("view",)
        permissions = [("disconnect_livecall", "Can end a live call (forced disconnect)")]
        verbose_name = "current call"
        verbose_name_plural = "current calls"

    def __str__(self):
        return "current call"
