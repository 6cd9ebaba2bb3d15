"""System parameters: name, type, default, range and description, declared once for both sides."""

from __future__ import annotations

from dataclasses import dataclass

from .fraud import RULE_PARAMS, FraudRule

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
        "SS_PAYMENT_APPROVAL_AMOUNT",
        int,
        1000,
        "Payments above this amount need the large-payment permission (0: every payment needs it).",
        min_value=0,
        max_value=10**9,
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
    # Source-IP bans (contract.bans): every node applies them, and the firewall export drops their packets.
    Parameter(
        "SS_BAN_SECONDS",
        int,
        300,
        "Seconds a source is banned for its first offence in a day; each further one doubles it.",
        min_value=1,
        max_value=86400,
    ),
    Parameter(
        "SS_BAN_MAX_SECONDS",
        int,
        86400,
        "The longest ban a repeat offender gets, however often it comes back.",
        min_value=1,
        max_value=30 * 86400,
    ),
    Parameter(
        "SS_BAN_WINDOW_SECONDS",
        int,
        60,
        "Seconds over which failed digest answers and illegal calls are counted against their limits.",
        min_value=1,
        max_value=86400,
    ),
    Parameter(
        "SS_BAN_AUTH_FAILURES_PER_IP",
        int,
        5,
        "Wrong digest answers (REGISTER or INVITE) from one source in the window before it is banned (0 = never).",
        min_value=0,
        max_value=10_000,
    ),
    Parameter(
        "SS_BAN_AUTH_FAILURES_PER_USER",
        int,
        10,
        "Wrong digest answers for one username from any sources in the window, after which each source that "
        "answers wrong for it again is banned (0 = never).",
        min_value=0,
        max_value=10_000,
    ),
    Parameter(
        "SS_BAN_ILLEGAL_CALLS_PER_IP",
        int,
        50,
        "INVITEs from one source that is neither a mapping gateway nor a phone in the window before it is banned "
        "(0 = never).",
        min_value=0,
        max_value=1_000_000,
    ),
    Parameter(
        "SS_BAN_EXEMPT_GATEWAYS",
        bool,
        True,
        "Never ban the mapping gateways' addresses (the operator's own networks are set by SS_BAN_ALLOW_NETWORKS "
        "on each call-core node).",
    ),
)


def _fraud_rule(
    rule: str,
    what: str,
    unit: str,
    *,
    warning: int,
    critical: int,
    window: int | None,
    expire: int,
    max_level: int = 1_000_000,
) -> tuple[Parameter, ...]:
    """One anti-fraud rule's switches and levels, named by contract.fraud.RULE_PARAMS."""
    names = RULE_PARAMS[FraudRule(rule)]
    params = [
        Parameter(names.enabled, bool, True, f"Evaluate the {what} rule."),
        Parameter(
            names.report_only,
            bool,
            False,
            f"The {what} rule counts and raises alarms but never blocks (run a new setting this way first).",
        ),
        Parameter(
            names.warning,
            int,
            warning,
            f"{what.capitalize()}: {unit} at which a warning alarm is raised (0 = none).",
            min_value=0,
            max_value=max_level,
        ),
        Parameter(
            names.critical,
            int,
            critical,
            f"{what.capitalize()}: {unit} at which the subject is added to the dynamic blacklist and its live "
            f"calls are ended (0 = never).",
            min_value=0,
            max_value=max_level,
        ),
    ]
    if names.window is not None:
        params.append(
            Parameter(
                names.window,
                int,
                window,
                f"{what.capitalize()}: seconds of the sliding window the rule counts over.",
                min_value=1,
                max_value=7 * 86400,
            )
        )
    params.append(
        Parameter(
            names.expire,
            int,
            expire,
            f"{what.capitalize()}: seconds a dynamic blacklist entry added by the rule blocks (0 = until an admin "
            f"releases it).",
            min_value=0,
            max_value=365 * 86400,
        )
    )
    return tuple(params)


