"""Celery tasks of the security app."""

from celery import shared_task

from . import dynamic_blacklist


@shared_task
def resync_dynamic_blacklist():
    return dynamic_blacklist.resync_all()
