"""A stream entry decoded into what the store needs: the CDR table's columns, then rated.

The record's type and its field limits are the contract's (``CdrRecord``,
``decode_cdr``): a wrong type, an integer out of range, an unknown code or a
missing field makes it a dead letter with the reason. What the columns need
beyond that is done here: texts cut to their column (``TEXT_WIDTHS``) and rid
of NULs and of control and bidirectional characters, the call's key fitted to its column, the caller's address checked.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import socket

import msgspec

from callcore.contract import CALL_UUID_LENGTH, TEXT_WIDTHS, CdrError, decode_cdr

from ..catalogue import Catalog

log = logging.getLogger("billing.ingest")

# What a SIP peer may hide in a User-Agent or a display name to garble a page or a CSV line, or to make text read
# differently from what it is: C0/C1 controls (NUL, escape sequences, new lines), bidirectional overrides and
# isolates, zero-width characters, line and paragraph separators, the byte-order mark.
UNSAFE_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


class InvalidRecord(ValueError):
    """A record that cannot be stored as it is; the message is the dead letter's reason."""


@dataclasses.dataclass(slots=True)
class Record:
    """A validated CDR record, its times still in epoch ms, waiting to be rated."""

    entry_id: str
    raw: bytes | str  # as read from the stream, for a dead letter
    values: dict
    vendors_tried: list | tuple = ()  # parsed, for the route statistics; ``values`` holds it as stored

    @property
    def key(self) -> tuple[str, int]:
        return self.values["call_uuid"], self.values["start_ms"]


def as_text(value) -> str:
    """A stream's id or field as text."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _ip(value: str | None, name: str, strict: bool) -> str | None:
    if value is None or value == "":
        return None
    text = value.strip()
    family = socket.AF_INET
    if ":" in text:
        family = socket.AF_INET6
        text = text.strip("[]").split("%", 1)[0]  # PostgreSQL's inet has no IPv6 zone id
    try:
        # inet_pton, not ipaddress: the same answer at a hundredth of the cost, and this runs twice a record.
        socket.inet_pton(family, text)
        return text
    except OSError:
        pass
    if strict:
        raise InvalidRecord(f"{name} {value!r} is not an IP address"[:300])
    return None


def fit_call_uuid(call_uuid: str) -> str:
    """The call's key as stored: as it is when it fits the column, else its start and a digest of the whole.

    The call core builds it from the node, the SIP Call-ID and the start time,
    and a Call-ID has no length limit. Cutting it could make two calls one;
    the digest keeps it unique and the same on every redelivery, so the
    ``ON CONFLICT`` check still sees a repeat. The full Call-ID stays in
    ``caller_call_id``.
    """
    if len(call_uuid) <= CALL_UUID_LENGTH:
        return call_uuid
    digest = hashlib.sha256(call_uuid.encode()).hexdigest()[:40]
    return f"{call_uuid[: CALL_UUID_LENGTH - len(digest) - 1]}~{digest}"


_encode = msgspec.json.Encoder().encode


def parse(entry_id: str, raw: bytes | str | None) -> Record:
    """Decode one stream entry's ``cdr`` field into a Record, or raise InvalidRecord with the reason."""
    if raw is None:
        raise InvalidRecord("the entry has no 'cdr' field")
    try:
        cdr = decode_cdr(raw)
    except CdrError as exc:
        raise InvalidRecord(str(exc)) from None
    values = msgspec.structs.asdict(cdr)
    values["call_uuid"] = fit_call_uuid(cdr.call_uuid)
    # JSON spells a NUL \u0000: without one in the line, no string needs cleaning.
    has_nul = ("\\u0000" if isinstance(raw, str) else b"\\u0000") in raw
    for name, width in TEXT_WIDTHS.items():
        value = values[name]
        if has_nul:
            value = value.replace("\x00", "")
        if not value.isprintable():
            value = UNSAFE_TEXT.sub("", value)
        if len(value) > width:
            value = value[:width]
        values[name] = value
    values["caller_ip"] = _ip(cdr.caller_ip, "caller_ip", strict=True)
    # The call core writes the routing gateway's host here, which may be a DNS
    # name; the column is inet, and the gateway's id and name are in the record.
    values["vendor_ip"] = _ip(cdr.vendor_ip, "vendor_ip", strict=False)
    values["billing_mode"] = int(cdr.billing_mode)
    if cdr.end_direction is not None:
        values["end_direction"] = int(cdr.end_direction)
    tried = cdr.vendors_tried
    encoded = _encode(tried).decode() if tried else "[]"
    if has_nul and "\\u0000" in encoded:
        raise InvalidRecord("vendors_tried contains a NUL character, which PostgreSQL's jsonb refuses")
    values["vendors_tried"] = encoded
    return Record(entry_id, raw, values, tried)


def rate_records(records: list[Record], catalog: Catalog) -> list[tuple[Record, str]]:
    """Fill each record's fee_time, fee, vendor_cost and rate prefixes/areas in place (``Catalog.rate``).

    An account that does not exist (deleted since) rates at nothing: the
    record is kept for a re-rate. Returns the records that could not be rated
    at all, with why, so that one of them never holds up the rest.
    """
    named = {v for r in records for v in (r.values["account_id"], r.values["vendor_account_id"])}
    missing = named & catalog.missing
    if missing:
        log.warning("CDRs name accounts that do not exist (%s): stored unrated", sorted(missing)[:10])
    rate_row = catalog.rate_row
    failed = []
    for record in records:
        v = record.values
        try:
            rated = rate_row(v)
        except Exception as exc:
            log.exception("CDR %s could not be rated", v["call_uuid"])
            failed.append((record, f"rating failed: {exc!r}"[:500]))
            continue
        v.update(rated.columns())
    return failed