# Anti-fraud defaults: each critical level stops an attack within its first few calls (under one currency
# unit lost with the high-risk and malicious-caller rules, which act at set-up), while sitting well above what
# one legitimate caller, callee or account does in the same window.
PARAMETERS += (
    Parameter(
        "SS_BLACK_LIST_DYNAMIC_RUN_MODE",
        int,
        0,
        "0: central, one dynamic blacklist for every gateway; 1: standalone, a mapping gateway with the standalone "
        "flag keeps its own list (entries its calls trip block only its calls), the others share the central one.",
        min_value=0,
        max_value=1,
    ),
    # One caller calling one callee again and again (VOS3000: 6 calls in 600 s).
    *_fraud_rule(
        "malicious_caller", "malicious caller", "calls from one caller to one callee in the window",
        warning=4, critical=6, window=600, expire=3600,
    ),
    # One caller number on many calls at once (VOS3000's concurrent limit); counted on live calls, no window.
    # Not DOMAIN.md's 3/5: a customer's PBX presents its main number on every outgoing call, so a trunk
    # carries dozens at once from one caller; 30 still stops a hijacked phone long before its line count.
    *_fraud_rule(
        "concurrent_caller", "concurrent caller", "live calls of one caller number",
        warning=10, critical=30, window=None, expire=3600,
    ),
    # An account pumping calls to high-risk destinations (IRSF): 5 a minute is a burst no retail or wholesale
    # customer of premium or satellite numbers sends; the block is on the account's high-risk calls only.
    *_fraud_rule(
        "high_risk_rate", "high-risk destination rate", "calls from one account to high-risk destinations",
        warning=3, critical=5, window=60, expire=3600,
    ),
    Parameter(
        "SS_FRAUD_HIGH_RISK_COST_PER_MINUTE",
        int,
        10000,
        "A destination whose vendor cost per minute is at or above this (money units, 10000 = 1.00) counts as "
        "high risk, listed or not (0 = only the high-risk list groups).",
        min_value=0,
        max_value=10**9,
    ),
    # Money reserved at set-up by one account, against its own average daily vendor cost: 5% of a day in
    # 5 minutes is 14 times its average rate; the floor is the limit of an account without history.
    *_fraud_rule(
        "spend_velocity", "spend velocity (reserved)",
        "percent of the account's average daily vendor cost reserved in the window",
        warning=2, critical=5, window=300, expire=3600, max_level=100_000,
    ),
    Parameter(
        "SS_FRAUD_SPEND_VELOCITY_FLOOR",
        int,
        # 100.00: what a new customer's ordinary traffic reserves in 5 minutes (a minute of vendor cost per
        # call) stays under it; a pump of dear calls crosses it in minutes, and the high-risk rule sooner.
        1000000,
        "Spend velocity (reserved): money units (10000 = 1.00) in the window below which the rule never trips, "
        "whatever the account's history; the limit of an account without one.",
        min_value=0,
        max_value=10**12,
    ),
    # The first calls of an account to a country it never called: counted for that country's first window,
    # once the account has a history (a window after its first call). An alarm only by default: a wholesale
    # customer opens new countries as a matter of course, and a block here is on the whole account; the
    # high-risk and spend rules stop the pumps that go to new countries.
    *_fraud_rule(
        "new_destination", "new destination", "calls from one account to a country new to it",
        warning=10, critical=0, window=3600, expire=3600,
    ),
    # A callee that never answers: test numbers, Wangiri (VOS3000: 10 unanswered calls in 3600 s).
    *_fraud_rule(
        "no_answer_callee", "no-answer callee", "unanswered calls to one callee in the window",
        warning=6, critical=10, window=3600, expire=3600,
    ),
    # Connected calls under SS_FRAUD_SHORT_CALL_BURST_SECONDS from one account to one prefix: test calls
    # before a pump, and call-back bait.
    *_fraud_rule(
        "short_call_burst", "short-call burst", "short connected calls from one account to one prefix",
        warning=5, critical=20, window=600, expire=3600,
    ),
    Parameter(
        "SS_FRAUD_SHORT_CALL_BURST_SECONDS",
        int,
        10,
        "Short-call burst: a connected call shorter than this many seconds counts.",
        min_value=1,
        max_value=3600,
    ),
    Parameter(
        "SS_FRAUD_SHORT_CALL_BURST_PREFIX_DIGITS",
        int,
        6,
        "Short-call burst: calls are counted per account and callee prefix of this many digits.",
        min_value=1,
        max_value=32,
    ),
    # Vendor cost actually charged (rated CDRs) by one account in an hour, against its average daily cost.
    *_fraud_rule(
        "spend_velocity_actual", "spend velocity (actual)",
        "percent of the account's average daily vendor cost charged in the window",
        warning=10, critical=25, window=3600, expire=3600, max_level=100_000,
    ),
    Parameter(
        "SS_FRAUD_SPEND_VELOCITY_ACTUAL_FLOOR",
        int,
        1000000,
        "Spend velocity (actual): money units (10000 = 1.00) in the window below which the rule never trips, "
        "whatever the account's history; the limit of an account without one.",
        min_value=0,
        max_value=10**12,
    ),
    # One call's length in seconds; the conversation limit cuts a call, so critical is off by default.
    *_fraud_rule(
        "long_call", "long call", "seconds of one call's talk time",
        warning=7200, critical=0, window=None, expire=3600, max_level=7 * 86400,
    ),
    # Alarms (security.alarms): the e-mail throttle and the detectors' thresholds.
    Parameter(
        "SS_ALARM_EMAIL_THROTTLE",
        int,
        900,
        "Seconds between two e-mails about one alarm; the repeats seen meanwhile go out as a digest.",
        min_value=60,
        max_value=7 * 86400,
    ),
    Parameter(
        "SS_ALARM_ILLEGAL_CALL_LIMIT",
        int,
        20,
        "Illegal calls from one source IP within SS_ALARM_ILLEGAL_CALL_WINDOW that raise its alarm.",
        min_value=1,
        max_value=1_000_000,
    ),
    Parameter(
        "SS_ALARM_ILLEGAL_CALL_WINDOW",
        int,
        300,
        "Seconds of illegal calls counted per source IP for its alarm.",
        min_value=10,
        max_value=86400,
    ),
    Parameter(
        "SS_ALARM_GATEWAY_MIN_CALLS",
        int,
        30,
        "Attempts (for the ACD, answered calls) a routing gateway needs in the last hour and in its baseline "
        "before its ASR or ACD is judged, so quiet gateways do not alarm.",
        min_value=1,
        max_value=1_000_000,
    ),
    Parameter(
        "SS_ALARM_ASR_DROP_PERCENT",
        int,
        50,
        "A routing gateway alarms when its last hour's ASR is at or below this percent of its baseline (the same "
        "hour over the past week).",
        min_value=1,
        max_value=99,
    ),
    Parameter(
        "SS_ALARM_ACD_DROP_PERCENT",
        int,
        50,
        "A routing gateway alarms when its last hour's ACD is at or below this percent of its baseline.",
        min_value=1,
        max_value=99,
    ),
    Parameter(
        "SS_ALARM_TRAFFIC_SPIKE_FACTOR",
        int,
        3,
        "An account alarms when its last hour's calls reach this many times its average for that hour over the "
        "past week.",
        min_value=2,
        max_value=1000,
    ),
    Parameter(
        "SS_ALARM_TRAFFIC_SPIKE_MIN_CALLS",
        int,
        100,
        "Calls in the last hour below which an account's traffic never counts as a spike.",
        min_value=1,
        max_value=10_000_000,
    ),
    Parameter(
        "SS_ALARM_INGEST_LAG",
        int,
        120,
        "Seconds the oldest CDR may wait for the ingest before the ingest-lag alarm (ten times this: critical).",
        min_value=10,
        max_value=86400,
    ),
    Parameter(
        "SS_ALARM_NODE_SILENT",
        int,
        20,
        "Seconds without a heartbeat before a call-core node's alarm; under the minute after which the worker "
        "releases a silent node's calls and forgets its heartbeat.",
        min_value=6,
        max_value=50,
    ),
    Parameter(
        "SS_ALARM_EVENT_CLOSE_AFTER",
        int,
        3600,
        "Seconds after its last repeat at which a fraud rule's alarm closes by itself.",
        min_value=60,
        max_value=30 * 86400,
    ),
    Parameter(
        "SS_MEDIA_TIMEOUT_SECONDS",
        int,
        0,
        "Seconds without RTP in either direction after which an answered call through the media proxy is ended "
        "(BYE both ways, end reason media_timeout); 0 = off. Calls whose media flows directly are not watched.",
        min_value=0,
        max_value=3600,
    ),
)  # fmt: skip

PARAMETERS_BY_NAME: dict[str, Parameter] = {p.name: p for p in PARAMETERS}
for _p in PARAMETERS:
    for _alias in _p.aliases:
        PARAMETERS_BY_NAME[_alias] = _p


def default_parameters() -> dict[str, int | bool]:
    return {p.name: p.default for p in PARAMETERS}
