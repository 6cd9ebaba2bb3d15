"""The IP-to-country table behind the phones' allowed countries: the registries' files in, the call core's blob out.

The five regional Internet registries (AFRINIC, APNIC, ARIN, LACNIC, RIPE NCC)
each publish a "delegated statistics" file: every IPv4 and IPv6 block they
gave out, with the country it was registered in. ``import_files`` reads any
number of them (paths or URLs, gzip or not), merges the ranges, and replaces
the one ``IpCountryTable`` row in a single transaction: a bad line anywhere
leaves the table imported before untouched. ``publish`` copies that row to
Redis for the call cores; the periodic snapshot republish calls it too, so a
Redis that lost the table is refilled from PostgreSQL. The operators' own
ranges (``IpCountryRange``, VOS's IP limits) are laid over the imported table
as it is published, and win where they overlap it; the version published
covers both, so a call core reloads when either changes.

The format (one record a line, ``|``-separated):
``registry|cc|type|start|value|date|status[|...]``; ``type`` is asn, ipv4 or
ipv6; for ipv4 ``value`` counts addresses from ``start`` (not always a power of
two), for ipv6 it is the prefix length. The first line that is not a comment
is the version line; summary lines have ``*`` as their cc; blocks that are
available or reserved have no country and are skipped.
"""

from __future__ import annotations

import gzip
import hashlib
import heapq
import logging
import re
import socket
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import redis
from django.db import transaction
from django.utils import timezone

from callcore import contract
from softswitch_portal.core.redis import Waiter, prefix, redis_client

from .models import IpCountryRange, IpCountryTable

logger = logging.getLogger(__name__)

URL_SCHEMES = ("http", "https", "ftp")
URL_TIMEOUT_S = 60
_VERSION_LINE = re.compile(r"\d+(\.\d+)*")
_IN_USE = frozenset({"allocated", "assigned"})
_UNUSED = frozenset({"available", "reserved"})
# The registries write ZZ (or nothing) for blocks that belong to no country.
_NO_COUNTRY = frozenset({"", "ZZ"})
_IPV4_LAST = (1 << 32) - 1
# Conflicts listed one by one in the import's report; the rest are counted.
CONFLICTS_SHOWN = 10


class DelegatedFileError(ValueError):
    """A file that is not (or no longer) a registry's delegated statistics; names the file and the line."""

    def __init__(self, source: str, line: int | None, message: str):
        self.source, self.line, self.message = source, line, message
        where = source if line is None else f"{source}, line {line}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class Delegation:
    """One block a registry delegated to a country; ``order`` is when it was read, across all files."""

    version: int  # 4 or 6
    start: int
    end: int  # inclusive
    country: str
    order: int
    source: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.source}, line {self.line}"


@dataclass(frozen=True)
class Conflict:
    """Two overlapping blocks of different countries; the one read later wins where they overlap."""

    earlier: Delegation
    later: Delegation

    def __str__(self):
        first = max(self.earlier.start, self.later.start)
        last = min(self.earlier.end, self.later.end)
        return (
            f"{_address(self.earlier.version, first)}-{_address(self.earlier.version, last)}: "
            f"{self.earlier.country} ({self.earlier.where}) and {self.later.country} ({self.later.where}); "
            f"{self.later.country}, read later, wins"
        )


@dataclass(frozen=True)
class Table:
    """The merged table, ready to store: its blob and what the portal shows about it."""

    blob: bytes
    version: str
    ipv4_ranges: int
    ipv6_ranges: int
    countries: int
    sources: tuple[str, ...]
    delegations: int  # records read (in use, with a country)
    conflicts: tuple[Conflict, ...]  # the first CONFLICTS_SHOWN
    conflict_count: int


def _address(version: int, value: int) -> str:
    if version == 4:
        return socket.inet_ntop(socket.AF_INET, value.to_bytes(4, "big"))
    return socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, "big"))


# ---------------------------------------------------------------------------
# Reading


def is_url(name: str) -> bool:
    return urllib.parse.urlsplit(name).scheme.lower() in URL_SCHEMES


def read_bytes(name: str) -> bytes:
    """The content of the file or URL ``name``, gunzipped when it is gzip (by its first bytes, not its name).

    Read whole: a registry's file is tens of megabytes at most, and a download
    that breaks half-way must fail here, before any line is believed.
    """
    try:
        if is_url(name):
            with urllib.request.urlopen(name, timeout=URL_TIMEOUT_S) as response:  # noqa: S310 - schemes checked
                data = response.read()
        else:
            data = Path(name).read_bytes()
    except (OSError, ValueError) as exc:
        raise DelegatedFileError(name, None, f"cannot be read ({exc})") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DelegatedFileError(name, None, f"is not a complete gzip file ({exc})") from None
    return data


