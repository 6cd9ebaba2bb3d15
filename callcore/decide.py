"""What to do with a call: a pure function of the call's facts, the snapshot and the live state.

``decide(facts, snapshot, live)`` is the whole decision, and what the tests
drive row by row. On the hot path the KEMI adapter runs it in its two halves
around the single Redis round trip:

1. ``plan_call(facts, snapshot)`` needs the snapshot only (and, for the Best
   ASR route policy, the vendors' recent ASR the worker publishes: ``route_stats``):
   it finds the source (mapping gateway by IP, or the phone that passed digest
   authentication), screens the call (account, static lists, prefixes),
   rewrites the numbers, rates the call and lists the vendor routes in order.
   It returns either a final ``Decision`` (a refusal) or a ``Plan``.
2. ``live_request(plan, ...)`` says which counters the plan needs; the live
   state answers them atomically (``callcore.live``).
3. ``conclude(plan, live)`` turns that answer into the ``Decision``: refused
   for capacity, CPS, dynamic blacklist or balance, or routed with a maximum
   duration.

At the call's end, ``end_of_call(EndFacts)`` turns the dialog's event and what
the adapter read about it into the ``EndDecision``: end reason, direction, SIP
status, whether a CDR is written and whether the answer is charged.
``should_fail_over`` says whether a vendor's failure moves on to the next one.

Nothing here touches the network, the clock or Kamailio; time comes in the facts.
"""

from __future__ import annotations

import enum
import re
import zlib
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal

import msgspec

from callcore import contract
from callcore.contract import DEFAULT_FAILOVER_CODES, BillingMode, EndDirection, EndReason
from callcore.contract.trace import LimitSource, Skip, encode_trace
from callcore.setup_types import FraudCheck, FraudRuleCheck, LiveStatus, RouteLimit, SetupRequest, SetupResult

# Calls with no conversation limit still end some day: a crashed node's
# slots expire after this, and so does a forgotten dialog.
DEFAULT_MAX_DURATION_S = 7200

# Lower-case substrings of User-Agents that only attack tools send.
SCANNER_USER_AGENTS = (
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "vaxsipuseragent",
    "sip-scan",
    "sipsak",
    "sundayddr",
    "iwar",
    "sivus",
    "smap",
    "pplsip",
    "vaxasterisk",
)
# One scan of the User-Agent for all of them: every request is checked.
_SCANNER_PATTERN = re.compile("|".join(map(re.escape, SCANNER_USER_AGENTS)))


class Action(enum.Enum):
    ROUTE = "route"  # send to the vendors in ``routes``
    REJECT = "reject"  # answer ``sip_status`` and end
    DROP = "drop"  # say nothing (scanners)
    CHALLENGE = "challenge"  # a phone's INVITE without credentials: 407


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the adapter read from the initial INVITE."""

    call_id: str
    source_ip: str
    source_port: int
    caller: str
    callee: str
    now_ms: int
    user_agent: str = ""
    # Set by the adapter once digest authentication of a phone succeeded.
    phone_username: str | None = None
    # The From user claims to be a phone but sent no credentials yet.
    claims_phone: bool = False
    # The adapter's count of the calls this process planned: the turn of a round-robin caller number pool.
    sequence: int = 0
    # The X-Test-Gateway header's value: honoured only from the test-call phone (plan_call).
    test_gateway: str = ""


@dataclass(frozen=True, slots=True)
class RouteAttempt:
    """One vendor to try, with the numbers as that vendor will see them."""

    gateway_id: int
    gateway_name: str
    host: str
    port: int
    transport: str
    caller_out: str
    callee_out: str
    capacity: int
    cps_limit: int
    failover_codes: frozenset[int]
    conversation_limit: int
    vendor_account_id: int | None
    customer_rate: contract.Rate
    vendor_rate: contract.Rate | None

    @property
    def limit(self) -> RouteLimit:
        return RouteLimit(self.gateway_id, self.capacity, self.cps_limit)


@dataclass(slots=True)
class Plan:
    """Everything decided from the snapshot alone, waiting for the live state's answer."""

    facts: CallFacts
    snapshot_version: int
    billing_mode: BillingMode
    account: contract.Account
    mapping_gateway: contract.MappingGateway | None
    phone: contract.Phone | None
    caller: str  # after the mapping gateway's transforms
    callee: str
    routes: list[RouteAttempt]
    parameters: dict
    check_balance: bool
    reservation: Decimal
    default_max_duration_s: int = DEFAULT_MAX_DURATION_S
    # On a white list of the call's gateway: the anti-fraud rules never block a white-listed number.
    caller_whitelisted: bool = False
    callee_whitelisted: bool = False
    # The candidates ``_routes`` skipped, (gateway, Skip) in the order met, when the caller asked for them.
    trace: list | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: EndReason | None
    billing_mode: BillingMode
    record_cdr: bool
    plan: Plan | None = None
    routes: tuple[RouteAttempt, ...] = ()
    max_duration_s: int = 0
    available: Decimal | None = None
    slot_taken: bool = False  # the first route's slot was taken by the live state
    mapping_gateway: contract.MappingGateway | None = None
    account: contract.Account | None = None
    extra: dict = field(default_factory=dict)

    @property
    def sip_status(self) -> int:
        return self.reason.sip_status if self.reason else 0


# ---------------------------------------------------------------------------
# Numbers


def transform(number: str, rules) -> str:
    """Apply the first matching rule (rules come in priority order); no match leaves the number as it is."""
    for rule in rules:
        if not number.startswith(rule.match_prefix):
            continue
        if len(number) < rule.min_length or (rule.max_length and len(number) > rule.max_length):
            continue
        return rule.prepend + number[rule.strip_digits :]
    return number


