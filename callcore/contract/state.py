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
    "GrantRate",
    "GrantTerms",
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


class GrantRate(msgspec.Struct, array_like=True, gc=False, frozen=True):
    """A route's customer rate, as an anti-overdraft call's grants are priced (``decide.grant_cost``)."""

    connect_fee: str
    price_per_minute: str
    first_period: int
    next_period: int


class GrantTerms(msgspec.Struct, array_like=True, gc=False):
    """What an anti-overdraft call's quota grants need once it is answered, whichever route answers."""

    seconds: int  # each grant: SERVER_BILLING_PREVENT_OVERDRAFT_ADVANCE_TIME (at least 1)
    fee_precision: int  # SERVER_BILLING_FEE_PRECISION: a grant rounds up to it
    credit_units: int  # the account's credit limit
    balance_units: int  # its balance in the snapshot, when Redis holds no live balance
    rates: list[GrantRate]  # per route, as ``CallState.routes``


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
    # Per route, the longest it may talk (conversation limits): a route that answers after failover and
    # allows less than ``max_duration_s`` (the dialog's timeout) is cut at its own limit by the grant timer.
    route_max_s: list[int] = []
    grant: GrantTerms | None = None  # anti-overdraft calls only: their quota grants
    decision_trace: str = ""  # for its CDR (contract.trace)


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
