"""The snapshot's indexes: one configuration version with the lookups a call needs, built in memory.

Pure (the standard library and ``callcore.contract`` only), so the portal's routing simulator
indexes the same blob the same way as the call core; ``callcore.snapshot`` loads it from Redis.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

from callcore import contract

__all__ = ["IndexedSnapshot", "ListGroupIndex", "PrefixIndex", "now_ms"]

V = TypeVar("V")


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
