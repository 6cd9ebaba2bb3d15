"""System parameters: name, type, default, range and description, declared once for both sides."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Parameter",
    "ROUTE_STATS_MAX_MINUTES",
    "PARAMETERS",
    "PARAMETERS_BY_NAME",
    "default_parameters",
]


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


# The longest ASR window an operator may set: the CDR ingest keeps its per-minute counts this long.
ROUTE_STATS_MAX_MINUTES = 1440

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
        "Write a CDR when the switch itself ends a call that never connected (INVITE timeout, all vendors "
        "failed); an answered call is always recorded and charged, whatever this says.",
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
    Parameter(
        "SS_ROUTE_ASR_WINDOW_MINUTES",
        int,
        60,
        "Minutes of calls each routing gateway's ASR is measured over, for the Best ASR route policy.",
        min_value=5,
        max_value=ROUTE_STATS_MAX_MINUTES,
    ),
    Parameter(
        "SS_ROUTE_ASR_MIN_ATTEMPTS",
        int,
        20,
        "Attempts in the window before a routing gateway is ranked by its ASR; one with fewer is tried first, "
        "so it gets the calls it is judged on.",
        min_value=1,
        max_value=1_000_000,
    ),
)

PARAMETERS_BY_NAME: dict[str, Parameter] = {p.name: p for p in PARAMETERS}
for _p in PARAMETERS:
    for _alias in _p.aliases:
        PARAMETERS_BY_NAME[_alias] = _p


def default_parameters() -> dict[str, int | bool]:
    return {p.name: p.default for p in PARAMETERS}
