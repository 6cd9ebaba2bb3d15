"""The CDR record: one per call attempt, written by the call core, decoded and validated by the ingest.

Field names are the CDR table's columns; times are epoch milliseconds. A
text's ``width`` is its column's: the ingest cuts a longer text to fit (a
CDR is evidence, and a 300-digit number from a scanner is no reason to lose
the record), while an integer out of its declared range, a wrong type or an
unknown code makes the record a dead letter.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import msgspec

from .codes import BillingMode, EndDirection
from .disconnects import DISCONNECTED_BY_WIDTH
from .jsontext import json_text
from .trace import DECISION_TRACE_WIDTH

__all__ = [
    "CDR_SCHEMA",
    "MIN_MS",
    "MAX_MS",
    "CALL_UUID_LENGTH",
    "EpochMs",
    "Id",
    "VendorAttempt",
    "CdrRecord",
    "TEXT_WIDTHS",
    "CdrError",
    "encode_cdr",
    "decode_cdr",
]


# The record version this side writes and reads; bump it on any change the other side would misread.
CDR_SCHEMA = 1

# Epoch ms from 2000 to 2100: anything outside is a corrupt clock or a corrupt record.
MIN_MS, MAX_MS = 946_684_800_000, 4_102_444_800_000
CALL_UUID_LENGTH = 64  # billing_cdr.call_uuid

_BIGINT = 2**63 - 1


def _text(width: int):
    return Annotated[str, msgspec.Meta(extra={"width": width})]


def _int(low: int, high: int):
    return Annotated[int, msgspec.Meta(ge=low, le=high)]


EpochMs = _int(MIN_MS, MAX_MS)
Id = _int(1, _BIGINT)


class VendorAttempt(msgspec.Struct):
    """One vendor tried for the call, with its final answer (200 when it connected)."""

    gateway_id: int
    gateway: str
    ip: str
    status: int


class CdrRecord(msgspec.Struct, kw_only=True):
    cdr_schema: int = CDR_SCHEMA
    # Bounded and unique per attempt (node, Call-ID and start; a Call-ID may be any length).
    call_uuid: str
    caller_call_id: _text(200) = ""
    callee_call_id: _text(200) = ""
    start_ms: EpochMs
    answer_ms: EpochMs | None = None
    stop_ms: EpochMs | None = None
    hold_time_ms: _int(0, _BIGINT) = 0
    pdd_ms: _int(-(2**31), 2**31 - 1) | None = None
    caller_number: _text(64) = ""
    callee_number: _text(64) = ""
    # After the mapping gateway's transforms: what the switch routed on and rates in mode 0 (empty in older records).
    callee_number_routed: _text(64) = ""
    caller_number_out: _text(64) = ""
    callee_number_out: _text(64) = ""
    caller_ip: str | None = None
    caller_port: _int(0, 65535) | None = None
    caller_user_agent: _text(200) = ""
    # The routing gateway's host, which may be a DNS name (the CDR column is inet: the ingest drops a name).
    vendor_ip: str | None = None
    account_id: Id | None = None
    account_name: _text(100) = ""
    vendor_account_id: Id | None = None
    mapping_gateway_id: Id | None = None
    mapping_gateway_name: _text(100) = ""
    routing_gateway_id: Id | None = None
    routing_gateway_name: _text(100) = ""
    phone_id: Id | None = None
    rate_prefix: _text(32) = ""
    rate_area: _text(100) = ""
    vendor_rate_prefix: _text(32) = ""
    vendor_rate_area: _text(100) = ""
    end_direction: EndDirection | None = None
    end_reason: _text(40) = ""
    sip_status: _int(0, 32767) | None = None
    billing_mode: BillingMode
    # VendorAttempts as written; a malformed element loses no call: the bill and route_stats read them leniently.
    vendors_tried: list[Any] = []
    node: _text(64) = ""
    snapshot_version: _int(-(2**63), _BIGINT) | None = None
    # The end was not seen (the call core died mid-call): stopped at its node's last heartbeat (contract.lost).
    estimated: bool = False
    # Why each candidate vendor was skipped and the limits that applied (contract.trace); empty in older records.
    decision_trace: _text(DECISION_TRACE_WIDTH) = ""
    # Who asked for the call to end (Keys.disconnects' ``by``: an operator, an API client, an anti-fraud rule).
    disconnected_by: _text(DISCONNECTED_BY_WIDTH) = ""


# Each text field's column width, from the declarations above.
TEXT_WIDTHS: dict[str, int] = {
    f.name: f.type.extra["width"]
    for f in msgspec.inspect.type_info(CdrRecord).fields
    if isinstance(f.type, msgspec.inspect.Metadata) and f.type.extra and "width" in f.type.extra
}


class CdrError(ValueError):
    """A record that cannot be trusted; the message (a dead letter's reason) names the field."""


_decoder = msgspec.json.Decoder(CdrRecord)
_FIELD = re.compile(r"`\$\.([a-z_]+)")
_MISSING = re.compile(r"missing required field `([a-z_]+)`")


def encode_cdr(record: CdrRecord) -> str:
    """The stream's and the spool's line for a record."""
    return json_text(record)


def decode_cdr(raw: bytes | str) -> CdrRecord:
    """Parse and check one line against the declarations; CdrError says what is wrong."""
    try:
        record = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise CdrError(_explain(raw, str(exc))) from None
    except msgspec.DecodeError as exc:
        raise CdrError(f"not JSON: {exc}") from None
    if record.cdr_schema != CDR_SCHEMA:
        raise CdrError(f"cdr_schema {record.cdr_schema!r} is not the {CDR_SCHEMA} this side understands")
    if not record.call_uuid.strip() or "\x00" in record.call_uuid:
        raise CdrError(f"call_uuid must be a non-empty string, got {record.call_uuid!r}"[:300])
    return record


def _explain(raw: bytes | str, message: str) -> str:
    """The dead letter's reason: the field, the value it had and what was expected (the slow path)."""
    missing = _MISSING.search(message)
    if missing:
        return f"{missing.group(1)} is missing"
    found = _FIELD.search(message)
    if not found:
        return f"not a CDR record: {message}"[:300]
    name = found.group(1)
    try:
        value = json.loads(raw).get(name)
    except (ValueError, AttributeError):
        value = "?"
    return f"{name} {value!r}: {message.split(' - at ')[0]}"[:300]
