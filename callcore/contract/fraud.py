"""Anti-fraud: the rules, the dynamic blacklist's subjects and the fraud event both sides exchange.

Whoever detects a breach (the call core inside its set-up Lua, or the CDR
ingest from rated CDRs) does three things at once, so the next call is
refused on every node without waiting for the portal:

* a critical, blocking breach adds its subject to the dynamic-blacklist
  sorted set (``Keys.dynamic_blacklist``, score = expiry epoch ms) unless the
  subject is exempt (``Keys.fraud_exempt`` holds it with a future score);
* a critical, blocking breach also asks the node holding each live call that
  matches the new entry to end it (``Keys.disconnects(node)``);
* every warning or critical detection is XADDed to ``Keys.fraud_events`` as
  field ``e`` = ``encode_event(event)``; the worker persists it (the review
  queue's entry, the alarm) idempotently by stream id.

A blacklist member is a subject string: a plain number (digits and ``+``)
blocks calls whose caller or callee equals it; ``acct:<id>`` blocks every
call of that account; ``acct:<id>:hr`` blocks that account's calls to
high-risk destinations only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import msgspec

__all__ = [
    "FraudRule",
    "Severity",
    "SETUP_RULES",
    "POST_CALL_RULES",
    "SubjectKind",
    "ACCOUNT_SUBJECT_PREFIX",
    "HIGH_RISK_SUBJECT_SUFFIX",
    "account_subject",
    "account_high_risk_subject",
    "parse_subject",
    "FraudEvent",
    "encode_event",
    "decode_event",
    "EVENT_FIELD",
    "FRAUD_EVENTS_MAXLEN",
    "RuleParams",
    "RULE_PARAMS",
    "rule_params",
]


class FraudRule(StrEnum):
    # Set-up rules: evaluated by the call core inside its set-up Lua, before any money flows.
    MALICIOUS_CALLER = "malicious_caller"
    CONCURRENT_CALLER = "concurrent_caller"
    HIGH_RISK_RATE = "high_risk_rate"
    SPEND_VELOCITY = "spend_velocity"
    NEW_DESTINATION = "new_destination"
    # Post-call rules: evaluated by the ingest from rated CDRs (they need the outcome).
    NO_ANSWER_CALLEE = "no_answer_callee"
    SHORT_CALL_BURST = "short_call_burst"
    SPEND_VELOCITY_ACTUAL = "spend_velocity_actual"
    LONG_CALL = "long_call"


SETUP_RULES = (
    FraudRule.MALICIOUS_CALLER,
    FraudRule.CONCURRENT_CALLER,
    FraudRule.HIGH_RISK_RATE,
    FraudRule.SPEND_VELOCITY,
    FraudRule.NEW_DESTINATION,
)
POST_CALL_RULES = (
    FraudRule.NO_ANSWER_CALLEE,
    FraudRule.SHORT_CALL_BURST,
    FraudRule.SPEND_VELOCITY_ACTUAL,
    FraudRule.LONG_CALL,
)


class Severity(StrEnum):
    WARNING = "warning"  # an alarm only
    CRITICAL = "critical"  # a block, unless the rule is report-only


class SubjectKind(StrEnum):
    NUMBER = "number"
    ACCOUNT = "account"
    ACCOUNT_HIGH_RISK = "account_high_risk"


ACCOUNT_SUBJECT_PREFIX = "acct:"
HIGH_RISK_SUBJECT_SUFFIX = ":hr"


def account_subject(account_id: int) -> str:
    """The member that blocks every call of the account."""
    return f"{ACCOUNT_SUBJECT_PREFIX}{int(account_id)}"


def account_high_risk_subject(account_id: int) -> str:
    """The member that blocks the account's calls to high-risk destinations only."""
    return f"{ACCOUNT_SUBJECT_PREFIX}{int(account_id)}{HIGH_RISK_SUBJECT_SUFFIX}"


def parse_subject(member: str | bytes) -> tuple[SubjectKind, str]:
    """A blacklist member's kind and value (the number, or the account id as text).

    Raises ValueError for a member that is neither a number nor a well-formed
    account subject, so a typo never silently blocks or unblocks anything.
    """
    if isinstance(member, bytes):
        member = member.decode()
    if member.startswith(ACCOUNT_SUBJECT_PREFIX):
        rest = member[len(ACCOUNT_SUBJECT_PREFIX) :]
        kind = SubjectKind.ACCOUNT
        if rest.endswith(HIGH_RISK_SUBJECT_SUFFIX):
            rest = rest[: -len(HIGH_RISK_SUBJECT_SUFFIX)]
            kind = SubjectKind.ACCOUNT_HIGH_RISK
        if not rest.isascii() or not rest.isdigit():
            raise ValueError(f"not an account subject: {member!r}")
        return kind, rest
    digits = member[1:] if member.startswith("+") else member
    if not digits or not digits.isascii() or not digits.isdigit():
        raise ValueError(f"not a blacklist subject: {member!r}")
    return SubjectKind.NUMBER, member


