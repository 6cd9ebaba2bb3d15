"""Registered phones: the contacts every call-core node's REGISTERs saved (contract.registrations).

Kamailio keeps registrations in each node's memory; the nodes copy each saved
contact into Redis, which is what this reads. An entry past its expiry is
left out (the next REGISTER on any node drops it from Redis).
"""

from __future__ import annotations

import datetime as dt

import msgspec

from callcore.contract import Keys, decode_registration
from softswitch_portal.core.redis import Waiter, prefix, redis_client
from softswitch_portal.switching.models import Phone


def registrations(now_ms: int):
    """One row per contact registered now, on every node. Raises RedisError."""
    client = redis_client(Waiter.PAGE, name="live-registrations")
    try:
        raw = client.hgetall(Keys(prefix()).registrations)
    finally:
        client.close()
    found = []
    for value in raw.values():
        try:
            reg = decode_registration(value)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
            continue
        if reg.expires_ms > now_ms:
            found.append(reg)
    accounts = dict(
        Phone.objects.filter(pk__in={r.phone_id for r in found if r.phone_id}).values_list("pk", "account__name")
    )
    return [
        {
            "phone": reg.aor,
            "phone_id": reg.phone_id,
            "account": accounts.get(reg.phone_id, ""),
            "contact": reg.contact,
            "source_ip": reg.source_ip,
            "source": f"{reg.source_ip}:{reg.source_port}" if reg.source_port else reg.source_ip,
            "transport": reg.transport.upper(),
            "user_agent": reg.user_agent,
            "registered": dt.datetime.fromtimestamp(reg.registered_ms / 1000, tz=dt.UTC),
            "expires": dt.datetime.fromtimestamp(reg.expires_ms / 1000, tz=dt.UTC),
            "expires_in_s": max(0, (reg.expires_ms - now_ms) // 1000),
            "node": reg.node,
        }
        for reg in found
    ]
