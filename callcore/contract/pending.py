"""A charged call's pending debit: its reservation, kept from its teardown until the ingest has debited it.

The call core frees a call's slots at once when it ends, but its money is
debited only when the ingest stores its CDR, a moment (or, with the ingest
down, much longer) later. Freed at the teardown, the reservation of a call
that talked would make the money it spent look available to the account's
other live calls, on every node, until then; and they would renew their
quota grants on it (an overdraft of whatever those calls then talk). So the
teardown of a call that will be charged moves its reservation to a field
named after its CDR (``pending_debit_field``), still counted in the
account's reservation total, and the ingest drops that field in the same
Redis transaction that sets the account's live balance after the debit
(``RELEASE_PENDING_LUA``): the money is counted once at every moment, as a
reservation before, as a debit after.

A pending debit expires after ``PENDING_DEBIT_HOLD_MS`` like any reservation
(every setup purges expired ones): a CDR the ingest cannot take (set aside
as a dead letter) does not hold its account's money for ever.
"""

from __future__ import annotations

__all__ = ["PENDING_DEBIT_HOLD_MS", "pending_debit_field", "HOLD_OR_RELEASE_LUA", "RELEASE_PENDING_LUA"]

# The ingest takes a CDR within a second while it runs; this covers an ingest restart or a database failover
# with room to spare. Only an outage longer than this lets the calls ended during it be spent twice.
PENDING_DEBIT_HOLD_MS = 3_600_000


def pending_debit_field(call_uuid: str) -> str:
    """The reservations-hash field of the pending debit of the call whose CDR has ``call_uuid``.

    Named after the CDR, not the SIP Call-ID: a new call reusing a Call-ID must not take over (or free) the
    money of the one before it.
    """
    return f"cdr:{call_uuid}"


# The reservation of a call that ends, in both scripts that end one (callcore.live's TEARDOWN_LUA, contract.lost's
# RELEASE_LOST_LUA): held as the pending debit ``field`` until ``expiry`` when the call is charged, else freed.
HOLD_OR_RELEASE_LUA = r"""
local function hold_or_release(hash, call_id, field, expiry)
  local held = redis.call('HGET', hash, call_id)
  if held then
    redis.call('HDEL', hash, call_id)
    if field and field ~= '' then
      redis.call('HSET', hash, field, string.match(held, '^(%-?%d+)') .. ':' .. expiry)
      redis.call('ZADD', hash .. ':exp', expiry, field)
    else
      redis.call('DECRBY', hash .. ':sum', tonumber(string.match(held, '^(%-?%d+)')))
    end
  end
  redis.call('ZREM', hash .. ':exp', call_id)
end
"""


# Drop the pending debits of CDRs the ingest has stored (their charge is in the balance now).
# KEYS: 1 the account's reservations  ARGV: the pending-debit fields
# Returns the money units released.
RELEASE_PENDING_LUA = r"""
local released = 0
for _, field in ipairs(ARGV) do
  local held = redis.call('HGET', KEYS[1], field)
  if held then
    local amount = tonumber(string.match(held, '^(%-?%d+)'))
    redis.call('DECRBY', KEYS[1] .. ':sum', amount)
    redis.call('HDEL', KEYS[1], field)
    released = released + amount
  end
  redis.call('ZREM', KEYS[1] .. ':exp', field)
end
return released
"""
