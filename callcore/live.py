"""Live state of the switch in Redis: concurrency slots, CPS windows, dynamic blacklist,
balance reservations and the registry of live calls.

The hot path makes exactly one round trip at call setup (``LiveState.setup``)
and one at teardown (``LiveState.teardown``, which also appends the CDR). Both
are Lua scripts, so every check and every write of a call happens atomically
across all call-core nodes sharing this Redis.

Slots are sorted sets (member = call id, score = expiry in ms): a call that
fails, is cancelled or times out removes its members at teardown, and the
slots of a node that crashed fall out by themselves once their expiry passes,
because every acquire first drops expired members. An account's reservations
keep a running total (``...:resv:{id}:sum``) and an expiry index
(``...:resv:{id}:exp``) beside the hash, derived from its key inside the
scripts, so checking the balance does not scan every live call. Money is counted in
integer ten-thousandths (the portal's 4 decimal places), which Lua's doubles
hold exactly up to 2^53.

When Redis does not answer within the timeout, each check has a stated policy
(``FAIL_POLICY``): capacity, CPS and the dynamic blacklist fail open (the
static screening from the snapshot still applies and carrier traffic keeps
flowing), the balance check fails closed for anti-overdraft accounts (the
switch must not give away calls it cannot charge) and open for the others.
"""

from __future__ import annotations

import logging
import time

import redis

from callcore.cdr import dumps, loads
from callcore.contract import (
    HOLD_OR_RELEASE_LUA,
    PENDING_DEBIT_HOLD_MS,
    RELEASE_LOST_LUA,
    EndReason,
    FraudRule,
    Keys,
    account_high_risk_subject,
    account_subject,
    decode_answered,
    from_units,
    lost_call_record,
    pending_debit_field,
    release_lost_args,
    release_lost_keys,
    to_units,
)
from callcore.resp import RespClient, Script

# Declared with no I/O for decide; still importable from here, where the live state answers them.
from callcore.setup_types import FAIL_POLICY, LiveStatus, RouteLimit, SetupRequest, SetupResult  # noqa: F401

log = logging.getLogger("callcore.live")

# The answers given after the balance was computed; the earlier refusals never looked at it.
_BALANCE_COUNTED = frozenset({LiveStatus.OK, LiveStatus.BALANCE_INSUFFICIENT, LiveStatus.ROUTES_BUSY})

# A set-up rule's end reason (of its refusal, and of the live calls its block ends) and its answer.
_FRAUD_REFUSALS = {
    FraudRule.MALICIOUS_CALLER: (EndReason.FRAUD_MALICIOUS_CALLER.code, LiveStatus.FRAUD_MALICIOUS_CALLER),
    FraudRule.CONCURRENT_CALLER: (EndReason.FRAUD_CONCURRENT_CALLER.code, LiveStatus.FRAUD_CONCURRENT_CALLER),
    FraudRule.HIGH_RISK_RATE: (EndReason.FRAUD_HIGH_RISK_RATE.code, LiveStatus.FRAUD_HIGH_RISK_RATE),
    FraudRule.SPEND_VELOCITY: (EndReason.FRAUD_SPEND_VELOCITY.code, LiveStatus.FRAUD_SPEND_VELOCITY),
    FraudRule.NEW_DESTINATION: (EndReason.FRAUD_NEW_DESTINATION.code, LiveStatus.FRAUD_NEW_DESTINATION),
}


