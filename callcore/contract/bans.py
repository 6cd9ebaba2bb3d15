"""Source-IP bans shared by every call-core node: why a source is banned, and the ban as Redis holds it.

A ban is a Redis hash under ``Keys.ban(ip)`` that expires with the ban, listed
in the sorted set ``Keys.bans`` (ip -> expiry ms) for the nodes' caches, the
portal and the firewall export; every ban or release moves ``Keys.bans_version``
so each node reloads its cache within a second.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "BanCause",
    "BanRecord",
    "BAN_OFFENCE_MEMORY_S",
]

# Offences are remembered this long: a source banned again within a day is banned twice as long as before.
BAN_OFFENCE_MEMORY_S = 86400


class BanCause(enum.Enum):
    """Why a source was banned; the value is what Redis and the portal store."""

    SCANNER = "scanner"  # a scanner's User-Agent
    FLOOD = "flood"  # over SS_FLOOD_REQUESTS_PER_2S requests (pike)
    ILLEGAL_CALLS = "illegal_calls"  # SS_BAN_ILLEGAL_CALLS_PER_IP INVITEs from neither a gateway nor a phone
    AUTH_FAILURES = "auth_failures"  # SS_BAN_AUTH_FAILURES_PER_IP wrong digest answers from one source
    AUTH_FAILURES_USER = "auth_failures_user"  # SS_BAN_AUTH_FAILURES_PER_USER against one username, any source

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    BanCause.SCANNER: "Scanner User-Agent",
    BanCause.FLOOD: "Request flood",
    BanCause.ILLEGAL_CALLS: "Illegal-call burst",
    BanCause.AUTH_FAILURES: "Digest guessing (per source)",
    BanCause.AUTH_FAILURES_USER: "Digest guessing (per username)",
}


@dataclass(frozen=True)
class BanRecord:
    """One ban as its Redis hash holds it (every field a string there)."""

    ip: str
    cause: str
    count: int  # the offending requests counted when it was banned, and those seen after by a node
    first_ms: int  # the first offending request counted
    last_ms: int
    node: str  # the call-core node that banned it
    offences: int  # bans of this source within BAN_OFFENCE_MEMORY_S, this one included
    expires_ms: int
    subject: str = ""  # the username guessed at, for the digest causes

    @classmethod
    def from_hash(cls, ip: str, fields: dict) -> BanRecord:
        """From HGETALL's answer (bytes or str); raises ValueError on a hash that is not a ban."""
        text = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                for k, v in fields.items()}  # fmt: skip
        try:
            return cls(
                ip=ip,
                cause=text["cause"],
                count=int(text["count"]),
                first_ms=int(text["first_ms"]),
                last_ms=int(text["last_ms"]),
                node=text.get("node", ""),
                offences=int(text.get("offences", 1)),
                expires_ms=int(text["expires_ms"]),
                subject=text.get("subject", ""),
            )
        except (KeyError, ValueError) as exc:
            raise ValueError(f"ban of {ip} is malformed: {exc!r}") from None