class FraudEvent(msgspec.Struct, kw_only=True):
    """One warning or critical detection, as XADDed to ``Keys.fraud_events``."""

    rule: str  # a FraudRule value
    severity: str  # a Severity value
    subject: str  # a blacklist member (see parse_subject)
    scope: str  # "central" (every gateway) or "gateway" (the mapping gateway's own list)
    mapping_gateway_id: int | None
    account_id: int | None
    figures: dict[str, Any]  # e.g. {"count": 5, "window_s": 60, "warning": 3, "critical": 5}
    evidence: list[str]  # call ids (the CDRs' call_id) of the calls counted
    blocked: bool  # False when the rule is report-only, or for a warning
    ttl_s: int  # how long the entry blocks (0 for a warning)
    detected_ms: int
    node: str  # "ingest" or the call-core node's name


# The stream field holding the encoded event, and the stream's approximate cap (XADD MAXLEN ~).
EVENT_FIELD = "e"
FRAUD_EVENTS_MAXLEN = 100_000

_event_decoder = msgspec.json.Decoder(FraudEvent)


def encode_event(event: FraudEvent) -> bytes:
    return msgspec.json.encode(event)


def decode_event(raw: str | bytes) -> FraudEvent:
    return _event_decoder.decode(raw)


@dataclass(frozen=True)
class RuleParams:
    """The system parameters' names of one rule (callcore.contract.params declares them).

    ``window`` is None for a rule counted without a window (concurrent calls,
    one call's length); the levels are counts, money units or seconds as the
    rule's parameter descriptions say.
    """

    enabled: str
    report_only: str
    warning: str
    critical: str
    window: str | None
    expire: str


def _own(rule: str, *, window: bool = True) -> RuleParams:
    stem = f"SS_FRAUD_{rule.upper()}"
    return RuleParams(
        enabled=f"{stem}_ENABLED",
        report_only=f"{stem}_REPORT_ONLY",
        warning=f"{stem}_WARNING",
        critical=f"{stem}_CRITICAL",
        window=f"{stem}_WINDOW" if window else None,
        expire=f"{stem}_EXPIRE",
    )


RULE_PARAMS: dict[FraudRule, RuleParams] = {
    # VOS3000's names where it has the rule; this project's own for the rest (and the levels VOS lacks).
    FraudRule.MALICIOUS_CALLER: RuleParams(
        enabled="SS_FRAUD_MALICIOUS_CALLER_ENABLED",
        report_only="SS_FRAUD_MALICIOUS_CALLER_REPORT_ONLY",
        warning="SS_FRAUD_MALICIOUS_CALLER_WARNING",
        critical="SS_BLACK_LIST_CALLER_MALICIOUS_CALL_CHECK_LIMIT",
        window="SS_BLACK_LIST_CALLER_MALICIOUS_CALL_CHECK_INTERVAL",
        expire="SS_BLACK_LIST_CALLER_MALICIOUS_CALL_EXPIRE",
    ),
    FraudRule.CONCURRENT_CALLER: RuleParams(
        enabled="SS_FRAUD_CONCURRENT_CALLER_ENABLED",
        report_only="SS_FRAUD_CONCURRENT_CALLER_REPORT_ONLY",
        warning="SS_FRAUD_CONCURRENT_CALLER_WARNING",
        critical="SS_BLACK_LIST_CALLER_CONCURRENT_LIMIT",
        window=None,
        expire="SS_BLACK_LIST_CALLER_CONCURRENT_EXPIRE",
    ),
    FraudRule.NO_ANSWER_CALLEE: RuleParams(
        enabled="SS_FRAUD_NO_ANSWER_CALLEE_ENABLED",
        report_only="SS_FRAUD_NO_ANSWER_CALLEE_REPORT_ONLY",
        warning="SS_FRAUD_NO_ANSWER_CALLEE_WARNING",
        critical="SS_BLACK_LIST_NO_ANSWER_LIMIT",
        window="SS_BLACK_LIST_NO_ANSWER_PERIODS",
        expire="SS_BLACK_LIST_NO_ANSWER_EXPIRE",
    ),
    FraudRule.HIGH_RISK_RATE: _own("high_risk_rate"),
    FraudRule.SPEND_VELOCITY: _own("spend_velocity"),
    FraudRule.NEW_DESTINATION: _own("new_destination"),
    FraudRule.SHORT_CALL_BURST: _own("short_call_burst"),
    FraudRule.SPEND_VELOCITY_ACTUAL: _own("spend_velocity_actual"),
    FraudRule.LONG_CALL: _own("long_call", window=False),
}


def rule_params(rule: FraudRule | str) -> RuleParams:
    return RULE_PARAMS[FraudRule(rule)]
