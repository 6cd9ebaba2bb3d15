"""Celery tasks of the security app."""

from celery import shared_task

from . import dynamic_blacklist, fraud_events
from .review_run import review_run  # noqa: F401 (defined beside its replay; imported so the worker has it)


@shared_task
def resync_dynamic_blacklist():
    return dynamic_blacklist.resync_all()


@shared_task
def persist_fraud_events():
    """Record the detectors' fraud events (review-queue entries, alarms); every few seconds."""
    return fraud_events.persist()


@shared_task
def expire_dynamic_blacklist():
    """Mark entries past their expiry expired and drop expired members from Redis."""
    return dynamic_blacklist.expire()