# KEYS: 1 mapping-gw slots, 2 account slots, 3 phone slots, 4 mapping-gw cps, 5 switch cps,
#       ('' for 1, 3 and 4 when the call has no mapping gateway / no phone)
#       6 central dynamic blacklist, 7 gateway dynamic blacklist, 8 live balance, 9 reservations,
#       10 live-call registry, 11 registry expiry index, then per candidate route: slots, cps
# ARGV: 1 call id, 2 now ms, 3 slot expiry ms, 4 mapping cap, 5 account cap, 6 phone cap,
#       7 mapping cps, 8 switch cps, 9 caller, 10 callee, 11 balance mode (0 none, 1 check),
#       12 credit units, 13 snapshot balance units, 14 reservation units, 15 registry json,
#       16 minimum available units, 17 the fraud check as JSON ('' = no rule; LiveState._fraud_json),
#       then per candidate route: cap, cps
SETUP_LUA = r"""
local call_id = ARGV[1]
local now = tonumber(ARGV[2])
local expiry = tonumber(ARGV[3])
local second = math.floor(now / 1000)

local function live_count(key)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  return redis.call('ZCARD', key)
end
local function full(key, cap)
  return key ~= '' and cap > 0 and live_count(key) >= cap
end
local function take(key)
  if key == '' then return end
  -- also where no capacity is counted: a crashed node's members must not pile up for ever
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  redis.call('ZADD', key, expiry, call_id)
end
local function cps_over(key, limit)
  if key == '' or limit <= 0 then return false end
  local n = tonumber(redis.call('GET', key .. ':' .. second) or '0')
  return n >= limit
end
local function cps_take(key, limit)
  if key == '' or limit <= 0 then return end
  local k = key .. ':' .. second
  redis.call('INCR', k)
  redis.call('EXPIRE', k, 2)
end
local function listed(key, number)
  if number == '' then return false end
  local until_ms = redis.call('ZSCORE', key, number)
  return until_ms and tonumber(until_ms) > now
end
-- Reservations: a hash (call -> "amount:expiry"), a running total and an expiry index,
-- so a setup costs O(log n) however many calls the account has up (not a scan of them all).
local function release_reservation(hash, id)
  local held = redis.call('HGET', hash, id)
  if held then
    redis.call('DECRBY', hash .. ':sum', tonumber(string.match(held, '^(%-?%d+)')))
    redis.call('HDEL', hash, id)
  end
  redis.call('ZREM', hash .. ':exp', id)
end


-- Anti-fraud set-up rules (contract.fraud), judged on a call every other check admitted. A rule counts the
-- call in its sliding window (a sorted set, no reset at any boundary); at its warning level it reports, at
-- its critical level it blocks the rule's subject in the dynamic blacklist (unless report-only or exempt),
-- asks the nodes holding the live calls that match the new entry to end them, and refuses this call.
local function fraud_count(key, window)
  redis.call('ZADD', key, now, call_id)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  redis.call('PEXPIRE', key, window)
  return redis.call('ZCARD', key)
end
-- A sum over the window: members "amount:call id", a running total beside, lazily reduced.
local function fraud_sum(key, window, amount)
  local total = tonumber(redis.call('GET', key .. ':sum') or '0')
  local gone = redis.call('ZRANGEBYSCORE', key, '-inf', now - window)
  for _, m in ipairs(gone) do total = total - tonumber(string.match(m, '^(%d+):')) end
  if #gone > 0 then redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window) end
  if total < 0 or redis.call('EXISTS', key) == 0 then total = 0 end
  total = total + amount
  redis.call('ZADD', key, now, amount .. ':' .. call_id)
  redis.call('SET', key .. ':sum', total, 'PX', window)
  redis.call('PEXPIRE', key, window)
  return total
end
local function evidence(key)
  local out = {}
  for _, m in ipairs(redis.call('ZRANGE', key, -20, -1)) do
    out[#out + 1] = string.match(m, '^%d+:(.+)$') or m
  end
  if #out == 0 then out[1] = call_id end
  return out
end
local function matches(subject, call)
  local account = string.match(subject, '^acct:(%d+)')
  if account then
    if tostring(call.account_id) ~= account then return false end
    return string.sub(subject, -3) ~= ':hr' or call.hr == 1
  end
  return call.caller == subject or call.callee == subject
end
local function fraud_judge(f, spec, count, previous, warning, critical, subject, key)
  local name, report_only, expire = spec[1], spec[6] == 1, spec[5]
  local crossed_warning = warning > 0 and previous < warning and count >= warning
  local at_critical = critical > 0 and count >= critical
  if not crossed_warning and not at_critical then return false end
  local severity, blocked = 'warning', false
  if at_critical then
    severity = 'critical'
    local exempt = tonumber(redis.call('ZSCORE', f.k.exempt, subject) or '0') > now
    blocked = not report_only and not exempt
    -- Counted on: a report-only or exempt critical is reported when crossed, not at every call after.
    if not blocked and previous >= critical then
      if not crossed_warning then return false end
      severity = 'warning'
    end
  end
  local event = {
    rule = name, severity = severity, subject = subject, scope = f.scope,
    mapping_gateway_id = f.scope == 'gateway' and f.blgw or cjson.null, account_id = f.acct,
    figures = {count = count, window_s = math.floor(spec[4] / 1000), warning = warning, critical = critical},
    evidence = evidence(key), blocked = blocked, ttl_s = blocked and math.floor(expire / 1000) or 0,
    detected_ms = now, node = f.node,
  }
  redis.call('XADD', f.k.events, 'MAXLEN', '~', 100000, '*', 'e', cjson.encode(event))
  if not blocked then return false end
  redis.call('ZADD', f.k.blacklist, 'GT', now + expire, subject)
  local registry = redis.call('HGETALL', KEYS[10])
  for i = 1, #registry, 2 do
    local ok, call = pcall(cjson.decode, registry[i + 1])
    if ok and call.node and matches(subject, call) and (f.scope ~= 'gateway' or call.mapping_gateway_id == f.blgw) then
      -- contract.DisconnectRequest's fields
      redis.call('RPUSH', f.k.disconnects .. call.node,
        cjson.encode({call_id = registry[i], end_reason = spec[7], by = f.node .. ':' .. name}))
    end
  end
  return true
end
local function fraud_rules(f)
  for _, spec in ipairs(f.rules) do
    local name, warning, critical, window = spec[1], spec[2], spec[3], spec[4]
    local count, previous, subject, key = nil, nil, nil, nil
    if name == 'malicious_caller' and f.caller ~= '' and f.callee ~= '' then
      key, subject = f.k.malicious, f.caller
      count = fraud_count(key, window)
      previous = count - 1
    elseif name == 'concurrent_caller' and f.caller ~= '' then
      key, subject = f.k.concurrent, f.caller
      previous = live_count(key)
      count = previous + 1
    elseif name == 'high_risk_rate' and f.hr == 1 then
      key, subject = f.k.high_risk, f.ahs
      count = fraud_count(key, window)
      previous = count - 1
    elseif name == 'spend_velocity' and f.spend > 0 then
      key, subject = f.k.spend, f.as
      count = fraud_sum(key, window, f.spend)
      previous = count - f.spend
      local daily = tonumber(redis.call('HGET', f.k.daily, tostring(f.acct)) or '0')
      warning = warning > 0 and math.max(f.floor, math.floor(daily * warning / 100)) or 0
      critical = critical > 0 and math.max(f.floor, math.floor(daily * critical / 100)) or 0
    elseif name == 'new_destination' and f.cc ~= '' then
      -- Judged once the account has a history (its first call a window ago): before that every country is new.
      local since = tonumber(redis.call('HGET', f.k.destinations, '_since') or '0')
      local first = tonumber(redis.call('HGET', f.k.destinations, f.cc) or '0')
      if since == 0 then redis.call('HSET', f.k.destinations, '_since', now) end
      if first == 0 then redis.call('HSET', f.k.destinations, f.cc, now); first = now end
      if since > 0 and now - since >= window and now - first < window then
        key, subject = f.k.new_destination, f.as
        count = fraud_count(key, window)
        previous = count - 1
      end
    end
    if count and fraud_judge(f, spec, count, previous, warning, critical, subject, key) then
      return spec[8]
    end
  end
  return 0
end

local fraud = nil
if ARGV[17] ~= '' then fraud = cjson.decode(ARGV[17]) end

-- checks first, writes after: a refused call leaves nothing behind (but its count in the fraud windows)
if listed(KEYS[6], ARGV[9]) or listed(KEYS[7], ARGV[9]) then return {6, 0, -1} end
if listed(KEYS[6], ARGV[10]) or listed(KEYS[7], ARGV[10]) then return {7, 0, -1} end
if fraud and (listed(KEYS[6], fraud.as) or listed(KEYS[7], fraud.as)
    or fraud.hr == 1 and (listed(KEYS[6], fraud.ahs) or listed(KEYS[7], fraud.ahs))) then
  return {11, 0, -1}
end
if cps_over(KEYS[5], tonumber(ARGV[8])) then return {5, 0, -1} end
if cps_over(KEYS[4], tonumber(ARGV[7])) then return {4, 0, -1} end
if full(KEYS[1], tonumber(ARGV[4])) then return {1, 0, -1} end
if full(KEYS[2], tonumber(ARGV[5])) then return {2, 0, -1} end
if full(KEYS[3], tonumber(ARGV[6])) then return {3, 0, -1} end

local available = 0
local reserve = tonumber(ARGV[14])
if ARGV[11] == '1' then
  local balance = tonumber(redis.call('GET', KEYS[8]) or ARGV[13])
  -- a crashed node's reservations lapse: purge a bounded number of expired ones per setup
  local expired = redis.call('ZRANGEBYSCORE', KEYS[9] .. ':exp', '-inf', now, 'LIMIT', 0, 50)
  for _, id in ipairs(expired) do release_reservation(KEYS[9], id) end
  local reserved = tonumber(redis.call('GET', KEYS[9] .. ':sum') or '0')
  local own = redis.call('HGET', KEYS[9], call_id)
  if own then reserved = reserved - tonumber(string.match(own, '^(%-?%d+)')) end
  available = balance + tonumber(ARGV[12]) - reserved
  if available < reserve or available < tonumber(ARGV[16]) or available <= 0 then return {8, available, -1} end
end

local route = -1
local ncand = (#KEYS - 11) / 2
for i = 0, ncand - 1 do
  local cap = tonumber(ARGV[18 + 2 * i])
  local limit = tonumber(ARGV[19 + 2 * i])
  if not full(KEYS[12 + 2 * i], cap) and not cps_over(KEYS[13 + 2 * i], limit) then
    route = i
    break
  end
end
if ncand > 0 and route < 0 then return {9, available, -1} end
if fraud then
  local refused = fraud_rules(fraud)
  if refused > 0 then return {refused, available, -1} end
end

cps_take(KEYS[5], tonumber(ARGV[8]))
cps_take(KEYS[4], tonumber(ARGV[7]))
take(KEYS[1])
take(KEYS[2])
take(KEYS[3])
if ARGV[11] == '1' then
  release_reservation(KEYS[9], call_id)
  redis.call('HSET', KEYS[9], call_id, reserve .. ':' .. expiry)
  redis.call('INCRBY', KEYS[9] .. ':sum', reserve)
  redis.call('ZADD', KEYS[9] .. ':exp', expiry, call_id)
end
if route >= 0 then
  take(KEYS[12 + 2 * route])
  cps_take(KEYS[13 + 2 * route], tonumber(ARGV[19 + 2 * route]))
end
-- the caller's live calls, for the concurrent-caller rule (given back at teardown with the slots)
if fraud and fraud.k.concurrent ~= '' then take(fraud.k.concurrent) end
-- Calls past their expiry went down with a crashed node (a live call tears itself down): a few
-- leave the registry at each setup, so the live-call list never shows ghosts, at bounded cost.
local lost = redis.call('ZRANGEBYSCORE', KEYS[11], '-inf', now, 'LIMIT', 0, 8)
if #lost > 0 then
  redis.call('HDEL', KEYS[10], unpack(lost))
  redis.call('HDEL', KEYS[10] .. ':answered', unpack(lost))
  redis.call('ZREM', KEYS[11], unpack(lost))
end
redis.call('HSET', KEYS[10], call_id, ARGV[15])
redis.call('ZADD', KEYS[11], expiry, call_id)
return {0, available, route}
"""

