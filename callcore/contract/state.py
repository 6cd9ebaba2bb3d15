"""The call state the call core keeps in each dialog: written at set-up, read by every later route.

Kamailio holds it as a dialog variable (text), so it is JSON; ``array_like``
keeps it a flat array, shorter to store and faster to decode than named keys.
"""

from __future__ import annotations

import msgspec

from .cdr import VendorAttempt
from .codes import BillingMode
from .jsontext import json_text

__all__ = [
    "RouteState",
    "CallState",
    "encode_state",
    "decode_state",
    "encode_tried",
    "decode_tried",
]


class RouteState(msgspec.Struct, array_like=True, gc=False):
    """One vendor to try, as the adapter sends to it and records it."""

    gateway_id: int
    gateway_name: str
    host: str
    port: int
    transport: str
    caller: str  # the numbers as this vendor sees them
    callee: str
    capacity: int
    cps_limit: int
    failover_codes: frozenset[int]
    conversation_limit: int
    vendor_account_id: int | None
    rate_prefix: str
    rate_area: str
    vendor_rate_prefix: str
    vendor_rate_area: str


class CallState(msgspec.Struct, array_like=True, gc=False):
    """A routed call: what its CDR and its end need, and the parameters captured at its set-up."""

    call_id: str
    start_ms: int
    source_ip: str
    source_port: int
    user_agent: str
    caller_in: str  # the numbers as the caller sent them
    callee_in: str
    caller: str  # after the mapping gateway's transforms
    callee: str
    billing_mode: BillingMode
    account_id: int
    account_name: str
    mapping_gateway_id: int | None
    mapping_gateway_name: str
    phone_id: int | None
    snapshot_version: int
    max_duration_s: int
    # An anti-overdraft call whose max duration the balance cut short: its timeout is the balance running out.
    balance_limited: bool
    slot_taken: bool  # the current route's slot is held in the live state
    routes: list[RouteState]
    from_per_branch: bool  # the vendors get different callers: each branch replaces its own From
    expiry_ms: int
    # Parameters as they were when the call was set up.
    record_zero_hold: bool  # SERVER_BILLING_RECORD_ZERO_HOLD_TIME
    record_server_hangup: bool  # SERVER_BILLING_RECORD_SERVER_HANG_UP
    stop_switch_after_sdp: bool  # SS_SIP_STOP_SWITCH_AFTER_SDP
    switch_limit: int  # SS_GATEWAY_SWITCH_LIMIT
    invite_timeout_ms: int  # SS_SIP_TIMEOUT_INVITE


_state_decoder = msgspec.json.Decoder(CallState)
_tried_decoder = msgspec.json.Decoder(list[VendorAttempt])


def encode_state(state: CallState) -> str:
    return json_text(state)


def decode_state(raw: str | bytes) -> CallState:
    return _state_decoder.decode(raw)


def encode_tried(tried: list[VendorAttempt]) -> str:
    return json_text(tried)


def decode_tried(raw: str | bytes) -> list[VendorAttempt]:
    return _tried_decoder.decode(raw)
