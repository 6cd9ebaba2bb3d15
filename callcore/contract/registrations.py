"""Registered phones: what a call core node records of each contact a REGISTER saved, read by the portal.

Kamailio keeps its registrations in each node's memory (usrloc), which
nothing outside the node can read; each node also records every contact it
saved in ``Keys.registrations`` (field ``registration_field``, value a
``Registration``), with its expiry in ``Keys.registrations_expiry`` so the
next REGISTER on any node drops the expired ones. A reader skips an entry
whose ``expires_ms`` has passed.
"""

from __future__ import annotations

import msgspec

from .jsontext import json_text

__all__ = ["Registration", "registration_field", "encode_registration", "decode_registration"]


class Registration(msgspec.Struct, kw_only=True):
    """One contact of a phone, as the node that saved it saw the REGISTER."""

    aor: str  # the phone's username
    contact: str
    source_ip: str
    source_port: int = 0
    transport: str = ""
    user_agent: str = ""
    registered_ms: int
    expires_ms: int
    node: str
    phone_id: int | None = None


def registration_field(node: str, aor: str, contact: str) -> str:
    """One contact on one node: the same phone registered through two nodes is two rows, as it is to SIP."""
    return f"{node}|{aor}|{contact}"


_decoder = msgspec.json.Decoder(Registration)


def encode_registration(registration: Registration) -> str:
    return json_text(registration)


def decode_registration(raw: str | bytes) -> Registration:
    return _decoder.decode(raw)