def parse(lines, source: str, first_order: int = 0):
    """The delegations of one file's lines (bytes or str), in file order; DelegatedFileError on a bad line.

    Every record is checked, also those skipped (ASNs excepted): a damaged
    line means a damaged file, whatever block it was about.
    """
    seen_version = False
    order = first_order
    number = 0
    try:
        for number, raw in enumerate(lines, 1):
            line = raw.decode("ascii") if isinstance(raw, bytes) else raw
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split("|")
            if not seen_version:
                if len(fields) < 6 or not _VERSION_LINE.fullmatch(fields[0]):
                    raise DelegatedFileError(
                        source,
                        number,
                        "not a registry's delegated statistics file: the first line should be the version line "
                        f"(version|registry|serial|records|startdate|enddate|UTCoffset), found {_shown(line)}",
                    )
                seen_version = True
                continue
            if len(fields) >= 6 and fields[1] == "*" and fields[5] == "summary":
                continue
            delegation = _record(fields, line, source, number, order)
            if delegation is not None:
                order += 1
                yield delegation
    except UnicodeDecodeError:
        raise DelegatedFileError(source, number, "not ASCII text: is this a delegated statistics file?") from None
    if not seen_version:
        raise DelegatedFileError(source, None, "is empty: no version line, no records")


def _shown(line: str) -> str:
    return repr(line if len(line) <= 60 else line[:60] + "...")


def _record(fields, line, source, number, order) -> Delegation | None:
    def bad(message):
        return DelegatedFileError(source, number, f"{message}: {_shown(line)}")

    if len(fields) < 7:
        raise bad(f"{len(fields)} fields where a record has at least 7 (registry|cc|type|start|value|date|status)")
    _registry, country, kind, start_text, value_text, _date, status = fields[:7]
    kind, status = kind.lower(), status.lower()
    if kind == "asn":
        return None
    if kind not in ("ipv4", "ipv6"):
        raise bad(f"type {kind!r} is none of asn, ipv4, ipv6")
    if not value_text.isdigit():
        raise bad(f"{value_text!r} is not a whole number")
    value = int(value_text)
    try:
        packed = socket.inet_pton(socket.AF_INET if kind == "ipv4" else socket.AF_INET6, start_text)
    except OSError:
        raise bad(f"{start_text!r} is not an {kind[:2].upper()}{kind[2:]} address") from None
    start = int.from_bytes(packed, "big")
    if kind == "ipv4":
        if value < 1:
            raise bad("an IPv4 block of no addresses")
        end = start + value - 1
        if end > _IPV4_LAST:
            raise bad(f"{value} addresses from {start_text} run past 255.255.255.255")
    else:
        if value > 128:
            raise bad(f"a /{value} is no IPv6 prefix length")
        host_bits = (1 << (128 - value)) - 1
        if start & host_bits:
            raise bad(f"{start_text} is not the first address of a /{value}")
        end = start | host_bits
    if not (len(country) in (0, 2) and country.isascii() and (not country or country.isalpha())):
        raise bad(f"{country!r} is not a two-letter country code")
    country = country.upper()
    if country in _NO_COUNTRY:
        return None  # whatever its status says: a block of no country places no source
    if status not in _IN_USE and status not in _UNUSED:
        raise bad(f"status {status!r} is none of allocated, assigned, available, reserved")
    if status in _UNUSED:
        return None
    if kind == "ipv6" and value > contract.IPV6_UNIT_BITS:
        raise bad(f"a /{value}: the registries delegate no IPv6 block smaller than a /{contract.IPV6_UNIT_BITS}")
    return Delegation(4 if kind == "ipv4" else 6, start, end, country, order, source, number)


def read_sources(names) -> list[Delegation]:
    """Every delegation of every file, in the order given; DelegatedFileError on the first problem."""
    delegations: list[Delegation] = []
    for name in names:
        before = len(delegations)
        delegations.extend(parse(read_bytes(name).splitlines(), name, first_order=before))
        if len(delegations) == before:
            raise DelegatedFileError(name, None, "holds no IPv4 or IPv6 block with a country")
    return delegations


