"""The post-call fraud rules: evaluated on the rated CDRs the ingest inserted, and replayed by the review run.

Four rules need a call's outcome (contract.fraud.POST_CALL_RULES):

* no-answer callee: calls that reached a vendor and were not answered, per
  callee; the callee is blocked;
* short-call burst: connected calls shorter than SS_FRAUD_SHORT_CALL_BURST_SECONDS
  from one account to one callee prefix; the number called is blocked;
* spend velocity (actual): the vendor cost of one account's calls in the
  window, against its average daily vendor cost (never below a floor); the
  account is blocked;
* long call: one call's talk time; its callee is blocked (off by default:
  the conversation limit cuts calls).

Windows slide (no reset at a minute or hour edge): a call counts from its end
for the rule's window. One evaluation takes a batch in order of the calls'
ends; ``observe`` turns each record into the observations of the enabled
rules, a ``Windows`` counts them (``RedisWindows``: one Lua call for the
whole batch, the ingest's; ``MemoryWindows``: the same arithmetic in memory,
the review run's), and ``evaluate`` decides on the figures:

* a warning is reported when a call brings a figure to its warning level;
* a critical figure blocks the subject (scope by SS_BLACK_LIST_DYNAMIC_RUN_MODE
  and the mapping gateway's standalone flag) unless the rule is report-only,
  the number is on a white list attached to the call's gateway, or the
  subject is exempt (an admin released it); a subject already blocked in that
  scope is left as it is. A critical figure that does not block is reported
  when it is reached, as a warning is.

The ``Board`` applies the decisions: ``RedisBoard`` writes each block to the
dynamic-blacklist sorted set, XADDs every detection to ``Keys.fraud_events``
and asks the nodes holding live calls that match a new block to end them
(``Keys.disconnects``); ``MemoryBoard`` only remembers, for the review run.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import json
import logging
import time
from collections.abc import Iterable, Sequence
from decimal import Decimal

import redis
from django.db import connection

from callcore.contract import (
    EVENT_FIELD,
    FRAUD_EVENTS_MAXLEN,
    NEVER_EXPIRES_MS,
    PARAMETERS_BY_NAME,
    POST_CALL_RULES,
    EndReason,
    FraudEvent,
    FraudRule,
    Keys,
    Severity,
    SubjectKind,
    account_subject,
    encode_disconnect,
    encode_event,
    parse_subject,
    rule_params,
    to_units,
)
from softswitch_portal.core.redis import Waiter, prefix, redis_client

log = logging.getLogger("billing.fraud")

NODE = "ingest"  # FraudEvent.node of the detections made here
EVIDENCE_CAP = 20  # call ids kept with a detection: the latest ones counted
RUN_MODE_STANDALONE = 1  # SS_BLACK_LIST_DYNAMIC_RUN_MODE
SPEND_HISTORY_DAYS = 30
SCOPE_CENTRAL, SCOPE_GATEWAY = "central", "gateway"


# -- settings


@dataclasses.dataclass(frozen=True)
class Levels:
    """One rule's switches and levels as the system parameters hold them (counts, percent or seconds)."""

    rule: FraudRule
    enabled: bool
    report_only: bool
    warning: int
    critical: int
    window_s: int | None
    expire_s: int


