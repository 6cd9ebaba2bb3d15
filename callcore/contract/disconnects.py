"""A request to end a live call, queued for the node that holds it (``Keys.disconnects(node)``).

Written by the portal and the REST API (an operator), the VOS API, the ingest's
fraud rules, and a node itself (the media timeout, a call answered across its
cancel); the set-up fraud rules' Lua (``callcore.live``) writes the same three
fields. Served by that node's timer (``callcore.kemi``'s ``serve_disconnects``):
BYE both ways for an answered call, CANCEL for one still setting up, the CDR
taking ``end_reason`` and ``by``.
"""

from __future__ import annotations

import msgspec

from .codes import EndReason

__all__ = ["DISCONNECTED_BY_WIDTH", "DisconnectRequest", "decode_disconnect", "encode_disconnect"]

# CdrRecord.disconnected_by's width: who asked is shown on the CDR.
DISCONNECTED_BY_WIDTH = 150


class DisconnectRequest(msgspec.Struct, frozen=True):
    call_id: str
    end_reason: str = EndReason.OPERATOR_DISCONNECT.code
    by: str | None = ""  # who asked ("portal:alice", "vos:...", "<node>:<rule>"), empty for the switch itself


def encode_disconnect(call_id: str, end_reason: str, by: str = "") -> bytes:
    return msgspec.json.encode(DisconnectRequest(call_id, end_reason, by[:DISCONNECTED_BY_WIDTH]))


_decoder = msgspec.json.Decoder(DisconnectRequest)


def decode_disconnect(raw: str | bytes) -> DisconnectRequest:
    """Raises msgspec.DecodeError (ValidationError included) for a request that is not one."""
    return _decoder.decode(raw)