# Failover: give back the failed route's slot and take the next free one.
# KEYS: 1 previous route slots (or ''), then per remaining candidate: slots, cps
# ARGV: 1 call id, 2 now ms, 3 slot expiry ms, then per candidate: cap, cps
NEXT_ROUTE_LUA = r"""
local call_id = ARGV[1]
local now = tonumber(ARGV[2])
local expiry = tonumber(ARGV[3])
local second = math.floor(now / 1000)
if KEYS[1] ~= '' then redis.call('ZREM', KEYS[1], call_id) end
local ncand = (#KEYS - 1) / 2
for i = 0, ncand - 1 do
  local slots, cps = KEYS[2 + 2 * i], KEYS[3 + 2 * i]
  local cap, limit = tonumber(ARGV[4 + 2 * i]), tonumber(ARGV[5 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
  local ok = cap <= 0 or redis.call('ZCARD', slots) < cap
  local k = cps .. ':' .. second
  if ok and limit > 0 and tonumber(redis.call('GET', k) or '0') >= limit then ok = false end
  if ok then
    redis.call('ZADD', slots, expiry, call_id)
    if limit > 0 then redis.call('INCR', k); redis.call('EXPIRE', k, 2) end
    return i
  end
end
return -1
"""

# Teardown: release every slot, drop the call from the registry (and its kept answer, Keys.live_answered)
# and append its CDR, atomically. The reservation of a call that will be charged is not freed but kept as
# its pending debit (contract.pending_debit_field) until the ingest has debited the balance: freed here, the
# money the call spent would look available to the account's other calls until then.
# contract.RELEASE_LOST_LUA releases the same keys for a call its node lost: change both together.
# KEYS: 1 reservations, 2 registry, 3 registry expiry index, 4 CDR stream, then slot keys
# ARGV: 1 call id, 2 CDR json ('' = no CDR), 3 the node's grant index (Keys.grants; '' or absent = none),
#       4 pending-debit field ('' or absent = the call is not charged), 5 the pending debit's expiry ms
TEARDOWN_LUA = (
    HOLD_OR_RELEASE_LUA
    + r"""
local call_id = ARGV[1]
hold_or_release(KEYS[1], call_id, ARGV[4], ARGV[5])
redis.call('HDEL', KEYS[2], call_id)
redis.call('HDEL', KEYS[2] .. ':answered', call_id)
redis.call('ZREM', KEYS[3], call_id)
for i = 5, #KEYS do redis.call('ZREM', KEYS[i], call_id) end
if ARGV[3] and ARGV[3] ~= '' then
  redis.call('ZREM', ARGV[3], call_id)
  redis.call('HDEL', ARGV[3] .. ':calls', call_id)
end
if ARGV[2] ~= '' then
  return redis.call('XADD', KEYS[4], '*', 'cdr', ARGV[2])
end
return false
"""
)


