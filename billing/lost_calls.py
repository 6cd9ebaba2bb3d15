"""Calls of a call-core node that is gone: recorded and released by the worker, as the node would on its start.

A node whose host died never starts again to record the calls it lost
(``callcore.live.LiveState.release_node``), so they would have no CDR, and
their slots and reservations would stay held until their expiry. A beat task
(``release_lost_calls``) finds the nodes whose heartbeat (``Keys.heartbeats``)
stopped more than STALE_AFTER_S ago and records their calls exactly as the
node would (``callcore.contract.lost``): charged up to the last heartbeat,
marked estimated, released once whichever of the node and this job gets to
a call first. Once a gone node's calls are recorded its heartbeat is
forgotten, so it costs no more reads.
"""

from __future__ import annotations

import logging
import time

import msgspec

from callcore.contract import (
    FORGET_HEARTBEAT_LUA,
    HEARTBEAT_INTERVAL_S,
    RELEASE_LOST_LUA,
    Keys,
    decode_answered,
    lost_call_record,
    release_lost_args,
    release_lost_keys,
)
from softswitch_portal.core.redis import Waiter, prefix, redis_client

log = logging.getLogger("billing.lost_calls")

# A node restarting (Kamailio's start and snapshot load take seconds) records its own calls; a short Redis
# outage must not make a live node look gone. A minute is well past both, and holds a gone node's slots and
# reservations no longer than that.
STALE_AFTER_S = 60
assert STALE_AFTER_S > 10 * HEARTBEAT_INTERVAL_S


def stale_nodes(client, keys: Keys, now_ms: int, stale_after_s: int) -> dict[str, bytes]:
    """Nodes whose last heartbeat is older than ``stale_after_s``: node -> the beat as stored."""
    beats = client.hgetall(keys.heartbeats)
    return {
        node.decode(): beat for node, beat in beats.items() if now_ms - int(beat) > stale_after_s * 1000
    }  # fmt: skip


def release_gone_nodes(now_ms: int | None = None, stale_after_s: int = STALE_AFTER_S, client=None) -> int:
    """Record and release the calls of every node whose heartbeat stopped; how many calls this run released."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    own = client is None
    client = client if client is not None else redis_client(Waiter.JOB, name="worker:lost_calls")
    try:
        keys = Keys(prefix())
        gone = stale_nodes(client, keys, now_ms, stale_after_s)
        if not gone:
            return 0
        release = client.register_script(RELEASE_LOST_LUA)
        released = 0
        for call_id, raw in client.hgetall(keys.live_calls).items():
            entry = msgspec.json.decode(raw)
            node = entry.get("node")
            if node not in gone:
                continue
            call_id = call_id.decode()
            answered = client.hget(keys.live_answered, call_id)
            record = lost_call_record(
                call_id, entry, node, now_ms,
                answered=decode_answered(answered) if answered else None, heartbeat_ms=int(gone[node]),
            )  # fmt: skip
            released += release(
                keys=release_lost_keys(keys, entry), args=release_lost_args(call_id, raw, record, now_ms)
            )
        forget = client.register_script(FORGET_HEARTBEAT_LUA)
        for node, beat in gone.items():
            forget(keys=[keys.heartbeats], args=[node, beat])
        if released:
            log.warning("released %d call(s) of call-core node(s) gone silent: %s", released, ", ".join(sorted(gone)))
        return released
    finally:
        if own:
            client.close()
