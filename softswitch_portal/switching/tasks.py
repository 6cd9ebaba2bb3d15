"""Celery tasks of the switching app."""

from celery import shared_task

from security import ip_countries
from softswitch_portal.core import publisher
from softswitch_portal.core.redis import Waiter


@shared_task
def republish_snapshot():
    """Publish again periodically so a Redis that lost its data is refilled without an edit.

    The IP-country table too: it changes only on an import, but lives in the same Redis.
    """
    ip_countries.publish()
    return publisher.publish(waiter=Waiter.JOB)