# Quota grants (decide.Grant): a node's answered calls that need its grant timer, in a renewal index
# (sorted set, call id -> due ms) with the grants in the hash ``{index}:calls``.
# At the answer: index the call, unless its teardown already came.
# KEYS: 1 grant index, 2 live-call registry  ARGV: 1 call id, 2 due ms, 3 grant json
# The contacts a REGISTER saved (contract.registrations), and the expired ones of every node dropped.
# KEYS: 1 registrations, 2 their expiry index
# ARGV: 1 now ms, 2 a field prefix whose contacts all go ("*": "node|aor|", else ''), then per contact:
#       field, expiry ms (at or before now: removed), Registration JSON
REGISTER_LUA = r"""
local now = tonumber(ARGV[1])
if ARGV[2] ~= '' then
  for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    if string.sub(m, 1, #ARGV[2]) == ARGV[2] then
      redis.call('HDEL', KEYS[1], m)
      redis.call('ZREM', KEYS[2], m)
    end
  end
end
for i = 3, #ARGV, 3 do
  local field, expiry = ARGV[i], tonumber(ARGV[i + 1])
  if expiry > now then
    redis.call('HSET', KEYS[1], field, ARGV[i + 2])
    redis.call('ZADD', KEYS[2], expiry, field)
  else
    redis.call('HDEL', KEYS[1], field)
    redis.call('ZREM', KEYS[2], field)
  end
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 100)
for _, m in ipairs(expired) do redis.call('HDEL', KEYS[1], m) end
if #expired > 0 then redis.call('ZREM', KEYS[2], unpack(expired)) end
return #expired
"""

