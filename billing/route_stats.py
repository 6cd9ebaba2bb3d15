"""The figures of the Best ASR route policy: each routing gateway's attempts and connected calls.

Two halves, both in the worker:

* counting: the CDR ingest adds each stored batch's vendor attempts
  (``vendor_attempts``, the routing gateway bill's definition) to one Redis
  hash per minute of the calls' start, ``Keys.route_stats_minute``
  (fields ``a:{gateway id}`` and ``c:{gateway id}``), in the MULTI that
  acknowledges the batch (``count_records``, ``add_counts``); each hash
  expires ROUTE_STATS_MAX_MINUTES + 1 minutes after its minute began;
* publishing: a beat task (``publish``) sums the last
  SS_ROUTE_ASR_WINDOW_MINUTES of those hashes, the current minute included,
  into ``Keys.route_asr`` (a ``RouteStats``), which the call core
  reads to order the vendors of a Best ASR mapping gateway. It expires, so
  the call core falls back to priority order once the worker stops.

A minute counts the calls that started in it, and a CDR arrives when its
call ends: the newest minutes fill in as their calls finish.
"""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

import redis
from django.conf import settings

from callcore.contract import ROUTE_STATS_MAX_MINUTES, Keys, RouteStats
from softswitch_portal.core.models import SystemParameter
from softswitch_portal.core.redis import Waiter, redis_client

log = logging.getLogger("billing.route_stats")

# Longer than several beat intervals, so a slow or restarted beat does not drop the figures; short enough that
# the call core stops ranking on stale ones soon after the worker stops.
PUBLISHED_TTL_SECONDS = 600

# A minute's counts are read for at most the longest window an operator may set, from the minute's start.
KEEP_SECONDS = (ROUTE_STATS_MAX_MINUTES + 1) * 60

# What _ATTEMPTS_SQL casts to bigint: ``^[0-9]{1,18}$``.
_GATEWAY_ID_TEXT = re.compile(r"[0-9]{1,18}").fullmatch
_GATEWAY_ID_LIMIT = 10**18


def _tried_gateway_id(entry) -> int | None:
    """The gateway id of one vendors_tried element as _ATTEMPTS_SQL reads it (``->> 'gateway_id'``), else None."""
    if entry.__class__ is not dict:
        return None
    value = entry.get("gateway_id")
    # Not isinstance: JSON true is no gateway to PostgreSQL, and a float's text (5.0) fails its pattern.
    if value.__class__ is int:
        return value if 0 <= value < _GATEWAY_ID_LIMIT else None
    if value.__class__ is str and _GATEWAY_ID_TEXT(value):
        return int(value)
    return None


def vendor_attempts(routing_gateway_id: int | None, hold_time_ms: int, vendors_tried) -> list[tuple[int, bool]]:
    """The vendor attempts one CDR counts, as (routing gateway id, connected), in the order tried.

    The definition of the routing gateway bill, ``billing.reports._ATTEMPTS_SQL``
    (change both or neither; tests/billing/test_route_stats.py holds them
    together): every vendor in ``vendors_tried`` ([{"gateway_id", "gateway",
    "ip", "status"}] in the order tried) is a failed attempt, except that the
    list's last element is left out when it names the call's routing gateway;
    the call then counts under its routing gateway, connected when
    ``hold_time_ms > 0``. An empty list counts the routing gateway alone; no
    routing gateway and no list, nothing. An element whose gateway id is not
    a whole number of at most 18 digits counts nothing, as a list that is not
    a list does.
    """
    attempts = []
    if vendors_tried.__class__ is list and vendors_tried:
        last = len(vendors_tried) - 1
        for n, entry in enumerate(vendors_tried):
            gateway_id = _tried_gateway_id(entry)
            if gateway_id is not None and not (n == last and gateway_id == routing_gateway_id):
                attempts.append((gateway_id, False))
    if routing_gateway_id is not None:
        attempts.append((routing_gateway_id, hold_time_ms > 0))
    return attempts


def count_records(records: Iterable) -> dict[int, dict[int, list[int]]]:
    """{start minute: {routing gateway id: [attempts, connected]}} of ingest records (``billing.ingest.records``)."""
    counts: dict[int, dict[int, list[int]]] = {}
    for record in records:
        v = record.values
        attempts = vendor_attempts(v["routing_gateway_id"], v["hold_time_ms"], record.vendors_tried)
        if not attempts:
            continue
        minute = v["start_ms"] // 60_000
        gateways = counts.get(minute)
        if gateways is None:
            gateways = counts[minute] = {}
        for gateway_id, connected in attempts:
            figures = gateways.get(gateway_id)
            if figures is None:
                figures = gateways[gateway_id] = [0, 0]
            figures[0] += 1
            if connected:
                figures[1] += 1
    return counts