# ---------------------------------------------------------------------------
# Merging


def conflicts_of(delegations: list[Delegation]) -> tuple[list[Conflict], int]:
    """Overlapping delegations of different countries: the first CONFLICTS_SHOWN, and how many there are.

    ``delegations`` of one IP version, sorted by start. Each block is compared
    with the one reaching furthest before it, which finds every overlap but
    counts a block lying across several others once per neighbour at most.
    """
    shown: list[Conflict] = []
    count = 0
    reach = None
    for item in delegations:
        if reach is not None and item.start <= reach.end and item.country != reach.country:
            count += 1
            if len(shown) < CONFLICTS_SHOWN:
                earlier, later = sorted((reach, item), key=lambda d: d.order)
                shown.append(Conflict(earlier, later))
        if reach is None or item.end > reach.end:
            reach = item
    return shown, count


def merge(delegations: list[Delegation]) -> list[tuple[int, int, str]]:
    """Sorted, disjoint (start, end, country) ranges of one IP version, adjacent ranges of a country joined.

    Where blocks of different countries overlap, the block read later (files
    in the order given, then lines) holds the overlap: deterministic, and a
    file of local corrections given last overrides the registries'.
    """
    items = sorted(delegations, key=lambda d: (d.start, d.order))
    points = sorted({d.start for d in items} | {d.end + 1 for d in items})
    merged: list[list] = []
    active: list[tuple[int, int, str]] = []  # heap of (-order, end, country): the latest read on top
    next_item = 0
    for index, point in enumerate(points[:-1]):
        while next_item < len(items) and items[next_item].start == point:
            item = items[next_item]
            heapq.heappush(active, (-item.order, item.end, item.country))
            next_item += 1
        while active and active[0][1] < point:
            heapq.heappop(active)
        if not active:
            continue
        country = active[0][2]
        last = points[index + 1] - 1
        if merged and merged[-1][2] == country and merged[-1][1] + 1 == point:
            merged[-1][1] = last
        else:
            merged.append([point, last, country])
    return [(start, end, country) for start, end, country in merged]


def build(names) -> Table:
    """Read, check and merge the files into a table; DelegatedFileError before anything is stored."""
    names = tuple(names)
    delegations = read_sources(names)
    ipv4 = sorted((d for d in delegations if d.version == 4), key=lambda d: (d.start, d.order))
    ipv6 = sorted((d for d in delegations if d.version == 6), key=lambda d: (d.start, d.order))
    conflicts4, count4 = conflicts_of(ipv4)
    conflicts6, count6 = conflicts_of(ipv6)
    ranges4, ranges6 = merge(ipv4), merge(ipv6)
    blob = contract.encode_ip_countries(ranges4, ranges6)
    return Table(
        blob=blob,
        version=hashlib.sha256(blob).hexdigest()[:16],
        ipv4_ranges=len(ranges4),
        ipv6_ranges=len(ranges6),
        countries=len({country for _, _, country in ranges4} | {country for _, _, country in ranges6}),
        sources=tuple(Path(n).name if not is_url(n) else n for n in names),
        delegations=len(delegations),
        conflicts=tuple((conflicts4 + conflicts6)[:CONFLICTS_SHOWN]),
        conflict_count=count4 + count6,
    )


def overlay(base, over) -> list[tuple[int, int, str]]:
    """``base`` with ``over`` laid on it: both sorted, disjoint (start, end, country); ``over`` wins where they meet.

    One pass over each, so laying a handful of ranges over the registries'
    quarter-million costs no more than reading them.
    """
    pieces = list(over)
    j = 0
    for start, end, country in base:
        while j < len(over) and over[j][1] < start:
            j += 1
        point, k = start, j
        while k < len(over) and over[k][0] <= end:
            if over[k][0] > point:
                pieces.append((point, over[k][0] - 1, country))
            point = max(point, over[k][1] + 1)
            k += 1
        if point <= end:
            pieces.append((point, end, country))
    pieces.sort()
    joined: list[list] = []
    for start, end, country in pieces:
        if joined and joined[-1][2] == country and joined[-1][1] + 1 == start:
            joined[-1][1] = end
        else:
            joined.append([start, end, country])
    return [(start, end, country) for start, end, country in joined]


def operator_ranges() -> list[tuple[int, int, str]]:
    """The operators' ranges as sorted (first, last, country) integers."""
    return sorted((r.first, r.last, r.country) for r in IpCountryRange.objects.only("start_ip", "count", "country"))


