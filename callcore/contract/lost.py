"""A call its node lost (Kamailio killed, or its host gone): its CDR from the live state, and its release, once.

Kamailio keeps its dialogs in memory, so nothing ends a call whose call core
died. Two paths end it: the node itself when it starts again
(``callcore.live.LiveState.release_node``), and the worker's job for a node
whose heartbeat stopped (``billing.lost_calls``). Both build the record with
``lost_call_record`` from the same three facts (the live-call registry entry,
the answer kept when the call was answered, the node's last heartbeat) and
release the call with ``RELEASE_LOST_LUA``, which does nothing when the entry
is gone: whichever path gets to a call first records it, the other skips it,
and either way the record is the same (same ``call_uuid``, same stop).

A lost call was up at least until the node's last heartbeat, and at most one
heartbeat interval longer: its end is taken as that heartbeat, so the
customer is charged for time the call surely had (never more than it had),
and the record is marked ``estimated``.
"""

from __future__ import annotations

import hashlib

import msgspec

from .cdr import CdrRecord, VendorAttempt, encode_cdr
from .codes import BillingMode, EndDirection, EndReason
from .jsontext import json_text
from .keys import Keys
from .pending import HOLD_OR_RELEASE_LUA, PENDING_DEBIT_HOLD_MS, pending_debit_field
from .state import RouteState

__all__ = [
    "HEARTBEAT_INTERVAL_S",
    "AnsweredCall",
    "encode_answered",
    "decode_answered",
    "cdr_call_uuid",
    "lost_call_record",
    "RELEASE_LOST_LUA",
    "release_lost_args",
    "release_lost_keys",
    "FORGET_HEARTBEAT_LUA",
]

# How often a call core writes its heartbeat (Keys.heartbeats): a lost call is charged up to its node's last
# beat, so this is the most talk time a crash leaves unbilled per call; each beat is one HSET per node.
HEARTBEAT_INTERVAL_S = 2


class AnsweredCall(msgspec.Struct, array_like=True, gc=False):
    """What the call core keeps of an answered call (``Keys.live_answered``): when, and which vendor answered."""

    answer_ms: int
    route: RouteState
    # The dialog's handle on its node, by which that node's timer ends the call on request (Keys.disconnects).
    h_entry: int = -1
    h_id: int = -1


_answered_decoder = msgspec.json.Decoder(AnsweredCall)


def encode_answered(answered: AnsweredCall) -> str:
    return json_text(answered)


def decode_answered(raw: str | bytes) -> AnsweredCall:
    return _answered_decoder.decode(raw)


def cdr_call_uuid(node: str, call_id: str, start_ms: int) -> str:
    """A call attempt's key: bounded and unique per attempt (a Call-ID may be any length; the column is 64 wide)."""
    return hashlib.sha256(f"{node}\n{call_id}\n{start_ms}".encode()).hexdigest()[:32]


def lost_call_record(
    call_id: str,
    entry: dict,
    node: str,
    now_ms: int,
    *,
    answered: AnsweredCall | None = None,
    heartbeat_ms: int | None = None,
) -> CdrRecord:
    """The CDR of a call ``node`` lost, from its registry entry, its answer (if it was answered) and the node's
    last heartbeat (``now_ms`` when the node never beat).

    It ends at the last heartbeat, never before it started or was answered; an answered call is charged
    from its answer to then, on the vendor that answered. Every such record is ``estimated``: its end was
    not seen.
    """
    start_ms = entry["start_ms"]
    stop_ms = heartbeat_ms if heartbeat_ms is not None else now_ms
    stop_ms = max(stop_ms, start_ms, answered.answer_ms if answered is not None else start_ms)
    callee = entry.get("callee", "")
    record = CdrRecord(
        call_uuid=cdr_call_uuid(node, call_id, start_ms),
        caller_call_id=call_id,
        start_ms=start_ms,
        stop_ms=stop_ms,
        caller_number=entry.get("caller", ""),
        callee_number=callee,
        callee_number_routed=callee,  # the registry holds the routed callee
        caller_ip=entry.get("source_ip"),
        account_id=entry.get("account_id"),
        mapping_gateway_id=entry.get("mapping_gateway_id"),
        phone_id=entry.get("phone_id"),
        end_direction=EndDirection.SERVER,
        end_reason=EndReason.SWITCH_RESTART.code,
        sip_status=EndReason.SWITCH_RESTART.sip_status,
        # As the registry holds it: the ingest judges a value this side never writes.
        billing_mode=entry.get("billing_mode", BillingMode.NOT_BILLED),
        node=node,
        snapshot_version=entry.get("snapshot_version"),
        estimated=True,
    )
    if answered is not None:
        route = answered.route
        record.answer_ms = answered.answer_ms
        record.hold_time_ms = stop_ms - answered.answer_ms
        record.caller_number_out, record.callee_number_out = route.caller, route.callee
        record.vendor_ip = route.host
        record.vendor_account_id = route.vendor_account_id
        record.routing_gateway_id, record.routing_gateway_name = route.gateway_id, route.gateway_name
        record.rate_prefix, record.rate_area = route.rate_prefix, route.rate_area
        record.vendor_rate_prefix, record.vendor_rate_area = route.vendor_rate_prefix, route.vendor_rate_area
        record.vendors_tried = [VendorAttempt(route.gateway_id, route.gateway_name, route.host, 200)]
    return record