GRANT_START_LUA = r"""
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1] .. ':calls', ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
"""

# The timer's look at its node's index: the calls due, with their grants.
# KEYS: 1 grant index  ARGV: 1 now ms, 2 most calls
GRANTS_DUE_LUA = r"""
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ids == 0 then return {} end
local grants = redis.call('HMGET', KEYS[1] .. ':calls', unpack(ids))
local out = {}
for i, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = grants[i] or ''
end
return out
"""

# One renewal: the call's reservation grows to cover its talk so far and its next grant, if the account's
# money (balance + credit - every other live call's reservation, on every node) covers it. Answers 1
# renewed, 0 exhausted (the call must end; its reservation stays until its teardown), -1 the call is gone.
# KEYS: 1 the account's reservations, 2 its live balance, 3 grant index
# ARGV: 1 call id, 2 reservation units, 3 credit units, 4 snapshot balance units, 5 next due ms, 6 grant json
RENEW_LUA = r"""
local id = ARGV[1]
local held = redis.call('HGET', KEYS[1], id)
if not held or not redis.call('ZSCORE', KEYS[3], id) then
  redis.call('ZREM', KEYS[3], id)
  redis.call('HDEL', KEYS[3] .. ':calls', id)
  return -1
end
local own = tonumber(string.match(held, '^(%-?%d+)'))
local expiry = string.match(held, ':(%d+)$')
local want = tonumber(ARGV[2])
local balance = tonumber(redis.call('GET', KEYS[2]) or ARGV[4])
local others = tonumber(redis.call('GET', KEYS[1] .. ':sum') or '0') - own
if balance + tonumber(ARGV[3]) - others < want then
  redis.call('ZREM', KEYS[3], id)
  redis.call('HDEL', KEYS[3] .. ':calls', id)
  return 0
end
redis.call('HSET', KEYS[1], id, want .. ':' .. expiry)
redis.call('INCRBY', KEYS[1] .. ':sum', want - own)
redis.call('ZADD', KEYS[3], ARGV[5], id)
redis.call('HSET', KEYS[3] .. ':calls', id, ARGV[6])
return 1
"""

