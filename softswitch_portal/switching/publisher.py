"""Publishes the configuration snapshot to Redis after every committed change.

(Stub: watch/schedule only; the builder and the Redis publish come next.)
"""

import threading

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

_pending = threading.local()


def schedule_publish(**kwargs):
    """Queue one publish for the end of the current transaction, however many rows it changed."""
    if getattr(_pending, "queued", False):
        return
    _pending.queued = True

    def run():
        _pending.queued = False
        publish()

    transaction.on_commit(run)


def watch(*models):
    for model in models:
        post_save.connect(schedule_publish, sender=model, dispatch_uid=f"publish-save-{model.__name__}")
        post_delete.connect(schedule_publish, sender=model, dispatch_uid=f"publish-delete-{model.__name__}")
        for field in model._meta.local_many_to_many:
            m2m_changed.connect(
                schedule_publish,
                sender=field.remote_field.through,
                dispatch_uid=f"publish-m2m-{model.__name__}-{field.name}",
            )


def publish():
    pass