def pick_from_pool(pool: contract.CallerNumberPool, call_id: str, sequence: int = 0) -> str:
    """A pool number: "random" by a hash of the call id (the same call always gets the same number),
    "round_robin" the next in turn by ``sequence``.

    The turn is each call-core process's own, not a counter shared in Redis that every call would pay a
    round trip for: with N processes every number's share stays within N calls of the others'.
    """
    if pool.mode == "round_robin":
        return pool.numbers[sequence % len(pool.numbers)]
    return pool.numbers[zlib.crc32(call_id.encode()) % len(pool.numbers)]


def is_scanner(user_agent: str) -> bool:
    return _SCANNER_PATTERN.search(user_agent.lower()) is not None


def _digits(number: str) -> str:
    # Carriers send +E.164 and plain E.164 alike; lists and rates hold digits.
    return number[1:] if number.startswith("+") else number


# What a number may hold: a callee with anything else gets 484 before it reaches routing, rates or a vendor.
_DIALABLE = frozenset("0123456789+*#")
# What the caller is recorded and sent as when the From has no user at all.
ANONYMOUS_CALLER = "anonymous"


def is_number(text: str) -> bool:
    """Digits and + * # only, and not empty."""
    return bool(text) and _DIALABLE.issuperset(text)


# ---------------------------------------------------------------------------
# Money


def cost(rate: contract.Rate, seconds: int) -> Decimal:
    """Unrounded cost of ``seconds`` of talk at ``rate`` (the worker does the authoritative rating)."""
    if seconds <= 0:
        return Decimal(0)
    billed = contract.fee_time(seconds, rate.first_period, rate.next_period)
    return Decimal(rate.connect_fee) + Decimal(rate.price_per_minute) * billed / 60