# Release a lost call and append its CDR, only if its registry entry is still the one the record was built
# from: the restarting node and the worker's job may both try, and the call is recorded once. Releases the
# same keys as callcore.live's TEARDOWN_LUA (change both together), and the call's kept answer.
# An answered call's reservation stays held as its CDR's pending debit (contract.pending), as at a teardown.
# KEYS: 1 reservations, 2 registry, 3 registry expiry index, 4 CDR stream, 5 answered calls, 6 the node's grant
#       index (Keys.grants), then slot keys
# ARGV: 1 call id, 2 the registry entry as read, 3 CDR json, 4 pending-debit field ('' = not charged),
#       5 its expiry ms
# Returns 1 when this call released it, 0 when it was gone (or replaced) already.
RELEASE_LOST_LUA = (
    HOLD_OR_RELEASE_LUA
    + r"""
local call_id = ARGV[1]
if redis.call('HGET', KEYS[2], call_id) ~= ARGV[2] then return 0 end
hold_or_release(KEYS[1], call_id, ARGV[4], ARGV[5])
redis.call('HDEL', KEYS[2], call_id)
redis.call('ZREM', KEYS[3], call_id)
redis.call('HDEL', KEYS[5], call_id)
redis.call('ZREM', KEYS[6], call_id)
redis.call('HDEL', KEYS[6] .. ':calls', call_id)
for i = 7, #KEYS do redis.call('ZREM', KEYS[i], call_id) end
redis.call('XADD', KEYS[4], '*', 'cdr', ARGV[3])
return 1
"""
)


def release_lost_args(call_id: str, raw_entry, record: CdrRecord, now_ms: int) -> list:
    """RELEASE_LOST_LUA's arguments for the call whose registry entry (as read) is ``raw_entry``."""
    charged = record.answer_ms is not None
    field = pending_debit_field(record.call_uuid) if charged else ""
    return [call_id, raw_entry, encode_cdr(record), field, now_ms + PENDING_DEBIT_HOLD_MS if charged else 0]


def release_lost_keys(keys: Keys, entry: dict) -> list[str]:
    """RELEASE_LOST_LUA's keys for the call of registry ``entry``."""
    slot_keys = keys.call_slots(
        entry["account_id"], entry.get("mapping_gateway_id"), entry.get("phone_id"), entry.get("route_gateway_ids", []),
        caller=entry.get("caller", ""),
    )  # fmt: skip
    return [
        keys.reservations(entry["account_id"]), keys.live_calls, keys.live_calls_expiry, keys.cdr_stream,
        keys.live_answered, keys.grants(entry.get("node", "")), *slot_keys,
    ]  # fmt: skip


# Forget a node's heartbeat once its lost calls are recorded, unless it beat again meanwhile (it came back).
# KEYS: 1 heartbeats; ARGV: 1 node, 2 the beat as read. Returns 1 when forgotten.
FORGET_HEARTBEAT_LUA = r"""
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
return redis.call('HDEL', KEYS[1], ARGV[1])
"""
