"""Which country a source address is in, for the phones' allowed countries (geofence).

The portal publishes the IP-to-country table (``callcore.contract``,
IpCountryKeys); ``CountryLoader`` keeps it in each call-core process and
reads its version every IP_COUNTRY_POLL_S on the snapshot poll, never per
call. ``CountryTable.country`` is a binary search over the range starts held
in arrays, so a lookup builds no ipaddress objects.

``source_allowed`` is the rule a phone's REGISTER and INVITE are held to: a
phone that lists networks or countries is an allow list, and a source in any
of its networks or any of its countries passes. A phone that lists countries
while no table is loaded is refused: a geofence that opens when its data is
missing is no geofence.

Only the standard library and ``callcore.contract`` are imported here.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from bisect import bisect_right

from callcore import contract

logger = logging.getLogger(__name__)

_AF_INET, _AF_INET6 = socket.AF_INET, socket.AF_INET6
_inet_pton = socket.inet_pton
_MAPPED_PREFIX = bytes(10) + b"\xff\xff"  # ::ffff:a.b.c.d, how a dual-stack socket shows an IPv4 peer
# How often a process may log that a phone was refused for want of the table: a phone retries its
# REGISTER every few seconds, and the log must still show everything else.
MISSING_TABLE_LOG_S = 60.0


class CountryTable:
    """One version of the table; immutable once built, so a call holding it is never disturbed."""

    __slots__ = (
        "_v4_countries",
        "_v4_ends",
        "_v4_starts",
        "_v6_countries",
        "_v6_ends",
        "_v6_starts",
        "countries",
        "ranges",
        "version",
    )

    def __init__(self, ranges: contract.IpCountryRanges, version: str):
        self.version = version
        self.ranges = ranges
        self.countries = ranges.countries
        self._v4_starts, self._v4_ends = ranges.ipv4_starts, ranges.ipv4_ends
        self._v4_countries = ranges.ipv4_countries
        self._v6_starts, self._v6_ends = ranges.ipv6_starts, ranges.ipv6_ends
        self._v6_countries = ranges.ipv6_countries

    @classmethod
    def from_blob(cls, blob: bytes, version: str) -> CountryTable:
        """Raises contract.IpCountryError for a blob that cannot be trusted."""
        return cls(contract.decode_ip_countries(blob), version)

    def __len__(self) -> int:
        return len(self._v4_starts) + len(self._v6_starts)

    def country(self, ip: str) -> str | None:
        """The country code of ``ip`` (IPv4, IPv6, IPv4-mapped IPv6), or None: not in any range, or no address."""
        try:
            value = int.from_bytes(_inet_pton(_AF_INET, ip), "big")
        except (OSError, TypeError):
            return self._country_other(ip)
        return self._v4(value)

    def _v4(self, value: int) -> str | None:
        index = bisect_right(self._v4_starts, value) - 1
        if index >= 0 and value <= self._v4_ends[index]:
            return self.countries[self._v4_countries[index]]
        return None

    def _country_other(self, ip) -> str | None:
        if type(ip) is not str:
            return None
        try:
            packed = _inet_pton(_AF_INET6, ip.strip("[]"))
        except (OSError, ValueError):
            return None
        if packed[:12] == _MAPPED_PREFIX:
            return self._v4(int.from_bytes(packed[12:], "big"))
        value = int.from_bytes(packed[:8], "big")  # the /64 network: contract.IPV6_UNIT_BITS
        index = bisect_right(self._v6_starts, value) - 1
        if index >= 0 and value <= self._v6_ends[index]:
            return self.countries[self._v6_countries[index]]
        return None


def in_networks(ip: str, networks: tuple[str, ...]) -> bool:
    """Whether ``ip`` is in any of ``networks`` (addresses or CIDR; IPv4-mapped IPv6 counts as IPv4)."""
    try:
        address = ipaddress.ip_address(ip.strip("[]"))
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in ipaddress.ip_network(n, strict=False) for n in networks)


def source_allowed(phone: contract.Phone, ip: str, table: CountryTable | None) -> bool:
    """Whether ``phone`` may register or call from ``ip``: in any of its networks or any of its countries.

    A phone that lists neither may use any source; one that lists countries
    is refused outside its networks while ``table`` is None.
    """
    if not phone.allowed_networks and not phone.allowed_countries:
        return True
    if phone.allowed_networks and in_networks(ip, phone.allowed_networks):
        return True
    if phone.allowed_countries and table is not None:
        return table.country(ip) in phone.allowed_countries
    return False


class CountryLoader:
    """The table of one process: fetched at start, its version read again every IP_COUNTRY_POLL_S.

    ``execute`` sends one Redis command and returns its reply (the call core's
    own RESP client). A table that fails to load or to decode is refused and
    the one held is kept, as it is while Redis is away or has lost the keys.
    """

    def __init__(self, execute, prefix: str, *, poll_s: float = contract.IP_COUNTRY_POLL_S, clock=time.monotonic):
        self._execute = execute
        self.keys = contract.IpCountryKeys(prefix)
        self.poll_s = poll_s
        self.clock = clock
        self.table: CountryTable | None = None
        self.due = 0.0
        self._seen_version: bytes | None = None  # the last version read, loaded or refused
        self._missing_logged = None

    def refresh_if_due(self) -> None:
        if self.clock() >= self.due:
            self.refresh()

    def refresh(self) -> None:
        """Read the version; fetch and install the table when it changed. Never raises."""
        self.due = self.clock() + self.poll_s
        try:
            version = self._execute("GET", self.keys.version)
            if version == self._seen_version:
                return
            if version is None:
                blob = None
            else:
                # Both at once: a publish between two GETs could pair this version with another blob.
                version, blob = self._execute("MGET", self.keys.version, self.keys.blob)
        except Exception as exc:  # noqa: BLE001 - Redis away: keep the table held
            logger.warning("IP-country table not refreshed (%s); keeping what is loaded", exc)
            return
        self._seen_version = version
        if version is None or blob is None:
            # A Redis that lost its data: the portal's periodic republish refills it.
            if self.table is not None:
                logger.warning("the IP-country table is gone from Redis; keeping %s", self.version)
            return
        name = version.decode() if isinstance(version, bytes) else str(version)
        try:
            self.table = CountryTable.from_blob(blob, name)
        except contract.IpCountryError as exc:
            logger.error("IP-country table %s refused, keeping %s: %s", name, self.version, exc)
            return
        logger.info("IP-country table %s loaded: %d ranges", name, len(self.table))

    @property
    def version(self) -> str | None:
        return None if self.table is None else self.table.version

    def allows(self, phone: contract.Phone, ip: str) -> bool:
        """``source_allowed`` with this process's table; logs (at most once a minute) refusals for want of it."""
        if source_allowed(phone, ip, self.table):
            return True
        if phone.allowed_countries and self.table is None:
            now = self.clock()
            if self._missing_logged is None or now - self._missing_logged >= MISSING_TABLE_LOG_S:
                self._missing_logged = now
                logger.error(
                    "phone %s refused from %s: it is limited to countries %s but no IP-country table is loaded "
                    "(import it in the portal: manage.py import_ip_countries)",
                    phone.username,
                    ip,
                    ",".join(phone.allowed_countries),
                )
        return False
