"""The IP-to-country table behind the phones' allowed countries: its packed blob and codec."""

from __future__ import annotations

import array
import itertools
import operator
import struct
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = [
    "IP_COUNTRY_FORMAT",
    "IP_COUNTRY_ZLIB_LEVEL",
    "IP_COUNTRY_POLL_S",
    "IPV6_UNIT_BITS",
    "IpCountryError",
    "IpCountryRanges",
    "encode_ip_countries",
    "decode_ip_countries",
]


# IP-to-country table: the data behind a phone's allowed countries (geofence)
#
# The portal imports the registries' delegated statistics into PostgreSQL
# (security.ip_countries) and publishes the merged ranges as one blob beside a
# version; each call-core process keeps the table in memory (callcore.geo) and
# reads the version on its periodic poll. The blob is packed integers, column
# by column, zlib-compressed: JSON of ~250k ranges would take longer to parse
# than every process may spend at start.
#
# Layout before compression: the header (magic, format, number of countries,
# IPv4 ranges, IPv6 ranges), the country codes (2 ASCII letters each), then
# for IPv4 the starts (u32), the ends (u32, inclusive) and the country indexes
# (u16), then the same for IPv6 with u64 bounds; little-endian throughout.
# Bump IP_COUNTRY_FORMAT on any change of that layout.

IP_COUNTRY_FORMAT = 1
_IP_COUNTRY_MAGIC = b"SSIPCC"
_IP_COUNTRY_HEADER = struct.Struct("<6sHHII")
# zlib's default: level 9 is slower for a blob no smaller, and the load does not care (bench/README.md).
IP_COUNTRY_ZLIB_LEVEL = 6
# How often each call-core process reads IpCountryKeys.version (a GET on its snapshot poll).
IP_COUNTRY_POLL_S = 10.0
# An IPv6 bound is the address's upper 64 bits (its /64 network): registries delegate nothing smaller
# than a /64, and 64-bit integers keep the arrays native, so a lookup is a C-level bisect.
IPV6_UNIT_BITS = 64
_IPV6_LOW = (1 << IPV6_UNIT_BITS) - 1
_IPV4_MAX = (1 << 32) - 1
_IPV6_UNIT_MAX = (1 << (128 - IPV6_UNIT_BITS)) - 1


def _typecode(size: int) -> str:
    """The array typecode of unsigned integers of ``size`` bytes on this platform."""
    return next(code for code in "BHILQ" if array.array(code).itemsize == size)


_U16, _U32, _U64 = _typecode(2), _typecode(4), _typecode(8)


class IpCountryError(ValueError):
    """IP-to-country ranges that cannot be trusted; the message says what is wrong."""


@dataclass(frozen=True, eq=False)
class IpCountryRanges:
    """Sorted, disjoint address ranges with their country, as parallel arrays: what a binary search wants.

    ``ipv4_*`` bounds are addresses, ``ipv6_*`` bounds /64 network numbers
    (see IPV6_UNIT_BITS); ends are inclusive; ``*_countries`` index ``countries``.
    """

    countries: tuple[str, ...]
    ipv4_starts: array.array
    ipv4_ends: array.array
    ipv4_countries: array.array
    ipv6_starts: array.array
    ipv6_ends: array.array
    ipv6_countries: array.array

    def ranges(self, version: int) -> Iterator[tuple[int, int, str]]:
        """(first address, last address, country) of every IPv4 or IPv6 range, in order."""
        countries = self.countries
        if version == 4:
            for start, end, index in zip(self.ipv4_starts, self.ipv4_ends, self.ipv4_countries, strict=True):
                yield start, end, countries[index]
        else:
            for start, end, index in zip(self.ipv6_starts, self.ipv6_ends, self.ipv6_countries, strict=True):
                yield start << IPV6_UNIT_BITS, (end << IPV6_UNIT_BITS) | _IPV6_LOW, countries[index]


def _valid_country(code: object) -> bool:
    return type(code) is str and len(code) == 2 and code.isascii() and code.isalpha() and code.isupper()


def _range_error(version: int, first: int, last: int, message: str) -> IpCountryError:
    return IpCountryError(f"IPv{version} range {first}-{last}: {message}")


