"""What ``decide`` asks the live state at call setup and what it answers: plain types, no I/O.

``callcore.live`` answers them against Redis; ``callcore.decide`` builds and reads
them without importing the Redis client.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal

__all__ = ["FAIL_POLICY", "FraudCheck", "FraudRuleCheck", "LiveStatus", "RouteLimit", "SetupRequest", "SetupResult"]

FAIL_POLICY = {
    "capacity": "open",
    "cps": "open",
    "dynamic_blacklist": "open",
    "balance_anti_overdraft": "closed",
    "balance_postpaid": "open",
}


class LiveStatus(enum.IntEnum):
    OK = 0
    MAPPING_CAPACITY = 1
    ACCOUNT_CAPACITY = 2
    PHONE_CAPACITY = 3
    MAPPING_CPS = 4
    SWITCH_CPS = 5
    CALLER_DYNAMIC_BLACKLISTED = 6
    CALLEE_DYNAMIC_BLACKLISTED = 7
    BALANCE_INSUFFICIENT = 8
    ROUTES_BUSY = 9
    UNAVAILABLE = 10  # Redis did not answer: the caller applies FAIL_POLICY
    ACCOUNT_DYNAMIC_BLACKLISTED = 11  # the account (or its high-risk calls) is on the dynamic blacklist
    # A set-up fraud rule reached its critical level with this call (FraudCheck.rules' order in SETUP_RULES).
    FRAUD_MALICIOUS_CALLER = 12
    FRAUD_CONCURRENT_CALLER = 13
    FRAUD_HIGH_RISK_RATE = 14
    FRAUD_SPEND_VELOCITY = 15
    FRAUD_NEW_DESTINATION = 16


@dataclass(frozen=True)
class FraudRuleCheck:
    """One set-up fraud rule as the live state counts it (contract.fraud); levels 0 = none."""

    rule: str  # a contract.fraud.FraudRule value among SETUP_RULES
    warning: int
    critical: int
    window_ms: int  # 0 for the concurrent caller (counted on live calls)
    expire_ms: int  # how long a critical breach blocks its subject
    report_only: bool


@dataclass
class FraudCheck:
    """What the set-up fraud rules need of a call; the live state counts it in the rules' windows.

    ``caller`` and ``callee`` are empty where a number may not be judged: not a number (anonymous), or on a
    white list of the call's gateway (a white list always wins).
    """

    node: str
    caller: str
    callee: str
    high_risk: bool  # a high-risk destination for this account (not exempt)
    country: str  # the callee's country calling code, '' when unknown
    spend_units: int  # vendor cost of one minute of the first route, money units
    spend_limits: tuple[int, int]  # (warning, critical) percent of the account's average daily vendor cost
    spend_floor: int  # money units in the window below which spend velocity never trips
    rules: list[FraudRuleCheck] = field(default_factory=list)
    # Where a block goes: the mapping gateway's own list (standalone run mode and flag), else the central one.
    scope_gateway: int | None = None


@dataclass(frozen=True)
class RouteLimit:
    """A candidate routing gateway's live limits."""

    gateway_id: int
    capacity: int
    cps_limit: int


@dataclass
class SetupRequest:
    call_id: str
    mapping_gateway_id: int | None
    account_id: int
    # Set when the gateway keeps a standalone dynamic blacklist, checked besides the central one.
    dynamic_blacklist_gateway: int | None = None
    phone_id: int | None = None
    mapping_capacity: int = 0
    account_capacity: int = 0
    phone_capacity: int = 0
    mapping_cps: int = 0
    switch_cps: int = 0
    caller: str = ""
    callee: str = ""
    check_balance: bool = False
    credit_limit: Decimal = Decimal("0")
    snapshot_balance: Decimal = Decimal("0")
    reservation: Decimal = Decimal("0")
    # Refuse (balance insufficient) below this even when the reservation is covered: one first period.
    minimum_available: Decimal = Decimal("0")
    expiry_ms: int = 0
    routes: list[RouteLimit] = field(default_factory=list)
    registry: dict = field(default_factory=dict)
    fraud: FraudCheck | None = None  # None: no rule enabled


@dataclass(frozen=True)
class SetupResult:
    status: LiveStatus
    available: Decimal | None  # balance + credit - other calls' reservations, when checked
    route_index: int  # index into SetupRequest.routes of the route whose slot was taken, -1 if none
