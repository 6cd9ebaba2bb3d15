"""The codes both sides speak: billing modes and end directions (VOS3000's), end reasons, failover codes."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "DEFAULT_FAILOVER_CODES",
    "BillingMode",
    "PRODUCED_BILLING_MODES",
    "EndDirection",
    "EndReasonInfo",
    "EndReason",
    "END_REASONS_BY_CODE",
]


# Vendor answers that always fail over to the next vendor; a routing gateway's failover_codes add to these.
DEFAULT_FAILOVER_CODES = frozenset({408, 480, 500, 502, 503, 504})


class BillingMode(enum.IntEnum):
    """Who a CDR is billed to (VOS codes 0-3, this project's negative ones)."""

    PHONE = 0
    MAPPING_GATEWAY = 1
    BOUND_NUMBER = 2
    PHONE_CARD = 3
    NOT_BILLED = -1
    ILLEGAL = -2

    @property
    def label(self) -> str:
        return _BILLING_MODE_LABELS[self]


_BILLING_MODE_LABELS = {
    BillingMode.PHONE: "Phone account",
    BillingMode.MAPPING_GATEWAY: "Mapping gateway account",
    BillingMode.BOUND_NUMBER: "Bound number",
    BillingMode.PHONE_CARD: "Phone card",
    BillingMode.NOT_BILLED: "Not billed",
    BillingMode.ILLEGAL: "Illegal call",
}


# The modes the call core writes. VOS's bound numbers and phone cards have no counterpart here, and a call nobody
# pays for is recorded under its gateway's or phone's mode with nothing charged; the others are kept so the ingest
# still takes any record that carries them.
PRODUCED_BILLING_MODES = (BillingMode.PHONE, BillingMode.MAPPING_GATEWAY, BillingMode.ILLEGAL)


class EndDirection(enum.IntEnum):
    """Which side ended the call (VOS: 0 caller, 1 callee, 2 server)."""

    CALLER = 0
    CALLEE = 1
    SERVER = 2

    @property
    def label(self) -> str:
        return self.name.capitalize()


@dataclass(frozen=True)
class EndReasonInfo:
    code: str
    sip_status: int
    description: str


class EndReason(enum.Enum):
    """Named end reasons. Each screening step has its own, with the SIP answer it sends."""

    NORMAL_CLEARING = EndReasonInfo("normal_clearing", 200, "Call answered and ended normally")
    CALLER_CANCEL = EndReasonInfo("caller_cancel", 487, "Caller cancelled before answer")
    # 407: the challenge any phone's first INVITE gets, so a scanner cannot tell an extension from none.
    ILLEGAL_SOURCE = EndReasonInfo("illegal_source", 407, "Source is neither a mapping gateway nor a registered phone")
    SCANNER_DROPPED = EndReasonInfo("scanner_dropped", 0, "Known scanner User-Agent dropped without an answer")
    FLOOD_BANNED = EndReasonInfo("flood_banned", 0, "Source banned for flooding")
    AUTH_FAILED = EndReasonInfo("auth_failed", 403, "Digest authentication failed")
    ACCOUNT_LOCKED = EndReasonInfo("account_locked", 403, "Account is locked")
    ACCOUNT_MISSING = EndReasonInfo("account_missing", 403, "Gateway or phone has no usable account")
    CALLER_BLACKLISTED = EndReasonInfo("caller_blacklisted", 403, "Caller number is on a black list")
    CALLER_NOT_WHITELISTED = EndReasonInfo(
        "caller_not_whitelisted", 403, "Caller number is missing from the white list"
    )
    CALLEE_BLACKLISTED = EndReasonInfo("callee_blacklisted", 403, "Callee number is on a black list")
    CALLEE_NOT_WHITELISTED = EndReasonInfo(
        "callee_not_whitelisted", 403, "Callee number is missing from the white list"
    )
    DYNAMIC_BLACKLISTED = EndReasonInfo("dynamic_blacklisted", 403, "Number is on the dynamic blacklist")
    PREFIX_FORBIDDEN = EndReasonInfo("prefix_forbidden", 403, "Callee prefix is forbidden on this gateway")
    INVALID_CALLEE = EndReasonInfo("invalid_callee", 484, "Callee has characters outside digits and + * #")
    CALLER_NUMBER_REQUIRED = EndReasonInfo(
        "caller_number_required", 403, "The mapping gateway requires a caller number and none was sent"
    )
    MAPPING_CAPACITY = EndReasonInfo("mapping_capacity", 486, "Mapping gateway at its concurrent call capacity")
    ACCOUNT_CAPACITY = EndReasonInfo("account_capacity", 486, "Account at its concurrent call capacity")
    PHONE_CAPACITY = EndReasonInfo("phone_capacity", 486, "Phone at its line capacity")
    MAPPING_CPS = EndReasonInfo("mapping_cps", 503, "Mapping gateway over its calls-per-second limit")
    SWITCH_CPS = EndReasonInfo("switch_cps", 503, "Switch over SS_MAX_CPS")
    BALANCE_INSUFFICIENT = EndReasonInfo("balance_insufficient", 402, "Balance and credit cannot pay for the call")
    NO_RATE = EndReasonInfo("no_rate", 404, "No rate for the callee in the account's rate table")
    NO_ROUTE = EndReasonInfo("no_route", 404, "No routing gateway serves the callee")
    ROUTES_BUSY = EndReasonInfo("routes_busy", 503, "Every routing gateway is at capacity or CPS limit")
    VENDOR_FAILED = EndReasonInfo("vendor_failed", 503, "Every vendor tried failed")
    VENDOR_REJECTED = EndReasonInfo("vendor_rejected", 0, "Vendor gave a final answer that stops failover")
    VENDOR_TIMEOUT = EndReasonInfo("vendor_timeout", 408, "No vendor answered in SS_SIP_TIMEOUT_INVITE")
    MAX_DURATION = EndReasonInfo("max_duration", 200, "Conversation limit reached: the switch hung up")
    BALANCE_EXHAUSTED = EndReasonInfo("balance_exhausted", 200, "Balance ran out during the call: the switch hung up")
    CALLER_NO_ACK = EndReasonInfo(
        "caller_no_ack", 408, "The vendor answered but the caller never acknowledged it: the switch hung up"
    )
    KEEPALIVE_FAILED = EndReasonInfo(
        "keepalive_failed", 408, "A side stopped answering the switch's in-dialog keep-alives: the switch hung up"
    )
    SWITCH_RESTART = EndReasonInfo(
        "switch_restart", 0, "The call core restarted during the call: its dialog was lost, nothing charged"
    )
    INTERNAL_ERROR = EndReasonInfo("internal_error", 500, "The switch failed to process the call")
    LIVE_STATE_UNAVAILABLE = EndReasonInfo(
        "live_state_unavailable", 503, "Live state (Redis) did not answer and the account is prepaid"
    )
    VENDOR_CANCELLED = EndReasonInfo("vendor_cancelled", 487, "The attempt was cancelled")
    # Anti-fraud set-up rules (contract.fraud): the call that reaches a rule's critical level is refused
    # with its rule's reason (the calls after it by the dynamic blacklist entry it adds), and the live
    # calls matching that entry are ended with the same reason.
    FRAUD_MALICIOUS_CALLER = EndReasonInfo(
        "fraud_malicious_caller", 403, "Anti-fraud: the caller called this callee too often (malicious caller)"
    )
    FRAUD_CONCURRENT_CALLER = EndReasonInfo(
        "fraud_concurrent_caller", 403, "Anti-fraud: the caller number is on too many calls at once"
    )
    FRAUD_HIGH_RISK_RATE = EndReasonInfo(
        "fraud_high_risk_rate", 403, "Anti-fraud: too many calls a minute from the account to high-risk destinations"
    )
    FRAUD_SPEND_VELOCITY = EndReasonInfo(
        "fraud_spend_velocity", 403, "Anti-fraud: the account reserved vendor cost too fast for its usual spend"
    )
    FRAUD_NEW_DESTINATION = EndReasonInfo(
        "fraud_new_destination", 403, "Anti-fraud: too many calls from the account to a country new to it"
    )
    OPERATOR_DISCONNECT = EndReasonInfo("operator_disconnect", 200, "An operator ended the call from the portal or API")
    # Last: kemi's cut marks number the reasons in this order, and calls live across a restart of one process.
    MEDIA_TIMEOUT = EndReasonInfo(
        "media_timeout", 200, "No RTP through the media proxy for SS_MEDIA_TIMEOUT_SECONDS: the switch hung up"
    )

    @property
    def code(self) -> str:
        return self.value.code

    @property
    def sip_status(self) -> int:
        return self.value.sip_status

    @property
    def description(self) -> str:
        return self.value.description


END_REASONS_BY_CODE: dict[str, EndReason] = {r.code: r for r in EndReason}
