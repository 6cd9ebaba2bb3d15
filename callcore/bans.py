"""Source-IP bans, one mechanism for every cause, shared by every node through Redis.

A node that sees an offence (a scanner's User-Agent, a flood, a burst of
illegal INVITEs, wrong digest answers from one source or for one username)
counts it in Redis with ``OFFEND_LUA``; the count that reaches its limit bans
the source there (``contract.Keys.ban``) for ``SS_BAN_SECONDS``, doubled for
each earlier ban of the source within a day up to ``SS_BAN_MAX_SECONDS``.

Each node keeps a cache of the bans in a Kamailio htable that its
configuration checks before any Python runs (``kamailio.cfg.tmpl``): the node
that bans fills its cache at once, and every node's ban timer reloads the
whole cache within a second of ``Keys.bans_version`` moving (a ban anywhere,
or a release from the portal). The cache only ever holds what Redis holds.

Sources on the allow-list are never banned: the networks of
``SS_BAN_ALLOW_NETWORKS`` and, with ``SS_BAN_EXEMPT_GATEWAYS``, the mapping
gateways' addresses. Loopback is not exempt unless listed.

Only the standard library, ``callcore.resp`` and ``callcore.contract`` are
imported here, so the tests drive it against a real Redis without Kamailio.
"""

from __future__ import annotations

import ipaddress
import math
import time

from callcore.contract import BAN_OFFENCE_MEMORY_S, BanCause, Keys
from callcore.resp import Script

__all__ = ["OFFEND_LUA", "Bans", "allow_networks", "parse_networks"]

_UNSYNCED = object()

# KEYS: ban, bans index, bans version, offences, counter [, second counter]
# ARGV: ip, now ms, node, first ban s, longest ban s, window ms, offence memory s,
#       cause, limit, subject [, second cause, second limit, second subject]
# Counts the offence against each counter given; when a counter reaches its limit (0 = never) the
# source is banned unless it already is. Returns the ban's remaining ms (0: not banned).
OFFEND_LUA = r"""
local ban, index, version, offences = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = tonumber(ARGV[2])
local tripped, count, first, cause, subject = false, 0, now, ARGV[8], ARGV[10]
for i = 0, #KEYS - 5 do
  local counter, limit = KEYS[5 + i], tonumber(ARGV[9 + 3 * i])
  local n = redis.call('HINCRBY', counter, 'n', 1)
  if n == 1 then
    redis.call('HSET', counter, 'first_ms', now)
    redis.call('PEXPIRE', counter, ARGV[6])
  end
  if limit > 0 and n >= limit and not tripped then
    tripped, count, cause, subject = true, n, ARGV[8 + 3 * i], ARGV[10 + 3 * i]
    first = tonumber(redis.call('HGET', counter, 'first_ms') or now)
  end
end
local left = redis.call('PTTL', ban)
if left > 0 then
  redis.call('HINCRBY', ban, 'count', 1)
  redis.call('HSET', ban, 'last_ms', now)
  return left
end
if not tripped then
  return 0
end
local n = redis.call('INCR', offences)
redis.call('EXPIRE', offences, ARGV[7])
local seconds = math.min(tonumber(ARGV[4]) * 2 ^ (n - 1), tonumber(ARGV[5]))
local ms = math.floor(seconds * 1000)
redis.call('HSET', ban, 'cause', cause, 'count', count, 'first_ms', first, 'last_ms', now, 'node', ARGV[3],
           'offences', n, 'expires_ms', now + ms, 'subject', subject)
redis.call('PEXPIRE', ban, ms)
redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
redis.call('ZADD', index, now + ms, ARGV[1])
redis.call('INCR', version)
for i = 0, #KEYS - 5 do
  redis.call('DEL', KEYS[5 + i])
end
return ms
"""


def parse_networks(text: str) -> tuple:
    """``SS_BAN_ALLOW_NETWORKS``: addresses or networks separated by commas; ValueError names a bad one."""
    networks = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"SS_BAN_ALLOW_NETWORKS: {item!r} is not an IP address or network") from None
    return tuple(networks)


def allow_networks(snapshot, own: tuple) -> tuple:
    """The networks never banned: the operator's own and, with SS_BAN_EXEMPT_GATEWAYS, the mapping gateways'."""
    networks = list(own)
    if snapshot is not None and snapshot.parameters.get("SS_BAN_EXEMPT_GATEWAYS", True):
        gateways = snapshot.mapping_gateways
        for gateway in gateways.values() if isinstance(gateways, dict) else gateways:
            for value in gateway.remote_ips:
                networks.append(ipaddress.ip_network(value, strict=False))
    return tuple(networks)