def published_version(row, ranges) -> str | None:
    """The version the call cores see: the imported table's own, changed by any operator range."""
    if not ranges:
        return row.version if row is not None else None
    text = (row.version if row is not None else "") + "".join(f"|{a}-{b}={c}" for a, b, c in ranges)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def published_blob(row, ranges) -> bytes:
    """The blob the call cores load: the stored table's, or it with the operators' ranges laid over it."""
    blob = bytes(IpCountryTable.objects.values_list("blob", flat=True).get(pk=row.pk)) if row is not None else None
    if not ranges:
        return blob
    imported = contract.decode_ip_countries(blob) if blob is not None else None
    ipv4 = overlay(list(imported.ranges(4)) if imported else [], ranges)
    return contract.encode_ip_countries(ipv4, list(imported.ranges(6)) if imported else [])


# ---------------------------------------------------------------------------
# Storing and publishing


def import_files(names):
    """Build the table from ``names``, store it in place of the one before, then publish it.

    Returns (the stored IpCountryTable, the Table built, the version published or None when Redis failed).
    """
    table = build(names)
    row = store(table)
    return row, table, publish()


def store(table: Table):
    """Make ``table`` the one stored: one transaction, so a reader sees the old table or the new, never none."""

    with transaction.atomic():
        IpCountryTable.objects.all().delete()
        return IpCountryTable.objects.create(
            blob=table.blob,
            version=table.version,
            ipv4_ranges=table.ipv4_ranges,
            ipv6_ranges=table.ipv6_ranges,
            countries=table.countries,
            sources=list(table.sources),
        )


def current():
    """The stored table without its blob, or None when nothing was imported."""

    return IpCountryTable.objects.defer("blob").order_by("-imported_at").first()


def state(row=None) -> str:
    """One line an operator reads beside a phone's countries: what the geofence has to go on."""
    row = row if row is not None else current()
    placed = IpCountryRange.objects.count()
    by_operators = f" {placed} IPv4 range(s) placed by operators, which win over imported ones." if placed else ""
    if row is None:
        return (
            "No IP-country data imported: phones limited to countries are refused (manage.py import_ip_countries)."
            + by_operators
        )
    imported = timezone.localtime(row.imported_at).strftime("%Y-%m-%d %H:%M")
    return (
        f"{row.ipv4_ranges + row.ipv6_ranges:,} ranges ({row.ipv4_ranges:,} IPv4, {row.ipv6_ranges:,} IPv6) "
        f"in {row.countries} countries, imported {imported} from {', '.join(row.sources)}.{by_operators}"
    )


def keys():
    return contract.IpCountryKeys(prefix())


def publish():
    """Make Redis hold the stored table with the operators' ranges (or none, if neither exists); returns its
    version, None otherwise.

    Cheap when Redis already holds it (one GET and a query of the operators'
    few ranges), so the periodic snapshot republish calls it every time. A
    Redis failure is logged, not raised.
    """

    row = current()
    ranges = operator_ranges()
    version = published_version(row, ranges)
    k = keys()
    try:
        with redis_client(Waiter.JOB, name="portal:ip-countries") as client:
            if version is None:
                client.delete(k.version, k.blob)
                return None
            held = client.get(k.version)
            if held is not None and held.decode() == version and client.exists(k.blob):
                return version
            blob = published_blob(row, ranges)
            with client.pipeline(transaction=True) as pipe:
                # The blob first: a call core that reads the new version finds its blob beside it.
                pipe.set(k.blob, blob)
                pipe.set(k.version, version)
                pipe.execute()
    except redis.RedisError as exc:
        logger.error(
            "IP-country table not published to %s (%s: %s); the periodic republish will retry",
            k.version,
            type(exc).__name__,
            exc,
        )
        return None
    logger.info("IP-country table %s published (%d bytes, %d operator ranges)", version, len(blob), len(ranges))
    return version


def publish_after_commit(**kwargs):
    """After a committed change of an operator's range: the call cores see it on their next poll."""
    # robust: a failed publish is logged (and retried by the republish) and must not fail a committed save.
    transaction.on_commit(publish, robust=True)


def connect():
    from django.db.models.signals import post_delete, post_save

    post_save.connect(publish_after_commit, sender=IpCountryRange, dispatch_uid="ip-country-range-save")
    post_delete.connect(publish_after_commit, sender=IpCountryRange, dispatch_uid="ip-country-range-delete")