# One EVAL per minute hash, not a HINCRBY per field (bench/README.md); its text, not EVALSHA, since a Redis
# restarted or flushed of its scripts would refuse an EVALSHA inside the MULTI.
ADD_SCRIPT = """
for i = 2, #ARGV, 2 do
    redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIREAT', KEYS[1], ARGV[1])
"""


def add_counts(pipe, keys: Keys, counts: dict[int, dict[int, list[int]]], now_ms: int) -> None:
    """Queue on ``pipe`` what adds ``counts`` to the minute hashes (HINCRBY each field, EXPIREAT each hash)."""
    now_s = now_ms // 1000
    for minute, gateways in counts.items():
        # Capped at a full keep from now: a record from a clock years ahead must not leave a key for years.
        expire_at = min(minute * 60 + KEEP_SECONDS, now_s + KEEP_SECONDS)
        if expire_at <= now_s:
            continue  # older than any window: EXPIREAT would delete the key at once anyway
        args = [expire_at]
        for gateway_id, (attempts, connected) in gateways.items():
            args += (f"a:{gateway_id}", attempts)
            if connected:
                args += (f"c:{gateway_id}", connected)
        pipe.eval(ADD_SCRIPT, 1, keys.route_stats_minute(minute), *args)


# ---------------------------------------------------------------------------
# Publishing


def window_minutes() -> int:
    """SS_ROUTE_ASR_WINDOW_MINUTES as stored (the default if unset or unreadable)."""

    return int(SystemParameter.current("SS_ROUTE_ASR_WINDOW_MINUTES"))


_FIELD_KINDS = {b"a": 0, b"c": 1}


def sum_window(client: redis.Redis, keys: Keys, window: int, now_ms: int) -> dict[int, tuple[int, int]]:
    """{routing gateway id: (attempts, connected)} over the ``window`` minutes up to ``now_ms``'s, in one round
    trip."""
    current = now_ms // 60_000
    names = [keys.route_stats_minute(minute) for minute in range(current - window + 1, current + 1)]
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(name)
    sums: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for name, fields in zip(names, pipe.execute(), strict=True):
        for field, value in fields.items():
            kind, _, gateway_id = field.partition(b":")
            try:
                sums[int(gateway_id)][_FIELD_KINDS[kind]] += int(value)
            except (KeyError, ValueError):
                log.warning("%s: field %r = %r is not a count; left out", name, field, value)
    # RouteStats refuses more connected calls than attempts (a hash edited by hand); never seen otherwise,
    # since each batch adds both in one MULTI to one key.
    return {gateway_id: (a, min(c, a)) for gateway_id, (a, c) in sums.items() if a > 0}


def publish(client: redis.Redis | None = None, now_ms: int | None = None) -> RouteStats:
    """Sum the window's minutes and SET them as ``route_asr`` for the call core, with an expiry."""
    window = window_minutes()
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    keys = Keys(settings.REDIS_PREFIX)
    own = client is None
    client = client or redis_client(Waiter.JOB, name="ss-route-asr")
    try:
        stats = RouteStats(at_ms=now_ms, window_minutes=window, gateways=sum_window(client, keys, window, now_ms))
        client.set(keys.route_asr, stats.encode(), ex=PUBLISHED_TTL_SECONDS)
    finally:
        if own:
            client.close()
    return stats


# ---------------------------------------------------------------------------
# Reading back, for the portal


def published(client: redis.Redis | None = None) -> RouteStats | None:
    """What the call core reads now: the published figures, or None when none are (or they cannot be read)."""
    own = client is None
    # This runs in a portal request, which must not hang on a Redis outage.
    client = client or redis_client(Waiter.PAGE)
    try:
        raw = client.get(Keys(settings.REDIS_PREFIX).route_asr)
    except redis.RedisError as exc:
        log.warning("published route ASR not read: %s", exc)
        return None
    finally:
        if own:
            client.close()
    if raw is None:
        return None
    try:
        return RouteStats.decode(raw)
    except ValueError as exc:
        log.warning("published route ASR not readable: %s", exc)
        return None


def asr_text(attempts: int, connected: int) -> str:
    """The ASR rounded half up to a tenth of a percent, as the reports round it, and the attempts: "82.5% (of 120)"."""
    asr = (Decimal(connected * 100) / Decimal(attempts)).quantize(Decimal("0.1"), ROUND_HALF_UP)
    return f"{asr}% (of {attempts})"
