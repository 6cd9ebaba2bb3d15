"""The call core's copy of the configuration: loaded from Redis, indexed for the hot path.

The portal publishes a versioned blob (see ``callcore.contract``): ``current``
names the version, ``snapshot:{version}`` holds the blob, and the version is
announced on a channel. ``SnapshotLoader`` fetches it, validates it, builds an
``IndexedSnapshot`` and swaps one reference, so a call that already holds the
previous index finishes on it undisturbed. It listens on the channel and polls
as well, since a subscriber misses whatever is published while it reconnects.

It never lets go of a good snapshot: a malformed blob, or one without the
portal's signature (``contract.signing``: whoever can write to Redis cannot
add a trunk without the key), is refused and counted, and the last good blob
is kept on disk, with its signature, so the switch can start, and route, while
Redis is away.

Only the standard library, redis and ``callcore.contract`` are imported here.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

import redis

from callcore import contract

logger = logging.getLogger(__name__)

V = TypeVar("V")

_DISK_MAGIC = b"callcore-snapshot"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class PrefixIndex(Generic[V]):
    """Longest-prefix lookup over a dict: probe ``number[:n]`` for each prefix length present, longest first.

    With a dozen distinct lengths that is a dozen dict probes per lookup,
    cheaper in Python than walking a trie node by node.
    """

    __slots__ = ("_entries", "_lengths")

    def __init__(self, entries: dict[str, V]):
        self._entries = entries
        self._lengths = sorted({len(prefix) for prefix in entries}, reverse=True)

    def __len__(self) -> int:
        return len(self._entries)

    def matches(self, number: str) -> Iterator[tuple[str, V]]:
        """Every (prefix, value) whose prefix starts ``number``, longest first."""
        entries = self._entries
        size = len(number)
        for length in self._lengths:
            if length <= size:
                value = entries.get(number[:length])
                if value is not None:
                    yield number[:length], value

    def longest(self, number: str) -> tuple[str, V] | None:
        return next(self.matches(number), None)


class ListGroupIndex:
    """A black or white list as a set of full numbers and a prefix index."""

    __slots__ = ("group", "numbers", "prefixes")

    def __init__(self, group: contract.ListGroup):
        self.group = group
        self.numbers = frozenset(group.numbers)
        self.prefixes: PrefixIndex[bool] = PrefixIndex(dict.fromkeys(group.prefixes, True))

    @property
    def kind(self) -> str:
        return self.group.kind

    def matches(self, number: str) -> bool:
        return number in self.numbers or (len(self.prefixes) > 0 and self.prefixes.longest(number) is not None)

    __contains__ = matches


class _SourceIndex:
    """Mapping gateways by source address: exact addresses in a dict, then networks most specific first.

    A network is keyed by its address bits above the prefix length (an int),
    so a lookup shifts the source address once per prefix length in use and
    probes a dict: the cost follows the number of distinct lengths, not of
    networks, and builds no ipaddress objects.
    """

    __slots__ = ("_exact", "_networks")

    def __init__(self, gateways: list[contract.MappingGateway]):
        exact: dict[str, list[contract.MappingGateway]] = {}
        networks: dict[int, dict[tuple[int, int], list[contract.MappingGateway]]] = {4: {}, 6: {}}
        # Gateways that also require the port come first: the more specific claim wins.
        for gateway in sorted(gateways, key=lambda g: (g.auth_mode != "ip_port", g.id)):
            for value in gateway.remote_ips:
                network = ipaddress.ip_network(value, strict=False)
                if network.num_addresses == 1:
                    exact.setdefault(str(network.network_address), []).append(gateway)
                else:
                    shift = network.max_prefixlen - network.prefixlen
                    key = (network.prefixlen, int(network.network_address) >> shift)
                    networks[network.version].setdefault(key, []).append(gateway)
        self._exact = {ip: tuple(gws) for ip, gws in exact.items()}
        # Per IP version: [(shift, {bits: gateways})], longest prefix first.
        self._networks: dict[int, list[tuple[int, dict[int, tuple[contract.MappingGateway, ...]]]]] = {}
        for version, by_key in networks.items():
            bits = 32 if version == 4 else 128
            by_length: dict[int, dict[int, tuple[contract.MappingGateway, ...]]] = {}
            for (length, value), gws in by_key.items():
                by_length.setdefault(length, {})[value] = tuple(gws)
            self._networks[version] = [(bits - length, by_length[length]) for length in sorted(by_length, reverse=True)]

    @staticmethod
    def _pick(gateways, port):
        for gateway in gateways:
            if gateway.auth_mode != "ip_port" or gateway.remote_port == port:
                return gateway
        return None

    def find(self, ip: str, port: int | None) -> contract.MappingGateway | None:
        gateways = self._exact.get(ip)
        if gateways is not None:
            found = self._pick(gateways, port)
            if found is not None:
                return found
        # An IPv4 source nobody configured (a scanner's flood) is parsed in C: an ipaddress object costs far more.
        try:
            packed = socket.inet_pton(socket.AF_INET, ip)
        except OSError:
            return self._find_other(ip, port)
        # inet_pton takes only the plain dotted quad (no leading zeros), so ``ip`` is already canonical.
        return self._find_address(ip, ip, 4, int.from_bytes(packed, "big"), port)

    def _find_other(self, ip: str, port: int | None) -> contract.MappingGateway | None:
        """IPv6, bracketed or IPv4-mapped sources."""
        try:
            address = ipaddress.ip_address(ip.strip("[]"))
        except ValueError:
            return None
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
        return self._find_address(ip, str(address), address.version, int(address), port)

    def _find_address(self, ip, canonical, version, value, port) -> contract.MappingGateway | None:
        if canonical != ip and canonical in self._exact:
            found = self._pick(self._exact[canonical], port)
            if found is not None:
                return found
        for shift, by_bits in self._networks[version]:
            gateways = by_bits.get(value >> shift)
            if gateways is not None:
                found = self._pick(gateways, port)
                if found is not None:
                    return found
        return None


class IndexedSnapshot:
    """One snapshot version with the lookups a call needs. Immutable once built: share it freely.

    The by-id and by-name dicts hold every entry, enabled or not. The
    matching helpers (``mapping_gateway_for``, ``route_candidates``,
    ``phone``) only ever return enabled entries, so a disabled gateway neither
    admits traffic nor shadows a shorter route prefix.
    """

    def __init__(self, snapshot: contract.Snapshot, version: int):
        self.version = version
        self.snapshot = snapshot
        self.parameters = snapshot.parameters
        self.sip_realm = snapshot.sip_realm
        self.time_zone = ZoneInfo(snapshot.time_zone)
        self.accounts = {a.id: a for a in snapshot.accounts}
        self.rate_tables = {t.id: t for t in snapshot.rate_tables}
        self.mapping_gateways = {g.id: g for g in snapshot.mapping_gateways}
        self.routing_gateways = {g.id: g for g in snapshot.routing_gateways}
        self.routing_schedules = {s.id: s for s in snapshot.routing_schedules}
        self.phones = {p.username: p for p in snapshot.phones}
        self.list_groups = {g.id: ListGroupIndex(g) for g in snapshot.list_groups}
        # Every high-risk list group applies to every call (anti-fraud): one index of them all.
        high_risk = [g for g in snapshot.list_groups if g.kind == "highrisk"]
        self.high_risk_numbers = frozenset(n for g in high_risk for n in g.numbers)
        self.high_risk_prefixes: PrefixIndex[bool] = PrefixIndex({p: True for g in high_risk for p in g.prefixes})

        self._rates: dict[int, PrefixIndex[tuple[contract.Rate, ...]]] = {}
        for table in snapshot.rate_tables:
            by_prefix: dict[str, list[contract.Rate]] = {}
            for rate in table.rates:
                by_prefix.setdefault(rate.prefix, []).append(rate)
            # Among overlapping validity windows of one prefix, the one that started last wins.
            self._rates[table.id] = PrefixIndex(
                {prefix: tuple(sorted(rates, key=_rate_start, reverse=True)) for prefix, rates in by_prefix.items()}
            )

        routes: dict[str, list[contract.RoutingGateway]] = {}
        for gateway in snapshot.routing_gateways:
            if gateway.enabled:
                for prefix in gateway.prefixes or ("",):
                    routes.setdefault(prefix, []).append(gateway)
        self._routes: PrefixIndex[tuple[contract.RoutingGateway, ...]] = PrefixIndex(
            {prefix: tuple(sorted(gws, key=lambda g: (g.priority, g.id))) for prefix, gws in routes.items()}
        )
        self._sources = _SourceIndex([g for g in snapshot.mapping_gateways if g.enabled])

    def parameter(self, name: str) -> int | bool:
        return self.parameters[contract.PARAMETERS_BY_NAME[name].name]

    def rate(self, rate_table_id: int, number: str, at_ms: int | None = None) -> contract.Rate | None:
        """The rate of the longest prefix of ``number`` that has a rate valid at ``at_ms`` (default now)."""
        index = self._rates.get(rate_table_id)
        if index is None:
            return None
        if at_ms is None:
            at_ms = now_ms()
        for _prefix, rates in index.matches(number):
            for rate in rates:
                if rate.valid_at(at_ms):
                    return rate
        return None

    def route_candidates(self, callee: str) -> tuple[contract.RoutingGateway, ...]:
        """Enabled routing gateways serving the longest matching prefix of ``callee``, by priority then id.

        Schedules, capacity and cost are the caller's to check: this only
        narrows 500 gateways to the handful that serve the number.
        """
        match = self._routes.longest(callee)
        return () if match is None else match[1]

    def in_schedule(self, gateway: contract.RoutingGateway, at_ms: int | None = None) -> bool:
        """Whether ``gateway`` may be used at ``at_ms``: no schedule, or inside one of them."""
        if not gateway.schedule_ids:
            return True
        moment = datetime.fromtimestamp((now_ms() if at_ms is None else at_ms) / 1000, self.time_zone)
        weekday, minute = moment.weekday(), moment.hour * 60 + moment.minute
        return any(
            schedule.contains(weekday, minute)
            for schedule in (self.routing_schedules[sid] for sid in gateway.schedule_ids)
        )

    def mapping_gateway_for(self, ip: str, port: int | None = None) -> contract.MappingGateway | None:
        """The enabled mapping gateway that accepts calls from ``ip`` (and ``port`` for IP+port gateways)."""
        return self._sources.find(ip, port)

    def phone(self, username: str) -> contract.Phone | None:
        phone = self.phones.get(username)
        return phone if phone is not None and phone.enabled else None

    def list_group(self, group_id: int) -> ListGroupIndex | None:
        return self.list_groups.get(group_id)

    def listed_high_risk(self, number: str) -> bool:
        """Whether ``number`` is in a high-risk list group (a destination the anti-fraud rules watch)."""
        return number in self.high_risk_numbers or (
            len(self.high_risk_prefixes) > 0 and self.high_risk_prefixes.longest(number) is not None
        )


def _rate_start(rate: contract.Rate) -> int:
    return -(2**63) if rate.valid_from_ms is None else rate.valid_from_ms


class SnapshotLoader:
    """Keeps the newest good snapshot in ``current``, from Redis or, failing that, from disk.

    ``start()`` loads once and starts the listener thread; ``current`` is then
    read by every call without locking (one attribute read). ``refresh()`` may
    also be called directly; it is serialised, so the listener and a caller
    never install versions out of order.
    """

    def __init__(
        self,
        redis_client: redis.Redis | str,
        prefix: str,
        state_path: str | os.PathLike,
        *,
        poll_interval: float = 3.0,
        signing_key: str | bytes | None = None,
    ):
        """``signing_key``: the HMAC key shared with the portal, by default SNAPSHOT_SIGNING_KEY's; without a
        usable one every blob is refused (``python -m callcore`` does not start without it)."""
        if isinstance(redis_client, str):
            # Short timeouts: the listener must notice a dead Redis quickly and keep serving from memory.
            redis_client = redis.Redis.from_url(
                redis_client, socket_connect_timeout=1, socket_timeout=5, health_check_interval=30
            )
        self.redis = redis_client
        self.keys = contract.SnapshotKeys(prefix)
        self.state_path = Path(state_path)
        self.poll_interval = poll_interval
        self.rejected = 0
        self.last_error: str | None = None
        if signing_key is None:
            signing_key = os.environ.get(contract.SIGNING_KEY_ENV)
        try:
            self._signing_key: bytes | None = contract.signing_key(signing_key)
        except contract.SignatureError as exc:
            logger.error("%s: every snapshot will be refused", exc)
            self._signing_key = None
        self._current: IndexedSnapshot | None = None
        self._refused_current: bytes | None = None
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> IndexedSnapshot | None:
        return self._current

    @property
    def version(self) -> int | None:
        current = self._current
        return None if current is None else current.version

    # -- loading ------------------------------------------------------------

    def start(self, *, listen: bool = True) -> IndexedSnapshot | None:
        """Load from Redis, or from disk when Redis is unreachable or empty; then listen if asked."""
        try:
            self.refresh()
        except redis.RedisError as exc:
            logger.warning("Redis unreachable at start (%s): trying the snapshot on disk", exc)
        if self._current is None:
            self.load_from_disk()
        if listen:
            self.start_listener()
        return self._current

    def refresh(self) -> bool:
        """Install the version ``current`` names if it is not ours; True if a new snapshot was installed.

        Raises redis.RedisError when Redis is unreachable; the snapshot held is kept.
        """
        with self._refresh_lock:
            raw = self.redis.get(self.keys.current)
            # A refused version is remembered so polling does not fetch and refuse it again every few seconds.
            if raw is None or raw == self._refused_current:
                return False
            try:
                version = int(raw)
            except ValueError:
                self._refused_current = raw
                self._reject(None, f"{self.keys.current} holds {raw[:40]!r}, not a version number")
                return False
            if version == self.version:
                return False
            blob, signature = self.redis.mget(self.keys.blob(version), self.keys.signature(version))
            if blob is None:
                logger.error("snapshot version %s is current but %s is missing", version, self.keys.blob(version))
                return False
            indexed = self._index(version, blob, signature)
            if indexed is None:
                self._refused_current = raw
                return False
            self._current = indexed
            self._save_to_disk(version, blob, signature)
            logger.info("snapshot version %s installed", version)
            return True

    def load_from_disk(self) -> bool:
        """Install the last good snapshot kept on disk; False if there is none or it is unreadable."""
        try:
            data = self.state_path.read_bytes()
        except FileNotFoundError:
            logger.error("no snapshot on disk at %s: no configuration until Redis answers", self.state_path)
            return False
        except OSError as exc:
            logger.error("cannot read the snapshot on disk at %s: %s", self.state_path, exc)
            return False
        header, _, blob = data.partition(b"\n")
        magic, _, rest = header.partition(b" ")
        version_text, _, signature = rest.partition(b" ")
        if magic != _DISK_MAGIC or not version_text.isdigit():
            logger.error("%s is not a snapshot file written by this loader", self.state_path)
            return False
        with self._refresh_lock:
            indexed = self._index(int(version_text), blob, signature)
            if indexed is None:
                return False
            self._current = indexed
        logger.warning("running on snapshot version %s from disk (%s)", indexed.version, self.state_path)
        return True

    def _index(self, version: int, blob: bytes, signature: bytes | None) -> IndexedSnapshot | None:
        if self._signing_key is None:
            self._reject(version, f"{contract.SIGNING_KEY_ENV} is not set or too short: no signature can be checked")
            return None
        if not contract.verify_snapshot(self._signing_key, blob, signature):
            what = "has no signature" if not signature else "does not match its signature (altered, or another key)"
            self._reject(version, f"the blob {what}")
            return None
        try:
            return IndexedSnapshot(contract.decode_snapshot(blob), version)
        except contract.SnapshotError as exc:
            self._reject(version, str(exc))
        except Exception as exc:
            # A blob that decodes but cannot be indexed is just as unusable; the switch must not stop over it.
            logger.exception("snapshot version %s could not be indexed", version)
            self._reject(version, f"{type(exc).__name__}: {exc}")
        return None

    def _reject(self, version: int | None, reason: str) -> None:
        self.rejected += 1
        self.last_error = reason
        logger.error(
            "snapshot version %s refused, keeping version %s: %s (%d refused so far)",
            version,
            self.version,
            reason,
            self.rejected,
        )

    def _save_to_disk(self, version: int, blob: bytes, signature: bytes) -> None:
        # Written beside the target and renamed over it, so a crash leaves the old file or the new, never half.
        try:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=self.state_path.name + ".", dir=self.state_path.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(b"%s %d %s\n" % (_DISK_MAGIC, version, signature))
                    out.write(blob)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temp, self.state_path)
            except BaseException:
                os.unlink(temp)
                raise
        except OSError as exc:
            logger.error("could not keep snapshot version %s on disk at %s: %s", version, self.state_path, exc)

    # -- listening ----------------------------------------------------------

    def start_listener(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._listen, name="snapshot-listener", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(5.0 if timeout is None else timeout)
        self._thread = None

    def _listen(self) -> None:
        pubsub = None
        backoff = 0.5
        next_poll = 0.0
        while not self._stop.is_set():
            try:
                if pubsub is None:
                    pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(self.keys.channel)
                    # Whatever was published while we were not subscribed is only visible by asking.
                    self.refresh()
                    next_poll = time.monotonic() + self.poll_interval
                    backoff = 0.5
                # Woken at least twice a second so stop() is honoured promptly whatever the poll interval.
                wait = max(0.0, min(next_poll - time.monotonic(), 0.5))
                message = pubsub.get_message(timeout=wait)
                if message is not None or time.monotonic() >= next_poll:
                    self.refresh()
                    next_poll = time.monotonic() + self.poll_interval
            except redis.RedisError as exc:
                logger.warning("snapshot listener: Redis error (%s); retrying in %.1f s", exc, backoff)
                pubsub = _close_quietly(pubsub)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.poll_interval)
            except Exception:
                logger.exception("snapshot listener failed; retrying")
                pubsub = _close_quietly(pubsub)
                self._stop.wait(self.poll_interval)
        _close_quietly(pubsub)


def _close_quietly(pubsub) -> None:
    if pubsub is not None:
        try:
            pubsub.close()
        except Exception:  # it is being thrown away because its connection already failed
            logger.debug("closing the snapshot pubsub failed", exc_info=True)
    return None
