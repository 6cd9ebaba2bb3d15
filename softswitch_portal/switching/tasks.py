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


@shared_task
def run_test_call(test_call_id):
    """An operator's test call (switching.testcalls), queued on TEST_CALL_QUEUE: one at a time per worker."""
    from .testcalls import service

    service.run(test_call_id)