def encode_ip_countries(ipv4: Iterable[tuple[int, int, str]], ipv6: Iterable[tuple[int, int, str]]) -> bytes:
    """The blob of sorted, disjoint (first address, last address, country) ranges; IpCountryError otherwise.

    IPv6 ranges must cover whole /64 networks (as every delegated prefix does).
    """
    columns = []
    for version, ranges in ((4, ipv4), (6, ipv6)):
        starts, ends, codes = [], [], []
        previous_end = -1
        valid = set()  # the codes already checked: a quarter-million ranges share some 250 of them
        limit = _IPV4_MAX if version == 4 else _IPV6_UNIT_MAX
        for first, last, country in ranges:
            start, end = first, last
            if version == 6:
                if start & _IPV6_LOW or ~end & _IPV6_LOW:
                    raise _range_error(version, first, last, "IPv6 ranges must cover whole /64 networks")
                start, end = start >> IPV6_UNIT_BITS, end >> IPV6_UNIT_BITS
            if not 0 <= start <= end <= limit:
                raise _range_error(version, first, last, f"not a range of IPv{version} addresses")
            if start <= previous_end:
                raise _range_error(version, first, last, "overlaps or precedes the range before it")
            if country not in valid:
                if not _valid_country(country):
                    message = f"{country!r} is not a two-letter upper-case country code"
                    raise _range_error(version, first, last, message)
                valid.add(country)
            previous_end = end
            starts.append(start)
            ends.append(end)
            codes.append(country)
        columns.append((starts, ends, codes))
    countries = tuple(sorted({code for _, _, codes in columns for code in codes}))
    index = {code: i for i, code in enumerate(countries)}
    parts = [
        _IP_COUNTRY_HEADER.pack(
            _IP_COUNTRY_MAGIC, IP_COUNTRY_FORMAT, len(countries), len(columns[0][0]), len(columns[1][0])
        ),
        "".join(countries).encode("ascii"),
    ]
    for (starts, ends, codes), bound in zip(columns, (_U32, _U64), strict=True):
        for values in (array.array(bound, starts), array.array(bound, ends), array.array(_U16, map(index.get, codes))):
            if sys.byteorder == "big":
                values.byteswap()
            parts.append(values.tobytes())
    return zlib.compress(b"".join(parts), IP_COUNTRY_ZLIB_LEVEL)


def decode_ip_countries(blob: bytes) -> IpCountryRanges:
    """Decompress and check a blob (sizes, codes, order, overlaps); any problem raises IpCountryError."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise IpCountryError(f"IP-country blob must be bytes, got {type(blob).__name__}")
    try:
        raw = zlib.decompress(blob)
    except zlib.error as exc:
        raise IpCountryError(f"IP-country blob is not a complete zlib stream ({exc})") from None
    if len(raw) < _IP_COUNTRY_HEADER.size:
        raise IpCountryError("IP-country blob is shorter than its header")
    magic, version, n_countries, n_ipv4, n_ipv6 = _IP_COUNTRY_HEADER.unpack_from(raw)
    if magic != _IP_COUNTRY_MAGIC:
        raise IpCountryError("not an IP-country blob (wrong magic)")
    if version != IP_COUNTRY_FORMAT:
        raise IpCountryError(
            f"IP-country blob format {version} is not the {IP_COUNTRY_FORMAT} this side reads; "
            "upgrade the side that is behind"
        )
    expected = _IP_COUNTRY_HEADER.size + 2 * n_countries + n_ipv4 * (4 + 4 + 2) + n_ipv6 * (8 + 8 + 2)
    if len(raw) != expected:
        raise IpCountryError(f"IP-country blob holds {len(raw)} bytes where its header announces {expected}")
    offset = _IP_COUNTRY_HEADER.size
    text = raw[offset : offset + 2 * n_countries].decode("ascii", "replace")
    countries = tuple(text[i : i + 2] for i in range(0, len(text), 2))
    offset += 2 * n_countries
    bad = [code for code in countries if not _valid_country(code)]
    if bad:
        raise IpCountryError(f"IP-country blob: {bad[0]!r} is not a two-letter upper-case country code")
    if list(countries) != sorted(set(countries)):
        raise IpCountryError("IP-country blob: the country codes are not sorted and unique")

    def column(code, count):
        nonlocal offset
        values = array.array(code)
        values.frombytes(raw[offset : offset + count * values.itemsize])
        offset += count * values.itemsize
        if sys.byteorder == "big":
            values.byteswap()
        return values

    arrays = []
    for version_name, bound, count in (("IPv4", _U32, n_ipv4), ("IPv6", _U64, n_ipv6)):
        starts, ends, indexes = column(bound, count), column(bound, count), column(_U16, count)
        # Checked in C-level passes (map over operator functions): a Python loop would cost each
        # process tens of milliseconds at start on a quarter-million ranges.
        if not all(map(operator.le, starts, ends)):
            raise IpCountryError(f"IP-country blob: an {version_name} range ends before it starts")
        if not all(map(operator.lt, ends, itertools.islice(starts, 1, None))):
            raise IpCountryError(f"IP-country blob: {version_name} ranges overlap or are out of order")
        if count and max(indexes) >= n_countries:
            raise IpCountryError(f"IP-country blob: an {version_name} range names a country it does not list")
        arrays += [starts, ends, indexes]
    return IpCountryRanges(countries, *arrays)
