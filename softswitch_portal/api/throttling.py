"""Each API client's request rate: a per-minute counter in Redis, shared by every portal process."""

import logging
import time

import redis
from rest_framework.throttling import BaseThrottle

from security.api_clients import APIClient
from softswitch_portal.core.redis import Waiter, prefix, redis_client

log = logging.getLogger(__name__)

_client = None


def _redis():
    global _client
    if _client is None:
        _client = redis_client(Waiter.PAGE, name="api-throttle")
    return _client


def throttle_key(client_id: int, minute: int) -> str:
    return f"{prefix()}:api:throttle:{client_id}:{minute}"


def allow(client: APIClient) -> tuple[bool, float]:
    """(whether this request of ``client`` is within its rate, seconds until the next minute)."""
    if not client.throttle_per_minute:
        return True, 0.0
    now = time.time()
    minute = int(now // 60)
    try:
        pipe = _redis().pipeline()
        pipe.incr(throttle_key(client.pk, minute))
        pipe.expire(throttle_key(client.pk, minute), 120)
        count, _ = pipe.execute()
    except redis.RedisError as exc:
        # Redis away: serve the request rather than lock every script out; the request log still has it.
        log.warning("API throttle of client %s not counted: %s", client.pk, exc)
        return True, 0.0
    return count <= client.throttle_per_minute, 60 - (now % 60)


class APIClientThrottle(BaseThrottle):
    """``throttle_per_minute`` requests per calendar minute per API client; portal sessions are not throttled."""

    def allow_request(self, request, view):
        if not isinstance(request.auth, APIClient):
            return True
        allowed, self._wait = allow(request.auth)
        return allowed

    def wait(self):
        return getattr(self, "_wait", None)