@dataclasses.dataclass
class Context:
    """What the rules read besides the records: the parameters, the gateways' scopes and white lists, and each
    account's average daily vendor cost (money units) for the spend rule."""

    levels: dict[FraudRule, Levels]
    run_mode: int = 0
    standalone_gateways: frozenset[int] = frozenset()
    # mapping gateway id -> (full numbers, prefixes) of the white lists attached to it
    white_lists: dict[int, tuple[frozenset[str], tuple[str, ...]]] = dataclasses.field(default_factory=dict)
    short_call_ms: int = 10_000
    prefix_digits: int = 6
    spend_floor: int = 0
    daily_spend: dict[int, int] = dataclasses.field(default_factory=dict)

    def enabled(self, rule: FraudRule) -> Levels | None:
        levels = self.levels.get(rule)
        return levels if levels is not None and levels.enabled else None

    def scope(self, mapping_gateway_id: int | None) -> tuple[str, int | None]:
        if (
            self.run_mode == RUN_MODE_STANDALONE
            and mapping_gateway_id is not None
            and mapping_gateway_id in self.standalone_gateways
        ):
            return SCOPE_GATEWAY, mapping_gateway_id
        return SCOPE_CENTRAL, None

    def white_listed(self, number: str, mapping_gateway_id: int | None) -> bool:
        lists = self.white_lists.get(mapping_gateway_id) if mapping_gateway_id is not None else None
        if not lists:
            return False
        numbers, prefixes = lists
        return number in numbers or number.startswith(prefixes)

    def spend_limits(self, account_id: int, levels: Levels) -> tuple[int, int]:
        """The warning and critical amounts (money units) of one account: its daily average times the levels'
        percent, never below the floor; 0 for a level that is off."""
        daily = self.daily_spend.get(account_id, 0)

        def limit(percent: int) -> int:
            return max(self.spend_floor, daily * percent // 100) if percent > 0 else 0

        return limit(levels.warning), limit(levels.critical)


def parameter_values(stored: dict[str, str]) -> dict[str, int | bool]:
    """Every parameter the rules read, parsed; a missing or unparsable value is the default."""
    values = {}
    for name, parameter in PARAMETERS_BY_NAME.items():
        if name not in stored:
            values.setdefault(parameter.name, parameter.default)
            continue
        try:
            values[parameter.name] = parameter.parse(stored[name])
        except ValueError:
            log.warning("system parameter %s=%r unreadable: using its default", name, stored[name])
            values[parameter.name] = parameter.default
    return values


def levels_from(values: dict[str, int | bool], rules: Iterable[FraudRule] = POST_CALL_RULES) -> dict:
    levels = {}
    for rule in rules:
        names = rule_params(rule)
        levels[FraudRule(rule)] = Levels(
            rule=FraudRule(rule),
            enabled=bool(values[names.enabled]),
            report_only=bool(values[names.report_only]),
            warning=int(values[names.warning]),
            critical=int(values[names.critical]),
            window_s=int(values[names.window]) if names.window else None,
            expire_s=int(values[names.expire]),
        )
    return levels


def load_context(rules: Iterable[FraudRule] = POST_CALL_RULES) -> Context:
    """The parameters, gateways and white lists as stored now (three queries); no spend history yet."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, value FROM switching_systemparameter")
        values = parameter_values(dict(cursor.fetchall()))
        cursor.execute("SELECT id FROM switching_mappinggateway WHERE dynamic_blacklist_standalone")
        standalone = frozenset(row[0] for row in cursor.fetchall())
        # A white list attached to a gateway as its caller or its callee list: either exempts the number.
        cursor.execute(
            """
            SELECT a.mappinggateway_id, e.number, e.match
            FROM (SELECT mappinggateway_id, blackwhitelistgroup_id FROM switching_mappinggateway_caller_list_groups
                  UNION
                  SELECT mappinggateway_id, blackwhitelistgroup_id FROM switching_mappinggateway_callee_list_groups)
                 AS a
            JOIN security_blackwhitelistgroup AS g ON g.id = a.blackwhitelistgroup_id AND g.kind = 'white'
            JOIN security_listentry AS e ON e.group_id = g.id
            """
        )
        gathered: dict[int, tuple[set, set]] = {}
        for gateway_id, number, match in cursor.fetchall():
            numbers, prefixes = gathered.setdefault(gateway_id, (set(), set()))
            (prefixes if match == "prefix" else numbers).add(number)
    return Context(
        levels=levels_from(values, rules),
        run_mode=int(values["SS_BLACK_LIST_DYNAMIC_RUN_MODE"]),
        standalone_gateways=standalone,
        white_lists={g: (frozenset(n), tuple(sorted(p))) for g, (n, p) in gathered.items()},
        short_call_ms=int(values["SS_FRAUD_SHORT_CALL_BURST_SECONDS"]) * 1000,
        prefix_digits=int(values["SS_FRAUD_SHORT_CALL_BURST_PREFIX_DIGITS"]),
        spend_floor=int(values["SS_FRAUD_SPEND_VELOCITY_ACTUAL_FLOOR"]),
    )


def daily_spend(account_ids: Iterable[int], until: dt.datetime) -> dict[int, int]:
    """Each account's average daily vendor cost (money units) over the SPEND_HISTORY_DAYS before ``until``,
    over the days since its first call in them (an account a week old is not averaged over a month); 0 without
    history. One index-only query (the CDRs' account and start index carries the vendor cost)."""
    ids = sorted({a for a in account_ids if a is not None})
    if not ids:
        return {}
    since = until - dt.timedelta(days=SPEND_HISTORY_DAYS)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT account_id, sum(vendor_cost), min(start_time) FROM billing_cdr"
            " WHERE account_id = ANY(%s) AND start_time >= %s AND start_time < %s GROUP BY account_id",
            [ids, since, until],
        )
        found = cursor.fetchall()
    averages = dict.fromkeys(ids, 0)
    for account_id, total, first in found:
        days = min(SPEND_HISTORY_DAYS, max(1, -(-(until - first).total_seconds() // 86400)))
        averages[account_id] = to_units(Decimal(total or 0) / Decimal(int(days)))
    return averages


def publish_daily_spend(now: dt.datetime | None = None, client=None) -> int:
    """Each customer's average daily vendor cost into ``Keys.fraud_daily_spend``, the base of the call core's
    spend-velocity rule at set-up (worker, hourly); returns how many accounts have a history.

    Replaced whole in one transaction, so a call never sees half of it.
    """
    now = now or dt.datetime.now(dt.UTC)
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM billing_account WHERE account_type = 'customer'")
        ids = [row[0] for row in cursor.fetchall()]
    spend = {str(a): units for a, units in daily_spend(ids, now).items() if units > 0}
    own = client is None
    client = client if client is not None else redis_client(Waiter.JOB, name="worker:fraud-daily-spend")
    try:
        key = Keys(prefix()).fraud_daily_spend
        pipe = client.pipeline(transaction=True)
        pipe.delete(key)
        if spend:
            pipe.hset(key, mapping=spend)
        pipe.execute()
    finally:
        if own:
            client.close()
    return len(spend)


# -- observations


@dataclasses.dataclass(slots=True)
class Observation:
    """One call counted by one rule: in window ``window`` (None: the call alone), as ``member`` at ``at_ms``."""

    rule: FraudRule
    window: str | None  # the window's subject (Keys.fraud_window)
    subject: str  # what a critical figure blocks (a blacklist member, contract.fraud)
    member: str  # the call's id in the window
    at_ms: int
    amount: int | None  # money units counted (the spend rule); None: the call counts one
    figure: int  # without a window: the call's own figure
    warning: int  # levels in the figure's units (0 = off)
    critical: int
    window_ms: int
    record: dict


def reached_vendor(values: dict) -> bool:
    """Whether a vendor was tried (a call refused at set-up never was, and says nothing of its callee)."""
    if values.get("routing_gateway_id") is not None:
        return True
    tried = values.get("vendors_tried")
    return bool(tried) and tried != "[]"


def callee_of(values: dict) -> str:
    """The callee the switch routed and screened on (the dynamic blacklist's number), as received in older
    records."""
    return values.get("callee_number_routed") or values.get("callee_number") or ""


def end_of(values: dict) -> int:
    return values.get("stop_ms") or values["start_ms"]


def observe(values: dict, ctx: Context) -> list[Observation]:
    """The observations of one rated record under the enabled rules."""
    found = []
    at = end_of(values)
    uuid = values["call_uuid"]
    callee = callee_of(values)
    account_id = values.get("account_id")
    hold_ms = values.get("hold_time_ms") or 0
    answered = values.get("answer_ms") is not None and hold_ms > 0

    levels = ctx.enabled(FraudRule.NO_ANSWER_CALLEE)
    if levels and callee and not answered and reached_vendor(values):
        found.append(
            Observation(levels.rule, callee, callee, uuid, at, None, 0, levels.warning, levels.critical,
                        levels.window_s * 1000, values)
        )  # fmt: skip
    levels = ctx.enabled(FraudRule.SHORT_CALL_BURST)
    if levels and callee and account_id is not None and answered and hold_ms < ctx.short_call_ms:
        window = f"{account_id}:{callee[: ctx.prefix_digits]}"
        found.append(
            Observation(levels.rule, window, callee, uuid, at, None, 0, levels.warning, levels.critical,
                        levels.window_s * 1000, values)
        )  # fmt: skip
    levels = ctx.enabled(FraudRule.SPEND_VELOCITY_ACTUAL)
    cost = values.get("vendor_cost")
    if levels and account_id is not None and cost:
        units = to_units(Decimal(cost))
        if units > 0:
            subject = account_subject(account_id)
            warning, critical = ctx.spend_limits(account_id, levels)
            found.append(
                Observation(levels.rule, subject, subject, uuid, at, units, 0, warning, critical,
                            levels.window_s * 1000, values)
            )  # fmt: skip
    levels = ctx.enabled(FraudRule.LONG_CALL)
    if levels and callee and answered:
        seconds = hold_ms // 1000
        if (levels.warning and seconds >= levels.warning) or (levels.critical and seconds >= levels.critical):
            found.append(
                Observation(levels.rule, None, callee, uuid, at, None, seconds, levels.warning, levels.critical,
                            0, values)
            )  # fmt: skip
    return found


@dataclasses.dataclass(slots=True)
class Seen:
    """A window's figure just before and just after one observation, and the latest calls counted."""

    before: int
    after: int
    count: int
    evidence: list[str]


def wants_evidence(before: int, after: int, warning: int, critical: int) -> bool:
    """Whether ``evaluate`` may report or block on these figures (and so needs the calls counted)."""
    crossed = (warning and before < warning <= after) or (critical and before < critical <= after)
    return bool(crossed or (critical and after >= critical))


# -- windows


class Windows:
    """Sliding windows: each observation trims its window to (at - window, ...], adds its call, and reads it."""

    def feed(self, observations: Sequence[Observation]) -> dict[int, Seen]:
        """The figures of the observations (by position) that reach or hold a level (``wants_evidence``)."""
        raise NotImplementedError


# KEYS: the batch's windows. ARGV: 1 evidence cap, 2 the number of windows, then 4 per window: its length in
# ms, warning, critical, 1 for a money window (0: each call counts one); then 4 per observation, in order: the
# window's index, score (epoch ms), call id, amount in money units. A money window keeps its total at {key}:sum
# and each member as "{call}|{amount}", so a trim takes off exactly what it drops. Returns only the observations
# that reach or hold a level (wants_evidence): {position, before, after, count, evidence (the latest calls counted,
# up to this one)}; most batches get an empty answer.
WINDOWS_LUA = r"""
local cap = tonumber(ARGV[1])
local nkeys = tonumber(ARGV[2])
local length, warning, critical, money = {}, {}, {}, {}
for k = 1, nkeys do
  local b = 2 + (k - 1) * 4
  length[k] = tonumber(ARGV[b + 1])
  warning[k] = tonumber(ARGV[b + 2])
  critical[k] = tonumber(ARGV[b + 3])
  money[k] = ARGV[b + 4] == '1'
end
local out = {}
local first = 3 + nkeys * 4
for b = first, #ARGV, 4 do
  local k = tonumber(ARGV[b])
  local key = KEYS[k]
  local score = tonumber(ARGV[b + 1])
  local member = ARGV[b + 2]
  local cutoff = score - length[k]
  local before, after
  if not money[k] then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', cutoff)
    local added = redis.call('ZADD', key, score, member)
    after = redis.call('ZCARD', key)
    before = after - added
  else
    local amount = tonumber(ARGV[b + 3])
    local sumkey = key .. ':sum'
    local gone = redis.call('ZRANGEBYSCORE', key, '-inf', cutoff)
    if #gone > 0 then
      local dropped = 0
      for _, m in ipairs(gone) do dropped = dropped + tonumber(string.match(m, '|(%-?%d+)$')) end
      redis.call('DECRBY', sumkey, dropped)
      redis.call('ZREMRANGEBYSCORE', key, '-inf', cutoff)
    end
    if redis.call('ZADD', key, score, member .. '|' .. ARGV[b + 3]) == 1 then
      after = redis.call('INCRBY', sumkey, amount)
      before = after - amount
    else
      after = tonumber(redis.call('GET', sumkey) or '0')
      before = after
    end
  end
  local w, c = warning[k], critical[k]
  if (w > 0 and before < w and after >= w) or (c > 0 and after >= c) then
    local count = after
    if money[k] then count = redis.call('ZCARD', key) end
    local evidence = redis.call('ZREVRANGEBYSCORE', key, score, '-inf', 'LIMIT', 0, cap)
    out[#out + 1] = {(b - first) / 4, before, after, count, evidence}
  end
end
for k = 1, nkeys do
  redis.call('PEXPIRE', KEYS[k], length[k] + 60000)
  if money[k] then redis.call('PEXPIRE', KEYS[k] .. ':sum', length[k] + 60000) end
end
return out
"""


def _call_of(member: str | bytes, money: bool) -> str:
    if isinstance(member, bytes):
        member = member.decode()
    return member.rpartition("|")[0] if money else member


class RedisWindows(Windows):
    """The windows in Redis sorted sets (``Keys.fraud_window``), shared by every ingest worker: one EVALSHA per
    batch."""

    def __init__(self, client: redis.Redis, keys: Keys):
        self.client = client
        self.keys = keys
        self.script = client.register_script(WINDOWS_LUA)

    def feed(self, observations: Sequence[Observation]) -> dict[int, Seen]:
        if not observations:
            return {}
        index: dict[str, int] = {}
        shapes: list = []
        calls: list = []
        fraud_window = self.keys.fraud_window
        for o in observations:
            key = fraud_window(o.rule, o.window)
            position = index.get(key)
            if position is None:
                position = index[key] = len(index) + 1
                # One window's levels are the same for every call in it (an account's spend limits included).
                shapes += (o.window_ms, o.warning, o.critical, 0 if o.amount is None else 1)
            calls += (position, o.at_ms, o.member, o.amount or 0)
        replies = self.script(keys=list(index), args=[EVIDENCE_CAP, len(index), *shapes, *calls])
        seen = {}
        for position, before, after, count, evidence in replies:
            money = observations[position].amount is not None
            seen[position] = Seen(before, after, count, [_call_of(m, money) for m in reversed(evidence)])
        return seen


class MemoryWindows(Windows):
    """The same windows in this process (the review run's): nothing is written anywhere."""

    def __init__(self):
        self.members: dict[tuple, list[tuple[int, str]]] = {}  # (score, call) in the sorted set's order
        self.amounts: dict[tuple, dict[str, int]] = {}
        self.totals: dict[tuple, int] = {}

    def feed(self, observations: Sequence[Observation]) -> dict[int, Seen]:
        seen = {}
        for position, o in enumerate(observations):
            key = (o.rule, o.window)
            members = self.members.setdefault(key, [])
            amounts = self.amounts.setdefault(key, {})
            total = self.totals.get(key, 0)
            cut = bisect.bisect_right(members, (o.at_ms - o.window_ms, "\U0010ffff"))
            if cut:
                for _, gone in members[:cut]:
                    total -= amounts.pop(gone)
                del members[:cut]
            before = len(members) if o.amount is None else total
            if o.member not in amounts:
                bisect.insort(members, (o.at_ms, o.member))
                amounts[o.member] = o.amount or 0
                total += o.amount or 0
            self.totals[key] = total
            after = len(members) if o.amount is None else total
            if wants_evidence(before, after, o.warning, o.critical):
                upto = bisect.bisect_right(members, (o.at_ms, "\U0010ffff"))
                evidence = [m for _, m in members[max(0, upto - EVIDENCE_CAP) : upto]]
                seen[position] = Seen(before, after, len(members), evidence)
        return seen


# -- decisions


@dataclasses.dataclass(slots=True)
class Detection:
    """A decision of ``evaluate``: the event, and where the block goes (when it blocks)."""

    event: FraudEvent
    observation: Observation
    blacklist_gateway: int | None  # Keys.dynamic_blacklist's argument
    expires_ms: int  # the block's expiry (NEVER_EXPIRES_MS for an entry without one)
    would_block: bool  # the rule not report-only: what the review run reports as blocked


class Board:
    """Where decisions land; ``load`` is told the subjects that may be blocked before any ``blocked`` question."""

    def load(self, candidates: Sequence[tuple[str, int | None]]) -> None:
        """Prefetch the exemption and blacklist state of (subject, blacklist gateway) pairs."""

    def exempt(self, subject: str, now_ms: int) -> bool:
        raise NotImplementedError

    def blocked(self, subject: str, gateway: int | None, now_ms: int) -> bool:
        raise NotImplementedError

    def block(self, detection: Detection) -> None:
        raise NotImplementedError

    def report(self, detection: Detection) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """Apply what was decided (one round trip for the Redis board)."""


def figures_of(o: Observation, seen: Seen | None) -> dict:
    if o.rule is FraudRule.LONG_CALL:
        return {"hold_s": o.figure, "warning": o.warning, "critical": o.critical}
    figures = {"count": seen.count, "window_s": o.window_ms // 1000, "warning": o.warning, "critical": o.critical}
    if o.amount is not None:
        # Money in units (10000 = 1.00), as the levels are.
        figures["amount"] = seen.after
    return figures


def evaluate(
    records: Iterable[dict],
    ctx: Context,
    windows: Windows,
    board: Board,
    *,
    ignore_report_only: bool = False,
) -> list[Detection]:
    """Count ``records`` (rated, in the order of their ends) under the enabled rules and decide.

    The rules keep the calls' clock: a block is timed from, and an existing one checked at, the end of the call
    that tripped it, so a replay of the same calls decides as the ingest did. ``ignore_report_only``: decide as
    if no rule were report-only, blocking on the board (the review run's question: what would the rules have
    blocked?).
    """
    observations = [o for values in records for o in observe(values, ctx)]
    if not observations:
        return []
    windowed = [o for o in observations if o.window is not None]
    seen_of = {id(windowed[position]): seen for position, seen in windows.feed(windowed).items()}
    hits: list[tuple[Observation, Seen | None]] = []
    for o in observations:
        if o.window is None:
            hits.append((o, None))  # a call judged alone (observe keeps only those past a level)
        elif id(o) in seen_of:
            hits.append((o, seen_of[id(o)]))
    if not hits:
        return []
    blockable = []
    for o, seen in hits:
        after = o.figure if seen is None else seen.after
        if o.critical and after >= o.critical:
            _scope, gateway = ctx.scope(o.record.get("mapping_gateway_id"))
            blockable.append((o.subject, gateway))
    board.load(blockable)

    detections = []
    for o, seen in hits:
        before, after = (0, o.figure) if seen is None else (seen.before, seen.after)
        levels = ctx.levels[o.rule]
        at = o.at_ms
        gateway_id = o.record.get("mapping_gateway_id")
        scope, blacklist_gateway = ctx.scope(gateway_id)
        evidence = [o.member] if seen is None else seen.evidence
        severity = None
        blocks = would_block = False
        why_not = ""
        if o.critical and after >= o.critical:
            kind, _ = parse_subject(o.subject)
            if kind is SubjectKind.NUMBER and ctx.white_listed(o.subject, gateway_id):
                why_not = "white list"
            elif board.exempt(o.subject, at):
                why_not = "exempt"
            would_block = not why_not
            blocks = would_block and (ignore_report_only or not levels.report_only)
            if blocks:
                if board.blocked(o.subject, blacklist_gateway, at):
                    continue  # in the list already: this call only adds to what it shows
                severity = Severity.CRITICAL
            elif before < o.critical:
                severity = Severity.CRITICAL
        if severity is None and o.warning and before < o.warning <= after:
            severity = Severity.WARNING
        if severity is None:
            continue
        critical = severity is Severity.CRITICAL
        expires = NEVER_EXPIRES_MS if levels.expire_s == 0 else at + levels.expire_s * 1000
        figures = figures_of(o, seen)
        if why_not:
            figures["not_blocked"] = why_not
        event = FraudEvent(
            rule=o.rule.value,
            severity=severity.value,
            subject=o.subject,
            scope=scope,
            mapping_gateway_id=blacklist_gateway,
            account_id=o.record.get("account_id"),
            figures=figures,
            evidence=list(evidence),
            blocked=critical and blocks and not ignore_report_only,
            ttl_s=levels.expire_s if critical else 0,
            detected_ms=at,
            node=NODE,
        )
        detection = Detection(event, o, blacklist_gateway, expires, critical and would_block)
        if critical and blocks:
            board.block(detection)
        else:
            board.report(detection)
        detections.append(detection)
    board.flush()
    return detections


# -- the live board


def matches(subject: str, call: dict, blacklist_gateway: int | None) -> bool:
    """Whether a live call (the registry's JSON) is one the entry refuses."""
    if blacklist_gateway is not None and call.get("mapping_gateway_id") != blacklist_gateway:
        return False
    kind, value = parse_subject(subject)
    if kind is SubjectKind.NUMBER:
        return value in (call.get("caller"), call.get("callee"))
    if kind is SubjectKind.ACCOUNT:
        return str(call.get("account_id")) == value
    return False  # a high-risk account entry: only the call core knows which calls are high risk


class RedisBoard(Board):
    """The live board: blocks in the dynamic-blacklist sorted sets, events on the fraud stream, the live calls
    that match a new block asked to end. Two round trips, and only for a batch that reached a level."""

    def __init__(self, client: redis.Redis, keys: Keys):
        self.client = client
        self.keys = keys
        self._exempt: dict[str, float] = {}
        self._listed: dict[tuple[str, int | None], float] = {}
        self._live: dict[str, dict] | None = None
        self._pending: list[tuple[Detection, bool]] = []

    def load(self, candidates):
        self._exempt, self._listed, self._live = {}, {}, None
        pairs = list(dict.fromkeys(candidates))
        if not pairs:
            return
        pipe = self.client.pipeline(transaction=False)
        for subject, gateway in pairs:
            pipe.zscore(self.keys.fraud_exempt, subject)
            pipe.zscore(self.keys.dynamic_blacklist(gateway), subject)
        pipe.hgetall(self.keys.live_calls)
        replies = pipe.execute()
        for n, (subject, gateway) in enumerate(pairs):
            self._exempt[subject] = replies[2 * n] or 0
            self._listed[subject, gateway] = replies[2 * n + 1] or 0
        self._live = {}
        for call_id, raw in replies[-1].items():
            try:
                self._live[call_id.decode() if isinstance(call_id, bytes) else call_id] = json.loads(raw)
            except ValueError:
                continue  # not ours to judge: the registry's owner cleans it

    def exempt(self, subject, now_ms):
        return self._exempt.get(subject, 0) > now_ms

    def blocked(self, subject, gateway, now_ms):
        return self._listed.get((subject, gateway), 0) > now_ms

    def block(self, detection):
        self._listed[detection.event.subject, detection.blacklist_gateway] = detection.expires_ms
        self._pending.append((detection, True))

    def report(self, detection):
        self._pending.append((detection, False))

    def flush(self):
        pending, self._pending = self._pending, []
        if not pending:
            return
        pipe = self.client.pipeline(transaction=False)
        for detection, blocks in pending:
            event = detection.event
            if blocks:
                # GT: an entry another rule or an admin set for longer keeps its expiry.
                pipe.zadd(self.keys.dynamic_blacklist(detection.blacklist_gateway),
                          {event.subject: detection.expires_ms}, gt=True)  # fmt: skip
                for call_id, call in (self._live or {}).items():
                    if call.get("node") and matches(event.subject, call, detection.blacklist_gateway):
                        request = encode_disconnect(call_id, EndReason.DYNAMIC_BLACKLISTED.code, f"{NODE}:{event.rule}")
                        pipe.rpush(self.keys.disconnects(call["node"]), request)
            pipe.xadd(self.keys.fraud_events, {EVENT_FIELD: encode_event(event)},
                      maxlen=FRAUD_EVENTS_MAXLEN, approximate=True)  # fmt: skip
        pipe.execute()


class MemoryBoard(Board):
    """The review run's board: blocks kept in memory with their expiry, exemptions read once beforehand."""

    def __init__(self, exempt: dict[str, float] | None = None):
        self.exemptions = exempt or {}
        self.listed: dict[tuple[str, int | None], int] = {}
        self.detections: list[Detection] = []

    def exempt(self, subject, now_ms):
        return self.exemptions.get(subject, 0) > now_ms

    def blocked(self, subject, gateway, now_ms):
        return self.listed.get((subject, gateway), 0) > now_ms

    def block(self, detection):
        self.listed[detection.event.subject, detection.blacklist_gateway] = detection.expires_ms
        self.detections.append(detection)

    def report(self, detection):
        self.detections.append(detection)


# -- the ingest's hook


class PostCallRules:
    """The ingest's evaluator: the context kept for ``recheck`` seconds (each account's spend history for
    ``spend_recheck``), a Redis client of its own, and ``after_store`` called with the rows a batch inserted."""

    def __init__(self, recheck: float = 5.0, spend_recheck: float = 3600.0):
        self.recheck = recheck
        self.spend_recheck = spend_recheck
        self.ctx: Context | None = None
        self._next_check = 0.0
        self._spend_due: dict[int, float] = {}
        self._client: redis.Redis | None = None
        self._windows: dict[str, tuple[RedisWindows, RedisBoard]] = {}

    def reset(self) -> None:
        """Forget what was loaded (parameters, lists, spend history): the next batch reads them again."""
        self.ctx, self._next_check, self._spend_due, self._windows = None, 0.0, {}, {}

    def context(self, account_ids: Iterable[int]) -> Context:
        now = time.monotonic()
        if self.ctx is None or now >= self._next_check:
            spend = self.ctx.daily_spend if self.ctx is not None else {}
            self.ctx = load_context()
            self.ctx.daily_spend = spend
            self._next_check = now + self.recheck
        levels = self.ctx.enabled(FraudRule.SPEND_VELOCITY_ACTUAL)
        if levels:
            stale = {a for a in account_ids if a is not None and self._spend_due.get(a, 0.0) <= now}
            if stale:
                # History up to the window's start: the spend being judged does not raise its own limit.
                until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=levels.window_s)
                self.ctx.daily_spend.update(daily_spend(stale, until))
                self._spend_due.update(dict.fromkeys(stale, now + self.spend_recheck))
        return self.ctx

    def _redis(self, prefix: str) -> tuple[RedisWindows, RedisBoard]:
        if self._client is None:
            self._client = redis_client(Waiter.JOB, name="ss-ingest:fraud")
        if prefix not in self._windows:
            keys = Keys(prefix)
            self._windows[prefix] = RedisWindows(self._client, keys), RedisBoard(self._client, keys)
        return self._windows[prefix]

    def after_store(self, records: Sequence[dict], prefix: str) -> list[Detection]:
        """Evaluate the rows one batch inserted (their values), after its commit."""
        if not records:
            return []
        ctx = self.context(r.get("account_id") for r in records)
        if not any(ctx.enabled(rule) for rule in POST_CALL_RULES):
            return []
        windows, board = self._redis(prefix)
        ordered = sorted(records, key=lambda v: (end_of(v), v["call_uuid"]))
        return evaluate(ordered, ctx, windows, board)


rules = PostCallRules()
