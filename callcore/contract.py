"""The contract between the portal and the call core.

This is the only module both sides import. It declares:

* the system parameters (name, type, default, range, description), once;
* the codes operators know from VOS3000: billing modes, end directions;
* the named end reasons with their SIP status;
* the snapshot schema the portal publishes and the call core loads;
* the CDR record the call core appends to the Redis stream.

It must stay importable without Django.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# ---------------------------------------------------------------------------
# System parameters


@dataclass(frozen=True)
class Parameter:
    """One switch-wide setting; the database stores only values, never the shape."""

    name: str
    type: type  # int or bool
    default: int | bool
    description: str
    min_value: int | None = None
    max_value: int | None = None
    aliases: tuple[str, ...] = ()

    def parse(self, raw: object) -> int | bool:
        """Turn a stored or typed value into this parameter's type, or raise ValueError.

        The message names the parameter and what was expected, because it is
        shown to the operator as a form error.
        """
        if self.type is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{self.name} must be 0 or 1, got {raw!r}")
        if isinstance(raw, bool):
            raise ValueError(f"{self.name} must be an integer, got {raw!r}")
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise ValueError(f"{self.name} must be an integer, got {raw!r}") from None
        if self.min_value is not None and value < self.min_value:
            raise ValueError(f"{self.name} must be at least {self.min_value}, got {value}")
        if self.max_value is not None and value > self.max_value:
            raise ValueError(f"{self.name} must be at most {self.max_value}, got {value}")
        return value

    def format(self, value: int | bool) -> str:
        return str(int(value))


PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "SERVER_BILLING_RECORD_ILLEGAL_CALL",
        bool,
        True,
        "Write a CDR (billing mode illegal) for every INVITE from a source that is "
        "neither a mapping gateway nor a registered phone.",
    ),
    Parameter(
        "SERVER_BILLING_RECORD_ZERO_HOLD_TIME",
        bool,
        True,
        "Write CDRs for calls that never connected (hold time 0); turn off during floods.",
    ),
    Parameter(
        "SERVER_BILLING_RECORD_SERVER_HANG_UP",
        bool,
        True,
        "Write a CDR when the switch itself ends the call (balance exhausted, conversation limit).",
    ),
    Parameter(
        "SERVER_BILLING_FEE_PRECISION",
        int,
        2,
        "Decimal places (0-4) that fees are rounded to, half-up.",
        min_value=0,
        max_value=4,
        aliases=("SERVER_BILLING_FEE_PRECISTION",),
    ),
    Parameter(
        "SERVER_BILLING_HOLD_TIME_PRECISION",
        int,
        50,
        "A millisecond remainder at or above this rounds the hold time up to the next second.",
        min_value=0,
        max_value=999,
    ),
    Parameter(
        "SERVER_BILLING_FREE_TIME",
        int,
        0,
        "Seconds subtracted from the hold time before rating.",
        min_value=0,
        max_value=86400,
    ),
    Parameter(
        "SERVER_BILLING_PREVENT_OVERDRAFT_ADVANCE_TIME",
        int,
        60,
        "Seconds of talk time reserved per live call, so concurrent calls cannot overdraw an account.",
        min_value=0,
        max_value=86400,
    ),
    Parameter(
        "SERVER_BILLING_GATEWAY_ROUTE_PREFIX",
        int,
        0,
        "0: rate the callee as received; 1: rate the callee as sent to the routing gateway.",
        min_value=0,
        max_value=1,
    ),
    Parameter(
        "SS_GATEWAY_SWITCH_LIMIT",
        int,
        0,
        "Most vendors tried per call (0 = no limit).",
        min_value=0,
        max_value=100,
    ),
    Parameter(
        "SS_SIP_STOP_SWITCH_AFTER_SDP",
        bool,
        True,
        "Stop failing over once a vendor sent early media (183 with SDP).",
    ),
    Parameter(
        "SS_SIP_TIMEOUT_INVITE",
        int,
        8,
        "Seconds without a provisional answer before the vendor counts as failed (408).",
        min_value=1,
        max_value=300,
    ),
    Parameter(
        "SS_MAX_CPS",
        int,
        0,
        "Switch-wide call attempts per second (0 = no limit).",
        min_value=0,
        max_value=100000,
    ),
    Parameter(
        "SS_MAX_LOGIN_FAILED",
        int,
        5,
        "Failed portal logins before lockout.",
        min_value=1,
        max_value=100,
    ),
    Parameter(
        "SS_LOGIN_LOCK_TIME",
        int,
        30,
        "Lockout minutes after too many failed portal logins.",
        min_value=1,
        max_value=10080,
    ),
    Parameter(
        "SS_CLIENT_LOW_BALANCE_ALARM",
        int,
        0,
        "Balance under which an account's alarm e-mail goes out (an account may override it).",
        min_value=0,
        max_value=10**9,
    ),
    Parameter(
        "SS_ENABLE_CALL_LIMIT",
        bool,
        True,
        "Enforce per-account and per-gateway conversation limits.",
    ),
)

PARAMETERS_BY_NAME: dict[str, Parameter] = {p.name: p for p in PARAMETERS}
for _p in PARAMETERS:
    for _alias in _p.aliases:
        PARAMETERS_BY_NAME[_alias] = _p


def default_parameters() -> dict[str, int | bool]:
    return {p.name: p.default for p in PARAMETERS}


# ---------------------------------------------------------------------------
# Codes operators know from VOS3000


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
    ILLEGAL_SOURCE = EndReasonInfo("illegal_source", 403, "Source is neither a mapping gateway nor a registered phone")
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
    INTERNAL_ERROR = EndReasonInfo("internal_error", 500, "The switch failed to process the call")

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