class Bans:
    """A process's view of the shared bans: offences counted in Redis, the node's cache kept in step.

    ``resp`` is a ``callcore.resp.RespClient``; ``cache`` has ``set(ip, seconds)``
    and ``reset()`` (the Kamailio htable, or a dict in tests).
    """

    def __init__(self, resp, prefix: str, node: str, cache, own_networks: tuple = ()):
        self.resp = resp
        self.keys = Keys(prefix)
        self.node = node
        self.cache = cache
        self.own_networks = own_networks
        self.script = Script(OFFEND_LUA)
        self.version = _UNSYNCED  # of the bans this process last loaded into the cache (None: no ban ever)
        self._allowed_for = None  # the snapshot the allow-list was built from
        self._allowed = ()

    # -- the allow-list --------------------------------------------------------

    def allowed(self, ip: str, snapshot) -> bool:
        """Whether ``ip`` may never be banned (rebuilt when the snapshot changes; a bad address is not allowed)."""
        if snapshot is not self._allowed_for:
            self._allowed = allow_networks(snapshot, self.own_networks)
            self._allowed_for = snapshot
        if not self._allowed:
            return False
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in self._allowed)

    # -- offences --------------------------------------------------------------

    def offend(self, ip: str, snapshot, cause: BanCause, limit: int = 1, subject: str = "", also=None) -> int:
        """Count one offence of ``ip`` (``subject``: the username it named, shown with the ban) and, with ``also``
        ((cause, limit, subject)), against a second counter kept by that subject; ban ``ip`` in Redis when a
        limit is reached, and in this node's cache. Returns the ban's remaining seconds, 0 if none.

        Raises redis errors: the caller decides what a Redis that does not answer means.
        """
        if self.allowed(ip, snapshot):
            return 0
        params = snapshot.parameters if snapshot is not None else {}
        keys = [self.keys.ban(ip), self.keys.bans, self.keys.bans_version, self.keys.ban_offences(ip),
                self.keys.ban_counter(cause.value, ip)]  # fmt: skip
        args = [
            ip, _now_ms(), self.node, params.get("SS_BAN_SECONDS", 300), params.get("SS_BAN_MAX_SECONDS", 86400),
            params.get("SS_BAN_WINDOW_SECONDS", 60) * 1000, BAN_OFFENCE_MEMORY_S, cause.value, limit, subject,
        ]  # fmt: skip
        if also is not None:
            other_cause, other_limit, other_subject = also
            keys.append(self.keys.ban_counter(other_cause.value, other_subject))
            args += [other_cause.value, other_limit, other_subject]
        left_ms = int(self.resp.run(self.script, keys, args) or 0)
        if left_ms <= 0:
            return 0
        seconds = math.ceil(left_ms / 1000)
        self.cache.set(ip, seconds)
        return seconds

    def auth_failed(self, ip: str, username: str, snapshot) -> int:
        """A wrong digest answer (or one for an unknown user: the same to whoever sent it)."""
        params = snapshot.parameters
        per_ip = params.get("SS_BAN_AUTH_FAILURES_PER_IP", 5)
        per_user = params.get("SS_BAN_AUTH_FAILURES_PER_USER", 10)
        also = (BanCause.AUTH_FAILURES_USER, per_user, username) if username else None
        return self.offend(ip, snapshot, BanCause.AUTH_FAILURES, per_ip, username, also=also)

    # -- the node's cache ------------------------------------------------------

    def sync(self) -> bool:
        """Reload this node's cache when the bans moved since the last sync (a ban or a release anywhere).

        Run by one timer process per node every second; True when it reloaded.
        """
        version = self.resp.execute("GET", self.keys.bans_version)
        if version == self.version:
            return False
        now = _now_ms()
        banned = self.resp.execute("ZRANGEBYSCORE", self.keys.bans, now, "+inf", "WITHSCORES")
        self.cache.reset()
        for i in range(0, len(banned or ()), 2):
            ip = banned[i].decode() if isinstance(banned[i], bytes) else banned[i]
            seconds = math.ceil((float(banned[i + 1]) - now) / 1000)
            if seconds > 0:
                self.cache.set(ip, seconds)
        self.version = version
        return True


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