def affordable_seconds(rate: contract.Rate, available: Decimal) -> int | None:
    """Most whole seconds of talk ``available`` money pays for at ``rate``; None = unlimited (free rate)."""
    price = Decimal(rate.price_per_minute)
    budget = available - Decimal(rate.connect_fee)
    if price <= 0:
        return None if budget >= 0 else 0
    # Compared in money x 60 seconds, so every step is an exact product: dividing by
    # 60 first rounds (0.1 / 60 has no end) and lost a whole period at exact boundaries.
    budget60 = budget * 60
    first = price * rate.first_period
    if budget60 < first:
        return 0
    # Whole next periods after the first that the rest of the budget covers (// is exact).
    periods = int((budget60 - first) // (price * rate.next_period))
    return rate.first_period + periods * rate.next_period


def reservation(rate: contract.Rate, advance_seconds: int) -> Decimal:
    """Money held while the call lasts so concurrent calls cannot overdraw (rounded up to 4 places)."""
    return cost(rate, advance_seconds).quantize(Decimal("0.0001"), rounding=ROUND_CEILING)


def grant_cost(rate, seconds: int, fee_precision: int = 2) -> Decimal:
    """What an anti-overdraft call holds to talk ``seconds`` from its answer: never less than rating charges.

    Rating rounds half-up to the fee's places and takes free time off; a grant rounds up and takes nothing
    off, and always counts the connect fee. ``rate`` is a contract.Rate or a contract.GrantRate.
    """
    places = Decimal(1).scaleb(-min(max(fee_precision, 0), contract.MONEY_PLACES))
    return cost(rate, max(seconds, 1)).quantize(places, rounding=ROUND_CEILING)


def grant_seconds(params) -> int:
    """Each grant's length: SERVER_BILLING_PREVENT_OVERDRAFT_ADVANCE_TIME, at least a second to move on."""
    return max(1, int(params["SERVER_BILLING_PREVENT_OVERDRAFT_ADVANCE_TIME"]))


# ---------------------------------------------------------------------------
# The decision


def _refuse(reason: EndReason, billing_mode: BillingMode, params, **kw) -> Decision:
    return Decision(
        Action.REJECT,
        reason,
        billing_mode,
        record_cdr=bool(params["SERVER_BILLING_RECORD_ZERO_HOLD_TIME"]),
        **kw,
    )


def _screen_lists(group_ids, number: str, snapshot, black: EndReason, white: EndReason) -> EndReason | None:
    for group_id in group_ids:
        group = snapshot.list_group(group_id)
        if group is None:
            continue
        hit = group.matches(number)
        if group.kind == "black" and hit:
            return black
        if group.kind == "white" and not hit:
            return white
    return None


def _white_listed(group_ids, number: str, snapshot) -> bool:
    return any((g := snapshot.list_group(i)) is not None and g.kind == "white" and g.matches(number) for i in group_ids)


def _in_prefixes(number: str, prefixes) -> bool:
    return any(number.startswith(p) for p in prefixes)


def plan_call(
    facts: CallFacts,
    snapshot,
    default_max_duration_s: int = DEFAULT_MAX_DURATION_S,
    route_stats: contract.RouteStats | None = None,
    trace: list | None = None,
) -> Plan | Decision:
    """Identify, screen, transform, rate and route from the snapshot alone (and ``route_stats``, when given).

    ``trace``: a list to receive each candidate vendor skipped, as (gateway, Skip) (``_routes``).
    """
    params = snapshot.parameters
    if is_scanner(facts.user_agent):
        return Decision(Action.DROP, EndReason.SCANNER_DROPPED, BillingMode.ILLEGAL, record_cdr=False)

    mapping_gateway = snapshot.mapping_gateway_for(facts.source_ip, facts.source_port)
    phone = None
    if mapping_gateway is None and facts.phone_username is not None:
        phone = snapshot.phone(facts.phone_username)
    if mapping_gateway is None and phone is None:
        if facts.claims_phone:
            return Decision(Action.CHALLENGE, None, BillingMode.ILLEGAL, record_cdr=False)
        return Decision(
            Action.REJECT,
            EndReason.ILLEGAL_SOURCE,
            BillingMode.ILLEGAL,
            record_cdr=bool(params["SERVER_BILLING_RECORD_ILLEGAL_CALL"]),
        )

    billing_mode = BillingMode.MAPPING_GATEWAY if mapping_gateway is not None else BillingMode.PHONE
    account_id = mapping_gateway.account_id if mapping_gateway is not None else phone.account_id
    account = snapshot.accounts.get(account_id)
    known = {"mapping_gateway": mapping_gateway, "account": account}
    if account is None or account.account_type != "customer":
        return _refuse(EndReason.ACCOUNT_MISSING, billing_mode, params, **known)
    if account.locked:
        return _refuse(EndReason.ACCOUNT_LOCKED, billing_mode, params, **known)

    if not is_number(facts.callee):
        return _refuse(EndReason.INVALID_CALLEE, billing_mode, params, **known)
    # A caller that is not a number (anonymous, withheld) is connected as sent unless its gateway requires one.
    caller_is_number = is_number(facts.caller)
    if not caller_is_number and mapping_gateway is not None and mapping_gateway.require_caller_number:
        return _refuse(EndReason.CALLER_NUMBER_REQUIRED, billing_mode, params, **known)
    caller = _digits(facts.caller) if caller_is_number else (facts.caller or ANONYMOUS_CALLER)
    callee = _digits(facts.callee)
    if mapping_gateway is not None:
        reason = _screen_lists(
            mapping_gateway.caller_list_group_ids,
            caller,
            snapshot,
            EndReason.CALLER_BLACKLISTED,
            EndReason.CALLER_NOT_WHITELISTED,
        ) or _screen_lists(
            mapping_gateway.callee_list_group_ids,
            callee,
            snapshot,
            EndReason.CALLEE_BLACKLISTED,
            EndReason.CALLEE_NOT_WHITELISTED,
        )
        if reason is not None:
            return _refuse(reason, billing_mode, params, **known)
        white = (
            _white_listed(mapping_gateway.caller_list_group_ids, caller, snapshot),
            _white_listed(mapping_gateway.callee_list_group_ids, callee, snapshot),
        )
        if _in_prefixes(callee, mapping_gateway.prefix_forbid) or (
            mapping_gateway.prefix_allow and not _in_prefixes(callee, mapping_gateway.prefix_allow)
        ):
            return _refuse(EndReason.PREFIX_FORBIDDEN, billing_mode, params, **known)
        if caller_is_number:
            caller = transform(caller, mapping_gateway.caller_transforms)
        callee = transform(callee, mapping_gateway.callee_transforms)

    else:
        white = (False, False)
    if account.rate_table_id is None:
        return _refuse(EndReason.NO_RATE, billing_mode, params, **known)
    # An operator's test call tries the one vendor it names, and is refused rather than sent to another.
    only = int(facts.test_gateway) if phone is not None and phone.test_phone and facts.test_gateway.isdigit() else None
    routes = _routes(facts, snapshot, account, mapping_gateway, caller, callee, route_stats, trace, only)
    if not routes:
        reason = EndReason.NO_ROUTE
        if snapshot.route_candidates(callee) and snapshot.rate(account.rate_table_id, callee, facts.now_ms) is None:
            reason = EndReason.NO_RATE
        return _refuse(reason, billing_mode, params, **known)

    advance, precision = grant_seconds(params), int(params["SERVER_BILLING_FEE_PRECISION"])
    return Plan(
        facts=facts,
        snapshot_version=snapshot.version,
        billing_mode=billing_mode,
        account=account,
        mapping_gateway=mapping_gateway,
        phone=phone,
        caller=caller,
        callee=callee,
        routes=routes,
        parameters=params,
        check_balance=True,
        # The first grant, at the first route's rate; the grant timer moves it on once the call is answered.
        reservation=grant_cost(routes[0].customer_rate, advance, precision) if account.anti_overdraft else Decimal(0),
        default_max_duration_s=default_max_duration_s,
        caller_whitelisted=white[0],
        callee_whitelisted=white[1],
        trace=trace,
    )


def _routes(
    facts, snapshot, account, mapping_gateway, caller, callee, route_stats=None, trace=None, only_gateway=None
) -> list[RouteAttempt]:
    """The vendors for the call in policy order; each candidate skipped goes to ``trace`` (a list) with why.

    The trace costs nothing unless asked for: only the skips test it.
    """
    params = snapshot.parameters
    rate_sent_number = int(params["SERVER_BILLING_GATEWAY_ROUTE_PREFIX"]) == 1
    routes = []
    for gateway in snapshot.route_candidates(callee):
        if only_gateway is not None and gateway.id != only_gateway:
            continue
        if not snapshot.in_schedule(gateway, facts.now_ms):
            if trace is not None:
                trace.append((gateway, Skip.SCHEDULE))
            continue
        callee_out = gateway.tech_prefix + transform(callee, gateway.callee_transforms)
        # Number rules would make "00anonymous" of a withheld caller: it goes out as it came.
        caller_out = transform(caller, gateway.caller_transforms) if is_number(caller) else caller
        if gateway.caller_number_pool is not None and gateway.caller_number_pool.numbers:
            caller_out = pick_from_pool(gateway.caller_number_pool, facts.call_id, facts.sequence)
        rated = callee_out if rate_sent_number else callee
        customer_rate = snapshot.rate(account.rate_table_id, rated, facts.now_ms)
        if customer_rate is None:
            if trace is not None:
                trace.append((gateway, Skip.NO_RATE))
            continue
        vendor_rate = None
        vendor = snapshot.accounts.get(gateway.clearing_account_id) if gateway.clearing_account_id else None
        if vendor is not None and vendor.rate_table_id is not None:
            vendor_rate = snapshot.rate(vendor.rate_table_id, callee_out if rate_sent_number else callee, facts.now_ms)
            # The margin is kept: a vendor dearer than what the customer pays, or
            # whose price for this number is unknown, would carry the call at a loss.
            if vendor_rate is None or Decimal(vendor_rate.price_per_minute) > Decimal(customer_rate.price_per_minute):
                if trace is not None:
                    trace.append((gateway, Skip.MARGIN))
                continue
        routes.append(
            RouteAttempt(
                gateway_id=gateway.id,
                gateway_name=gateway.name,
                host=gateway.host,
                port=gateway.port,
                transport=gateway.transport,
                caller_out=caller_out,
                callee_out=callee_out,
                capacity=gateway.capacity,
                cps_limit=gateway.cps_limit,
                failover_codes=DEFAULT_FAILOVER_CODES | frozenset(gateway.failover_codes),
                conversation_limit=gateway.conversation_limit,
                vendor_account_id=gateway.clearing_account_id,
                customer_rate=customer_rate,
                vendor_rate=vendor_rate,
            )
        )
    policy = mapping_gateway.route_policy if mapping_gateway is not None else "priority"
    # Candidates come by (priority, id) and sort() is stable: equals keep that order.
    if policy == "least_cost":
        routes.sort(key=lambda r: (Decimal(r.vendor_rate.price_per_minute) if r.vendor_rate else Decimal(0),))
    elif policy == "asr" and route_stats is not None:
        routes.sort(key=asr_rank(route_stats, int(params["SS_ROUTE_ASR_MIN_ATTEMPTS"])))
    limit = int(params["SS_GATEWAY_SWITCH_LIMIT"])
    if limit <= 0 or len(routes) <= limit:
        return routes
    if trace is not None:
        trace.extend((snapshot.routing_gateways[r.gateway_id], Skip.SWITCH_LIMIT) for r in routes[limit:])
    return routes[:limit]


def asr_rank(route_stats: contract.RouteStats, min_attempts: int):
    """Sort key of the Best ASR policy: vendors with fewer than ``min_attempts`` in the window first, then by
    ASR in whole percent, best first.

    A vendor too new (or too quiet) to judge goes first so that it gets the calls it is judged on: ranked
    last it would see only the calls the others failed, whose poor ASR would keep it last. A vendor that
    does badly thus costs about ``min_attempts`` first attempts per window before it sinks again, which is
    also how one that recovered comes back. Whole percents, so noise between near-equal vendors does not
    reorder them: priority decides among equals. Without published figures (the worker stopped, they
    expired) the policy orders by priority.
    """
    gateways = route_stats.gateways

    def rank(route: RouteAttempt) -> tuple[int, int]:
        attempts, connected = gateways.get(route.gateway_id, (0, 0))
        if attempts < min_attempts:
            return (0, 0)
        return (1, -(connected * 100 // attempts))

    return rank


# E.164 country calling codes of one and two digits; every other code has three (ITU-T E.164 annex).
_CC1 = frozenset("17")
_CC2 = frozenset({
    "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47", "48", "49",
    "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66", "81", "82", "84",
    "86", "90", "91", "92", "93", "94", "95", "98",
})  # fmt: skip


def country_code(number: str) -> str:
    """The country calling code of an international number (as routed: no 00 or +), '' when too short."""
    if len(number) < 4:
        return ""
    if number[0] in _CC1:
        return number[0]
    return number[:2] if number[:2] in _CC2 else number[:3]


def high_risk(plan: Plan, snapshot_high_risk: bool) -> bool:
    """A destination the high-risk rules watch: listed in a high-risk group, or dear (its first vendor's cost per
    minute at or above SS_FRAUD_HIGH_RISK_COST_PER_MINUTE); for every gateway and account but exempt ones."""
    gateway = plan.mapping_gateway
    if plan.account.high_risk_exempt or (gateway is not None and gateway.high_risk_exempt):
        return False
    if snapshot_high_risk:
        return True
    dear = int(plan.parameters.get("SS_FRAUD_HIGH_RISK_COST_PER_MINUTE", 0))
    return dear > 0 and _minute_cost_units(plan.routes[0]) >= dear


def _minute_cost_units(route: RouteAttempt) -> int:
    rate = route.vendor_rate or route.customer_rate
    return contract.to_units(Decimal(rate.price_per_minute))


def fraud_check(plan: Plan, node: str, listed_high_risk: bool) -> FraudCheck | None:
    """The set-up fraud rules' view of the call (contract.fraud), or None when every rule is off.

    ``listed_high_risk``: the routed callee is in a high-risk list group (the snapshot's answer).
    """
    params = plan.parameters
    rules = []
    for rule in contract.SETUP_RULES:
        names = contract.RULE_PARAMS[rule]
        if not params.get(names.enabled, False):
            continue
        window = int(params[names.window]) * 1000 if names.window else 0
        rules.append(
            FraudRuleCheck(
                rule=str(rule),
                warning=int(params[names.warning]),
                critical=int(params[names.critical]),
                window_ms=window,
                expire_ms=int(params[names.expire]) * 1000,
                report_only=bool(params[names.report_only]),
            )
        )
    if not rules:
        return None
    gateway = plan.mapping_gateway
    standalone = gateway is not None and gateway.dynamic_blacklist_standalone
    caller_judged = is_number(plan.caller) and not plan.caller_whitelisted
    return FraudCheck(
        node=node,
        caller=plan.caller if caller_judged else "",
        callee="" if plan.callee_whitelisted else plan.callee,
        high_risk=high_risk(plan, listed_high_risk),
        country=country_code(plan.callee),
        spend_units=_minute_cost_units(plan.routes[0]),
        spend_limits=(0, 0),
        spend_floor=int(params.get("SS_FRAUD_SPEND_VELOCITY_FLOOR", 0)),
        rules=rules,
        scope_gateway=gateway.id if standalone and int(params.get("SS_BLACK_LIST_DYNAMIC_RUN_MODE", 0)) == 1 else None,
    )


def live_request(plan: Plan, fraud: FraudCheck | None = None) -> SetupRequest:
    """The counters and limits the live state must check and take for this plan, in one round trip."""
    facts = plan.facts
    gateway = plan.mapping_gateway
    expiry = facts.now_ms + (max_duration_bound(plan) + 60) * 1000
    return SetupRequest(
        call_id=facts.call_id,
        mapping_gateway_id=gateway.id if gateway is not None else None,
        dynamic_blacklist_gateway=gateway.id if gateway is not None and gateway.dynamic_blacklist_standalone else None,
        account_id=plan.account.id,
        phone_id=plan.phone.id if plan.phone is not None else None,
        mapping_capacity=gateway.capacity if gateway is not None else 0,
        account_capacity=plan.account.capacity,
        phone_capacity=plan.phone.capacity if plan.phone is not None else 0,
        mapping_cps=gateway.cps_limit if gateway is not None else 0,
        switch_cps=int(plan.parameters["SS_MAX_CPS"]),
        caller=plan.caller,
        callee=plan.callee,
        check_balance=plan.check_balance,
        credit_limit=Decimal(plan.account.credit_limit),
        snapshot_balance=Decimal(plan.account.balance),
        reservation=plan.reservation,
        minimum_available=minimum_available(plan),
        expiry_ms=expiry,
        routes=[r.limit for r in plan.routes],
        registry={
            "account_id": plan.account.id,
            "mapping_gateway_id": gateway.id if gateway is not None else None,
            # With the account and the mapping gateway: every slot the call may hold, so a restarted
            # node can release the calls it lost (LiveState.release_node).
            "phone_id": plan.phone.id if plan.phone is not None else None,
            "route_gateway_ids": [r.gateway_id for r in plan.routes],
            "billing_mode": int(plan.billing_mode),
            "caller": plan.caller,
            "callee": plan.callee,
            # As received, for the portal's current calls (the two above are after the mapping's transforms).
            "caller_in": facts.caller,
            "callee_in": facts.callee,
            "source_ip": facts.source_ip,
            "start_ms": facts.now_ms,
            "snapshot_version": plan.snapshot_version,
            # The high-risk rules' blocks end the account's live calls to such destinations (contract.fraud).
            "hr": 1 if fraud is not None and fraud.high_risk else 0,
        },
        fraud=fraud,
    )


def minimum_available(plan: Plan) -> Decimal:
    """The least money an anti-overdraft call needs to start: one first period of its first route.

    The live state refuses below it, so ``conclude`` never has to refuse for the
    balance after the live state already took the call's slots (a refusal gets no
    teardown, and those slots would stay taken until they expire).
    """
    if not plan.account.anti_overdraft or not plan.routes:
        return Decimal(0)
    return reservation(plan.routes[0].customer_rate, 1)


def max_duration_bound(plan: Plan) -> int:
    """The longest any route of this plan may last, before the balance is known."""
    limits = [plan.default_max_duration_s]
    if plan.parameters["SS_ENABLE_CALL_LIMIT"] and plan.mapping_gateway and plan.mapping_gateway.conversation_limit:
        limits.append(plan.mapping_gateway.conversation_limit)
    return min(limits)


def route_max_duration(plan: Plan, route: RouteAttempt, available: Decimal | None = None) -> int:
    """Seconds this route's call may last: its conversation limits. Never money: other live calls may spend
    the same balance, so an anti-overdraft call talks on quota grants instead (``Grant``)."""
    limits = [max_duration_bound(plan)]
    if plan.parameters["SS_ENABLE_CALL_LIMIT"] and route.conversation_limit:
        limits.append(route.conversation_limit)
    return min(limits)


def route_limit(plan: Plan, route: RouteAttempt) -> tuple[int, LimitSource]:
    """``route_max_duration`` with what set it, for the decision trace (the first of equal limits)."""
    seconds, source = plan.default_max_duration_s, LimitSource.DEFAULT
    if plan.parameters["SS_ENABLE_CALL_LIMIT"]:
        gateway = plan.mapping_gateway
        if gateway is not None and gateway.conversation_limit and gateway.conversation_limit < seconds:
            seconds, source = gateway.conversation_limit, LimitSource.MAPPING_GATEWAY
        if route.conversation_limit and route.conversation_limit < seconds:
            seconds, source = route.conversation_limit, LimitSource.ROUTE
    return seconds, source


def trace_text(decision: Decision, skipped: list | None = None) -> str:
    """The decision trace its CDR carries (contract.trace): the route policy, the vendors planned, those skipped
    and why, those the set-up found busy, and the maximum duration with what set it.

    ``skipped``: the trace list given to ``plan_call``, for a refusal that has no plan (no route, no rate).
    """
    plan = decision.plan
    gateway = plan.mapping_gateway if plan is not None else decision.mapping_gateway
    policy = gateway.route_policy if gateway is not None else "priority"
    if plan is None:
        return encode_trace(policy, (), [(g.id, why) for g, why in skipped]) if skipped else ""
    skips = [(g.id, why) for g, why in plan.trace or ()]
    routes = [r.gateway_id for r in plan.routes]
    if decision.action is not Action.ROUTE:
        return encode_trace(policy, routes, skips)
    busy = routes[: len(routes) - len(decision.routes)]
    seconds, source = route_limit(plan, decision.routes[0])
    return encode_trace(policy, routes, skips, busy, seconds, source)


_LIVE_REFUSALS = {
    LiveStatus.MAPPING_CAPACITY: EndReason.MAPPING_CAPACITY,
    LiveStatus.ACCOUNT_CAPACITY: EndReason.ACCOUNT_CAPACITY,
    LiveStatus.PHONE_CAPACITY: EndReason.PHONE_CAPACITY,
    LiveStatus.MAPPING_CPS: EndReason.MAPPING_CPS,
    LiveStatus.SWITCH_CPS: EndReason.SWITCH_CPS,
    LiveStatus.CALLER_DYNAMIC_BLACKLISTED: EndReason.DYNAMIC_BLACKLISTED,
    LiveStatus.CALLEE_DYNAMIC_BLACKLISTED: EndReason.DYNAMIC_BLACKLISTED,
    LiveStatus.BALANCE_INSUFFICIENT: EndReason.BALANCE_INSUFFICIENT,
    LiveStatus.ROUTES_BUSY: EndReason.ROUTES_BUSY,
    LiveStatus.ACCOUNT_DYNAMIC_BLACKLISTED: EndReason.DYNAMIC_BLACKLISTED,
    LiveStatus.FRAUD_MALICIOUS_CALLER: EndReason.FRAUD_MALICIOUS_CALLER,
    LiveStatus.FRAUD_CONCURRENT_CALLER: EndReason.FRAUD_CONCURRENT_CALLER,
    LiveStatus.FRAUD_HIGH_RISK_RATE: EndReason.FRAUD_HIGH_RISK_RATE,
    LiveStatus.FRAUD_SPEND_VELOCITY: EndReason.FRAUD_SPEND_VELOCITY,
    LiveStatus.FRAUD_NEW_DESTINATION: EndReason.FRAUD_NEW_DESTINATION,
}


def conclude(plan: Plan, live: SetupResult) -> Decision:
    """Turn the live state's answer into the decision for the call."""
    known = {"plan": plan, "mapping_gateway": plan.mapping_gateway, "account": plan.account}
    if live.status == LiveStatus.UNAVAILABLE:
        if plan.account.anti_overdraft:
            return _refuse(EndReason.LIVE_STATE_UNAVAILABLE, plan.billing_mode, plan.parameters, **known)
        routes = tuple(plan.routes)
        slot_taken = False
    elif live.status != LiveStatus.OK:
        return _refuse(
            _LIVE_REFUSALS[live.status], plan.billing_mode, plan.parameters, available=live.available, **known
        )
    else:
        routes = tuple(plan.routes[live.route_index :]) if live.route_index >= 0 else tuple(plan.routes)
        slot_taken = live.route_index >= 0
    max_duration = route_max_duration(plan, routes[0])
    short = plan.account.anti_overdraft and live.available is not None and live.available < minimum_available(plan)
    if max_duration < 1 or short:
        return _refuse(
            EndReason.BALANCE_INSUFFICIENT, plan.billing_mode, plan.parameters, available=live.available, **known
        )
    return Decision(
        Action.ROUTE,
        None,
        plan.billing_mode,
        record_cdr=True,
        routes=routes,
        max_duration_s=max_duration,
        available=live.available,
        slot_taken=slot_taken,
        **known,
    )


def decide(
    facts: CallFacts, snapshot, live: SetupResult | None = None, route_stats: contract.RouteStats | None = None
) -> Decision:
    """The whole decision; ``live`` is the live state's answer (all clear when None)."""
    planned = plan_call(facts, snapshot, route_stats=route_stats)
    if isinstance(planned, Decision):
        return planned
    if live is None:
        live = SetupResult(LiveStatus.OK, None, 0)
    return conclude(planned, live)


def should_fail_over(
    code: int,
    failover_codes,
    early_media: bool,
    attempts_made: int,
    remaining: int,
    *,
    switch_limit: int,
    stop_after_sdp: bool,
) -> bool:
    """Whether a vendor's final failure moves the call on to the next vendor (``RouteAttempt.failover_codes``);
    ``switch_limit`` and ``stop_after_sdp`` are the call's SS_GATEWAY_SWITCH_LIMIT and SS_SIP_STOP_SWITCH_AFTER_SDP."""
    if remaining <= 0:
        return False
    if switch_limit and attempts_made >= switch_limit:
        return False
    if early_media and stop_after_sdp:
        return False
    return code in failover_codes


# ---------------------------------------------------------------------------
# The call state kept in the dialog


def call_state(facts: CallFacts, decision: Decision) -> contract.CallState:
    """What a routed call keeps in its dialog: its CDR's fields, its routes and the parameters it was set up under."""
    plan = decision.plan
    params = plan.parameters
    routes = [
        contract.RouteState(
            r.gateway_id,
            r.gateway_name,
            r.host,
            r.port,
            r.transport,
            r.caller_out,
            r.callee_out,
            r.capacity,
            r.cps_limit,
            r.failover_codes,
            r.conversation_limit,
            r.vendor_account_id,
            r.customer_rate.prefix,
            r.customer_rate.area,
            r.vendor_rate.prefix if r.vendor_rate else "",
            r.vendor_rate.area if r.vendor_rate else "",
        )
        for r in decision.routes
    ]
    mapping_gateway, account, phone = plan.mapping_gateway, plan.account, plan.phone
    return contract.CallState(
        call_id=facts.call_id,
        start_ms=facts.now_ms,
        source_ip=facts.source_ip,
        source_port=facts.source_port,
        user_agent=facts.user_agent[:200],
        caller_in=facts.caller,
        callee_in=facts.callee,
        caller=plan.caller,
        callee=plan.callee,
        billing_mode=decision.billing_mode,
        account_id=account.id,
        account_name=account.name,
        mapping_gateway_id=mapping_gateway.id if mapping_gateway else None,
        mapping_gateway_name=mapping_gateway.name if mapping_gateway else "",
        phone_id=phone.id if phone else None,
        snapshot_version=plan.snapshot_version,
        max_duration_s=decision.max_duration_s,
        balance_limited=False,  # the balance no longer sets a max duration: grants end such calls
        slot_taken=decision.slot_taken,
        routes=routes,
        from_per_branch=len({r.caller for r in routes}) > 1,
        expiry_ms=facts.now_ms + (decision.max_duration_s + 60) * 1000,
        record_zero_hold=bool(params["SERVER_BILLING_RECORD_ZERO_HOLD_TIME"]),
        record_server_hangup=bool(params["SERVER_BILLING_RECORD_SERVER_HANG_UP"]),
        stop_switch_after_sdp=bool(params["SS_SIP_STOP_SWITCH_AFTER_SDP"]),
        switch_limit=int(params["SS_GATEWAY_SWITCH_LIMIT"]),
        invite_timeout_ms=int(params["SS_SIP_TIMEOUT_INVITE"]) * 1000,
        route_max_s=[route_max_duration(plan, r) for r in decision.routes],
        grant=_grant_terms(plan, decision.routes) if account.anti_overdraft else None,
        decision_trace=trace_text(decision),
    )


def _grant_terms(plan: Plan, routes) -> contract.GrantTerms:
    params = plan.parameters
    return contract.GrantTerms(
        seconds=grant_seconds(params),
        fee_precision=int(params["SERVER_BILLING_FEE_PRECISION"]),
        credit_units=contract.to_units(Decimal(plan.account.credit_limit)),
        balance_units=contract.to_units(Decimal(plan.account.balance)),
        rates=[
            contract.GrantRate(
                str(r.customer_rate.connect_fee),
                str(r.customer_rate.price_per_minute),
                r.customer_rate.first_period,
                r.customer_rate.next_period,
            )
            for r in routes
        ],
    )


# ---------------------------------------------------------------------------
# Quota grants: an answered anti-overdraft call talks on grants the call core's timer renews

# A grant is renewed this long before it runs out: the timer ticks every second, and a call it cannot renew
# is ended by the dialog timer 1-2 s later, so it ends inside the talk its reservation already covers.
GRANT_RENEW_MARGIN_MS = 3500
# A route's own conversation limit: the timer sets the dialog's timeout this long before it.
LIMIT_LEAD_MS = 2500


class Grant(msgspec.Struct, array_like=True, gc=False):
    """An answered call in its node's renewal index (contract.Keys.grants): what the grant timer needs."""

    account_id: int
    h_entry: int  # the dialog's id in Kamailio, to end it from the timer process
    h_id: int
    answer_ms: int
    end_ms: int  # the call's reservation covers its talk up to here
    limit_ms: int  # when the answering route's own limit ends the call; 0: the dialog's timeout does
    rate: contract.GrantRate | None  # None: not anti-overdraft, only ``limit_ms`` to keep
    seconds: int = 0
    fee_precision: int = 2
    credit_units: int = 0
    balance_units: int = 0

    @property
    def due_ms(self) -> int:
        """When the timer must look at it next: before its grant runs out, or before its limit."""
        due = [self.limit_ms - LIMIT_LEAD_MS] if self.limit_ms else []
        if self.rate is not None:
            due.append(self.end_ms - GRANT_RENEW_MARGIN_MS)
        return min(due)


_grant_encoder = msgspec.json.Encoder()
_grant_decoder = msgspec.json.Decoder(Grant)


def encode_grant(grant: Grant) -> bytes:
    return _grant_encoder.encode(grant)


def decode_grant(raw: bytes | str) -> Grant:
    return _grant_decoder.decode(raw)


def answer_grant(state: contract.CallState, index: int, answer_ms: int, h_entry: int, h_id: int) -> Grant | None:
    """The answered call's entry in the renewal index; None when it needs none (postpaid, no shorter limit)."""
    route_max = state.route_max_s[index] if index < len(state.route_max_s) else state.max_duration_s
    limit_ms = answer_ms + route_max * 1000 if route_max < state.max_duration_s else 0
    terms = state.grant
    if terms is None:
        return Grant(state.account_id, h_entry, h_id, answer_ms, 0, limit_ms, None) if limit_ms else None
    # The set-up reservation is the first grant at the first route's rate: another route's is priced at once.
    end_ms = answer_ms + terms.seconds * 1000 if index == 0 else answer_ms
    return Grant(
        state.account_id, h_entry, h_id, answer_ms, end_ms, limit_ms, terms.rates[index],
        terms.seconds, terms.fee_precision, terms.credit_units, terms.balance_units,
    )  # fmt: skip


def limit_reached(grant: Grant, now_ms: int) -> bool:
    return bool(grant.limit_ms) and now_ms >= grant.limit_ms - LIMIT_LEAD_MS


def limit_timeout_s(grant: Grant, now_ms: int) -> int:
    """The dialog timeout that ends the call at its route's limit (the dialog timer counts whole seconds)."""
    return max(1, round((grant.limit_ms - now_ms) / 1000))


def renewed_grant(grant: Grant, now_ms: int) -> tuple[Grant, int]:
    """The grant after the next one, and the reservation (money units) covering the talk up to its end.

    The reservation covers the talk so far plus the next grant, priced as rating will charge those seconds;
    a timer running late counts from now, so a call never talks on money it does not hold.
    """
    end_ms = max(grant.end_ms, now_ms) + grant.seconds * 1000
    talk_s = -(-(end_ms - grant.answer_ms) // 1000)
    held = grant_cost(grant.rate, talk_s, grant.fee_precision)
    return msgspec.structs.replace(grant, end_ms=end_ms), contract.to_units(held)


# ---------------------------------------------------------------------------
# The end of a call

# The dialog events that end a call (Kamailio's dialog module).
DIALOG_TIMEOUT, DIALOG_END, DIALOG_FAILED = "dialog:timeout", "dialog:end", "dialog:failed"
ENDING_EVENTS = frozenset({DIALOG_TIMEOUT, DIALOG_END, DIALOG_FAILED})
# The dialog timer counts whole seconds: a max duration of N s ends the call N-1 to N s after the
# answer (tests/e2e). Keep-alives end a call 30 s after its answer at the earliest.
KEEPALIVE_MARGIN_MS = 2500


class EndFacts(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """What the adapter read about a call's ending event; each event reads only the facts it needs."""

    event: str  # one of ENDING_EVENTS
    now_ms: int = 0
    answered_ms: int = 0  # when the vendor answered; 0 if it never did
    answered_not_acked: bool = False  # dialog timeout: the 200 OK went out and no ACK came back
    from_caller: bool = False  # dialog end: the BYE's From tag is the caller's
    reply_code: int = 0  # dialog failed: the final reply's status, when the event came with one
    last_vendor_code: int = 0  # the last vendor's final status the failure route saw (0: none)
    canceled: bool = False  # the failure route saw the caller's CANCEL
    # From the call's state.
    keepalive: bool = False  # in-dialog keep-alives are on
    max_duration_s: int = 0
    balance_limited: bool = False
    failover_codes: frozenset[int] = frozenset()  # the last route's
    record_zero_hold: bool = False
    record_server_hangup: bool = False
    # The grant timer ended the call (balance_exhausted, or max_duration at the answering route's limit), or it
    # was ended on request (serve_disconnects), answered or still setting up.
    cut: EndReason | None = None


class EndDecision(msgspec.Struct, frozen=True, gc=False):
    reason: EndReason
    direction: EndDirection
    sip_status: int
    record: bool  # write the CDR
    acknowledged: bool = True  # the caller took the answer: its conversation is charged


def vendor_failure_reason(code: int, failover_codes) -> EndReason:
    """Why a call no vendor connected ended, from the last vendor's status and that route's failover codes."""
    if code == 408:
        return EndReason.VENDOR_TIMEOUT
    if code in failover_codes or code in DEFAULT_FAILOVER_CODES:
        return EndReason.VENDOR_FAILED
    return EndReason.VENDOR_REJECTED


# Never-connected calls the switch itself ended: its INVITE timer ran out, it had no vendor left to try, or
# its BYE ended an answer the caller never acknowledged. A vendor's stop answer or the caller's CANCEL is theirs.
SWITCH_ENDED_UNCONNECTED = frozenset({EndReason.VENDOR_TIMEOUT, EndReason.VENDOR_FAILED, EndReason.CALLER_NO_ACK})


def _record_unconnected(facts: EndFacts, reason: EndReason) -> bool:
    """SERVER_BILLING_RECORD_ZERO_HOLD_TIME covers every unconnected call, ..._SERVER_HANG_UP the switch's own."""
    return facts.record_zero_hold and (facts.record_server_hangup or reason not in SWITCH_ENDED_UNCONNECTED)


def end_of_call(facts: EndFacts) -> EndDecision | None:
    """How a call ends, from its dialog's ending event; None for any other event."""
    event = facts.event
    if event == DIALOG_END:
        direction = EndDirection.CALLER if facts.from_caller else EndDirection.CALLEE
        return EndDecision(EndReason.NORMAL_CLEARING, direction, 200, True)
    if event == DIALOG_FAILED:
        code = facts.reply_code or facts.last_vendor_code or 408
        if facts.cut is not None:
            # Cancelled on request while setting up (an operator, an anti-fraud block): recorded as any
            # unconnected call is, with the reason asked for.
            return EndDecision(facts.cut, EndDirection.SERVER, code, facts.record_zero_hold)
        if facts.canceled or code == 487 and facts.last_vendor_code in (0, 487):
            return EndDecision(EndReason.CALLER_CANCEL, EndDirection.CALLER, code, facts.record_zero_hold)
        reason = vendor_failure_reason(code, facts.failover_codes)
        return EndDecision(reason, EndDirection.CALLEE, code, _record_unconnected(facts, reason))
    if event == DIALOG_TIMEOUT:
        if facts.answered_not_acked:
            # The caller never acknowledged the answer (it never got the 200 OK, or gave up): the call
            # was never up for the caller, so no conversation is charged, whatever ended it.
            reason = EndReason.CALLER_NO_ACK
            return EndDecision(reason, EndDirection.SERVER, 408, _record_unconnected(facts, reason), acknowledged=False)
        answered = facts.answered_ms
        if facts.cut is not None:
            reason = facts.cut
        elif (
            facts.keepalive and answered and facts.now_ms - answered < facts.max_duration_s * 1000 - KEEPALIVE_MARGIN_MS
        ):
            # Well before its max duration: the dialog module ended it because a side stopped
            # answering its keep-alives (it sets no other mark we could read).
            reason = EndReason.KEEPALIVE_FAILED
        elif facts.balance_limited:
            reason = EndReason.BALANCE_EXHAUSTED
        else:
            reason = EndReason.MAX_DURATION
        # Answered: always recorded and charged; SERVER_BILLING_RECORD_SERVER_HANG_UP is for unconnected calls.
        return EndDecision(reason, EndDirection.SERVER, 200, True)
    return None


# A phone's digest authentication failed (or its source is outside its networks and countries).
AUTH_FAILED = Decision(Action.REJECT, EndReason.AUTH_FAILED, BillingMode.ILLEGAL, record_cdr=True)
