"""Celery tasks of the billing app."""

from celery import shared_task

from . import partitions


@shared_task
def ensure_cdr_partitions():
    return partitions.ensure_partitions()