# Grant renewal answers.
RENEWED, EXHAUSTED, GONE = 1, 0, -1


def _pending_args(call_uuid: str, now_ms: int | None = None) -> tuple[str, int]:
    """TEARDOWN_LUA's pending-debit arguments: the field and its expiry ('' when the call is not charged)."""
    if not call_uuid:
        return "", 0
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    return pending_debit_field(call_uuid), now_ms + PENDING_DEBIT_HOLD_MS


class LiveState:
    """The call core's narrow interface to Redis for live counters.

    Opens its connection lazily and again after a fork: Kamailio forks its
    workers after loading the script, and a socket must never be shared
    across processes.
    """

    def __init__(self, url: str, prefix: str, timeout: float = 0.25, client_name: str | None = None):
        self.url = url
        self.keys = Keys(prefix)
        self.timeout = timeout
        # The hot path's own connection (callcore.resp): the three scripts of a call go through it.
        self._hot = {"setup": Script(SETUP_LUA), "next_route": Script(NEXT_ROUTE_LUA), "teardown": Script(TEARDOWN_LUA)}
        self.resp = RespClient(url, timeout=timeout, name=client_name, scripts=self._hot.values())
        self._release_lost = Script(RELEASE_LOST_LUA)  # at a node's start only: loaded when first run
        # The grant timer's scripts (one process per node), and the answer's.
        self._grants = {"start": Script(GRANT_START_LUA), "due": Script(GRANTS_DUE_LUA), "renew": Script(RENEW_LUA)}
        self._register = Script(REGISTER_LUA)

    def setup(self, req: SetupRequest, now_ms: int | None = None) -> SetupResult:
        now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        k = self.keys
        has_gateway = req.mapping_gateway_id is not None
        keys = [
            k.slots("mgw", req.mapping_gateway_id) if has_gateway else "",
            k.slots("account", req.account_id),
            k.slots("phone", req.phone_id) if req.phone_id is not None else "",
            k.cps("mgw", req.mapping_gateway_id) if has_gateway else "",
            k.cps("switch", "all"),
            k.dynamic_blacklist(),
            k.dynamic_blacklist(req.dynamic_blacklist_gateway),
            k.balance(req.account_id),
            k.reservations(req.account_id),
            k.live_calls,
            k.live_calls_expiry,
        ]
        args = [
            req.call_id, now_ms, req.expiry_ms, req.mapping_capacity, req.account_capacity, req.phone_capacity,
            req.mapping_cps, req.switch_cps, req.caller, req.callee, "1" if req.check_balance else "0",
            to_units(req.credit_limit), to_units(req.snapshot_balance), to_units(req.reservation),
            dumps(req.registry), to_units(req.minimum_available), self._fraud_json(req),
        ]  # fmt: skip
        for route in req.routes:
            keys += [k.slots("rgw", route.gateway_id), k.cps("rgw", route.gateway_id)]
            args += [route.capacity, route.cps_limit]
        try:
            status, available, index = self.resp.run(self._hot["setup"], keys, args)
        except redis.RedisError as exc:
            log.warning("live state unavailable at setup of %s: %r", req.call_id, exc)
            return SetupResult(LiveStatus.UNAVAILABLE, None, -1)
        status = LiveStatus(status)
        # Refusals before the balance check never computed it: say "unknown", not 0.
        counted = req.check_balance and status in _BALANCE_COUNTED
        return SetupResult(status, from_units(available) if counted else None, index)

    def _fraud_json(self, req: SetupRequest) -> str:
        """SETUP_LUA's fraud argument: the call's facts for the rules, their levels and every key they use."""
        fraud = req.fraud
        if fraud is None or not fraud.rules:
            return ""
        k = self.keys
        account, high_risk = account_subject(req.account_id), account_high_risk_subject(req.account_id)
        pair = f"{fraud.caller}>{fraud.callee}"
        gateway = fraud.scope_gateway
        return dumps({
            "node": fraud.node, "acct": req.account_id, "blgw": gateway, "scope": "gateway" if gateway else "central",
            "caller": fraud.caller, "callee": fraud.callee, "hr": 1 if fraud.high_risk else 0, "cc": fraud.country,
            "spend": fraud.spend_units, "floor": fraud.spend_floor, "as": account, "ahs": high_risk,
            "rules": [
                [r.rule, r.warning, r.critical, r.window_ms, r.expire_ms, 1 if r.report_only else 0,
                 *_FRAUD_REFUSALS[r.rule]]
                for r in fraud.rules
            ],
            "k": {
                "events": k.fraud_events, "exempt": k.fraud_exempt, "blacklist": k.dynamic_blacklist(gateway),
                "daily": k.fraud_daily_spend, "destinations": k.fraud_destinations(req.account_id),
                "disconnects": k.disconnects(""),
                "malicious": k.fraud_window(FraudRule.MALICIOUS_CALLER, pair),
                "concurrent": k.fraud_window(FraudRule.CONCURRENT_CALLER, fraud.caller) if fraud.caller else "",
                "high_risk": k.fraud_window(FraudRule.HIGH_RISK_RATE, high_risk),
                "spend": k.fraud_window(FraudRule.SPEND_VELOCITY, account),
                "new_destination": k.fraud_window(FraudRule.NEW_DESTINATION, f"{account}:{fraud.country}"),
            },
        })  # fmt: skip

    def next_route(self, call_id, previous_gateway_id, routes: list[RouteLimit], expiry_ms, now_ms=None) -> int:
        """Index into ``routes`` of the next route with a free slot (taken), -1 if none, -2 if Redis is away."""
        now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        k = self.keys
        keys = [k.slots("rgw", previous_gateway_id) if previous_gateway_id is not None else ""]
        args = [call_id, now_ms, expiry_ms]
        for route in routes:
            keys += [k.slots("rgw", route.gateway_id), k.cps("rgw", route.gateway_id)]
            args += [route.capacity, route.cps_limit]
        try:
            return int(self.resp.run(self._hot["next_route"], keys, args))
        except redis.RedisError as exc:
            log.warning("live state unavailable at failover of %s: %r", call_id, exc)
            return -2

    def release_node(self, node: str, now_ms: int | None = None) -> int:
        """Tear down every call the registry holds for ``node``, each with its CDR; how many this call released.

        For a node starting afresh: Kamailio keeps its dialogs in memory, so none of the calls it
        had before a crash or restart is still up here. Without this their slots and reservations
        would stay taken until their expiry, the max duration plus a minute (two hours by default),
        and the calls would have no CDR at all. An answered call is charged up to the node's last
        heartbeat (contract.lost); a call the worker's lost-node job released first is skipped.
        Read the heartbeat before this node beats again. Raises RedisError when Redis does not answer.
        """
        now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        k = self.keys
        flat = self.resp.execute("HGETALL", k.live_calls) or []
        calls = ((c, raw, loads(raw)) for c, raw in zip(flat[::2], flat[1::2], strict=True))
        mine = [call for call in calls if call[2].get("node") == node]
        if not mine:
            return 0
        beat = self.resp.execute("HGET", k.heartbeats, node)
        released = 0
        for call_id, raw, entry in mine:
            call_id = call_id.decode() if isinstance(call_id, bytes) else call_id
            answered = self.resp.execute("HGET", k.live_answered, call_id)
            record = lost_call_record(
                call_id, entry, node, now_ms,
                answered=decode_answered(answered) if answered else None,
                heartbeat_ms=int(beat) if beat is not None else None,
            )  # fmt: skip
            args = release_lost_args(call_id, raw, record, now_ms)
            released += self.resp.run(self._release_lost, release_lost_keys(k, entry), args)
        return released

    def _teardown_keys(self, account_id, slot_keys: list[str]) -> list[str]:
        k = self.keys
        return [k.reservations(account_id), k.live_calls, k.live_calls_expiry, k.cdr_stream, *slot_keys]

    def teardown_later(
        self, call_id, account_id, slot_keys: list[str], cdr_json: str, spool, grants="", pending=""
    ) -> None:
        """``teardown`` without waiting for Redis: its reply is read with this process's next command.

        If Redis refuses it, or the connection breaks before its reply is read, the CDR goes to
        ``spool`` then (with a broken connection the script may have run: the ingest takes each
        call once, and the slots expire). A refusal for an unknown script runs it again, waiting.
        For processes that talk to Redis call after call (the SIP workers): a refusal is only
        noticed at the next command.
        """
        keys = self._teardown_keys(account_id, slot_keys)
        script = self._hot["teardown"]

        def failed(error):
            if isinstance(error, redis.ResponseError) and str(error).startswith("NOSCRIPT"):
                if self.teardown(call_id, account_id, slot_keys, cdr_json, grants, pending):
                    return
            else:
                log.warning("live state unavailable at teardown of %s: %r", call_id, error)
            if cdr_json:
                spool(cdr_json)

        args = (call_id, cdr_json, grants, *_pending_args(pending))
        self.resp.send(("EVALSHA", script.sha, len(keys), *keys, *args), failed)

    def teardown(
        self, call_id, account_id, slot_keys: list[str], cdr_json: str = "", grants: str = "", pending: str = "",
        now_ms: int | None = None,
    ) -> bool:  # fmt: skip
        """Release the call and append its CDR (and drop it from the node's grant index ``grants``);
        False when Redis did not take it (spool the CDR).

        ``pending``: the CDR's call_uuid when the call is charged: its reservation stays held as the
        pending debit of that CDR (contract.pending) until the ingest has debited it.
        """
        try:
            keys = self._teardown_keys(account_id, slot_keys)
            self.resp.run(self._hot["teardown"], keys, [call_id, cdr_json, grants, *_pending_args(pending, now_ms)])
            return True
        except redis.RedisError as exc:
            log.warning("live state unavailable at teardown of %s: %r", call_id, exc)
            return False

    # -- quota grants (decide.Grant), renewed by the node's grant timer

    def grant_start_later(self, index_key: str, call_id: str, due_ms: int, grant_json: bytes) -> None:
        """Index an answered call for its node's grant timer, without waiting (its reply is read later)."""
        script = self._grants["start"]
        keys = [index_key, self.keys.live_calls]

        def failed(error):
            if isinstance(error, redis.ResponseError) and str(error).startswith("NOSCRIPT"):
                self.grant_start(index_key, call_id, due_ms, grant_json)
            else:
                log.warning("live state unavailable at the answer of %s: %r", call_id, error)

        self.resp.send(("EVALSHA", script.sha, len(keys), *keys, call_id, due_ms, grant_json), failed)

    def grant_start(self, index_key: str, call_id: str, due_ms: int, grant_json: bytes) -> bool:
        """Index an answered call for its node's grant timer; False when its teardown already came."""
        keys = [index_key, self.keys.live_calls]
        return bool(self.resp.run(self._grants["start"], keys, [call_id, due_ms, grant_json]))

    def grants_due(self, index_key: str, now_ms: int, most: int = 1000) -> list[tuple[str, bytes]]:
        """The calls of the index due by ``now_ms`` with their grants (b'' for one without)."""
        flat = self.resp.run(self._grants["due"], [index_key], [now_ms, most]) or []
        return [(c.decode() if isinstance(c, bytes) else c, g) for c, g in zip(flat[::2], flat[1::2], strict=True)]

    def renew_grant(
        self, index_key, call_id, account_id, units, credit_units, balance_units, due_ms, grant_json
    ) -> int:
        """One call's renewal in one round trip: RENEWED, EXHAUSTED or GONE (raises RedisError)."""
        k = self.keys
        keys = [k.reservations(account_id), k.balance(account_id), index_key]
        args = [call_id, units, credit_units, balance_units, due_ms, grant_json]
        return int(self.resp.run(self._grants["renew"], keys, args))

    def grant_done(self, index_key: str, call_id: str) -> None:
        """Out of the index: the timer already set the call's end."""
        self.resp.execute("ZREM", index_key, call_id)

    # -- registrations (contract.registrations), for the portal's registered phones

    def _register_args(self, now_ms, clear_prefix, contacts):
        args = [now_ms, clear_prefix]
        for field, expires_ms, value in contacts:
            args += [field, expires_ms, value]
        return [self.keys.registrations, self.keys.registrations_expiry], args

    def record_registrations(self, now_ms: int, clear_prefix: str, contacts) -> int:
        """Record what a REGISTER saved (``contacts``: (field, expiry ms, Registration JSON)); returns how many
        expired entries (of any node) it dropped. Raises RedisError."""
        keys, args = self._register_args(now_ms, clear_prefix, contacts)
        return int(self.resp.run(self._register, keys, args))

    def record_registrations_later(self, now_ms: int, clear_prefix: str, contacts) -> None:
        """``record_registrations`` without waiting: a lost record only hides the phone from the portal until
        its next REGISTER; the SIP registration itself is Kamailio's."""
        keys, args = self._register_args(now_ms, clear_prefix, contacts)

        def failed(error):
            if isinstance(error, redis.ResponseError) and str(error).startswith("NOSCRIPT"):
                try:
                    self.record_registrations(now_ms, clear_prefix, contacts)
                    return
                except redis.RedisError as exc:
                    error = exc
            log.warning("registration not recorded in the live state: %r", error)

        self.resp.send(("EVALSHA", self._register.sha, len(keys), *keys, *args), failed)
