"""The Django side's one way to Redis: a client whose timeouts say what is waiting on it."""

from __future__ import annotations

import enum

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry


class Waiter(enum.Enum):
    """Who waits on the client: (connect timeout, reply timeout) in seconds."""

    # A web request: a dead Redis must cost the page a second or two, not hang it.
    PAGE = (1.0, 2.0)
    # A worker, beat task or management command: a busy Redis is worth waiting for.
    JOB = (5.0, 10.0)


def redis_client(waiter: Waiter = Waiter.JOB, *, name: str | None = None, reply_timeout: float | None = None):
    """A new client of settings.REDIS_URL; ``reply_timeout`` overrides the waiter's (a blocking read's).

    Retries are the caller's: a command retried silently inside redis-py hides a lost XREADGROUP
    reply, whose entries would then wait for a claim instead of being re-read at once.
    """
    connect, reply = waiter.value
    return redis.Redis.from_url(
        settings.REDIS_URL,
        client_name=name,
        socket_connect_timeout=connect,
        socket_timeout=reply_timeout if reply_timeout is not None else reply,
        health_check_interval=30,
        retry=Retry(NoBackoff(), 0),
    )


def prefix() -> str:
    """The deployment's key prefix (settings.REDIS_PREFIX), for ``callcore.contract``'s key classes."""
    return settings.REDIS_PREFIX
