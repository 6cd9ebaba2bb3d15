"""The decision trace: why each candidate vendor was kept or skipped, and the limits a call got.

One vocabulary for the routing simulator's rows and the short text every CDR carries
(``CdrRecord.decision_trace``), so what the simulator predicts reads like what a call recorded.
The text is compact and plain: ``policy=priority;routes=3,5;skip=7:schedule,9:margin;busy=3;max=3600:route``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = [
    "DECISION_TRACE_WIDTH",
    "LimitSource",
    "Skip",
    "DecisionTrace",
    "encode_trace",
    "decode_trace",
]

# The CDR's column: a call skips a handful of vendors; a longer trace is cut at a whole entry.
DECISION_TRACE_WIDTH = 1000


class Skip(enum.StrEnum):
    """Why a routing gateway did not get the call (or not first)."""

    label: str

    def __new__(cls, value: str, label: str):
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member

    PREFIX = "prefix", "no prefix of the callee, or not the longest match"
    DISABLED = "disabled", "disabled"
    SCHEDULE = "schedule", "outside its routing schedules"
    NO_RATE = "no_rate", "no customer rate for the number"
    MARGIN = "margin", "vendor rate dearer than the customer's, or none"
    SWITCH_LIMIT = "switch_limit", "past SS_GATEWAY_SWITCH_LIMIT"
    CAPACITY = "capacity", "at its capacity"
    CPS = "cps", "at its CPS limit this second"
    # The set-up's one round trip takes the first vendor with a free slot and CPS token and says no more.
    BUSY = "busy", "at its capacity or CPS limit at set-up"


class LimitSource(enum.StrEnum):
    """What set the call's maximum duration."""

    DEFAULT = "default"  # SS_DEFAULT_MAX_DURATION: no conversation limit applied
    MAPPING_GATEWAY = "mapping_gateway"  # the mapping gateway's conversation limit
    ROUTE = "route"  # the first vendor's conversation limit


@dataclass
class DecisionTrace:
    """A trace decoded: the policy, the vendors planned in order, those skipped and why, the limit."""

    policy: str = ""
    routes: list[int] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    busy: list[int] = field(default_factory=list)
    max_duration_s: int | None = None
    max_by: str = ""


def encode_trace(
    policy: str, routes, skipped, busy=(), max_duration_s: int | None = None, max_by: str = ""
) -> str:  # fmt: skip
    """The CDR's text; ``routes`` and ``busy`` gateway ids, ``skipped`` (gateway id, Skip) pairs."""
    # Concatenation, not f-strings: formatting an enum member runs Python code, and this runs on every call.
    text = "policy=" + policy
    if routes:
        text += ";routes=" + ",".join(map(str, routes))
    if skipped:
        text += ";skip=" + ",".join([str(gateway) + ":" + reason for gateway, reason in skipped])
    if busy:
        text += ";busy=" + ",".join(map(str, busy))
    if max_duration_s is not None:
        text += ";max=" + str(max_duration_s) + ":" + max_by
    if len(text) > DECISION_TRACE_WIDTH:
        text = text[: text.rfind(",", 0, DECISION_TRACE_WIDTH - 3)] + ",..."
    return text


def decode_trace(text: str) -> DecisionTrace:
    """A CDR's text read back; lenient: an unknown or broken part is left out, never an error."""
    trace = DecisionTrace()
    for part in (text or "").split(";"):
        key, _, value = part.partition("=")
        items = [item for item in value.split(",") if item and item != "..."]
        try:
            if key == "policy":
                trace.policy = value
            elif key == "routes":
                trace.routes = [int(item) for item in items]
            elif key == "skip":
                pairs = (item.partition(":") for item in items)
                trace.skipped = [(int(gateway), reason) for gateway, _, reason in pairs]
            elif key == "busy":
                trace.busy = [int(item) for item in items]
            elif key == "max":
                seconds, _, trace.max_by = value.partition(":")
                trace.max_duration_s = int(seconds)
        except ValueError:
            continue
    return trace
