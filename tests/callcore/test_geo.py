"""The IP-to-country table: its blob (contract), the call core's lookups and the phones' geofence rule."""

import logging
import zlib

import pytest

from callcore import contract, geo

from .factories import phone

V6_LOW = (1 << 64) - 1


def v4(text):
    import ipaddress

    return int(ipaddress.IPv4Address(text))


def v6(text):
    import ipaddress

    return int(ipaddress.IPv6Address(text))


IPV4 = [
    (v4("10.0.0.0"), v4("10.0.0.99"), "NL"),  # 100 addresses: not a CIDR block
    (v4("10.0.0.100"), v4("10.0.1.255"), "DE"),
    (v4("192.0.2.0"), v4("192.0.2.255"), "US"),
    (v4("255.255.255.0"), v4("255.255.255.255"), "AU"),
]
IPV6 = [
    (v6("2001:db8::"), v6("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"), "NL"),
    (v6("2001:db9::"), v6("2001:db9:0:ffff:ffff:ffff:ffff:ffff"), "DE"),
]


@pytest.fixture
def table():
    return geo.CountryTable.from_blob(contract.encode_ip_countries(IPV4, IPV6), "v1")


# -- the blob ------------------------------------------------------------------------------------


def test_the_blob_gives_back_the_ranges_it_was_made_of():
    ranges = contract.decode_ip_countries(contract.encode_ip_countries(IPV4, IPV6))

    assert list(ranges.ranges(4)) == IPV4
    assert list(ranges.ranges(6)) == IPV6
    assert ranges.countries == ("AU", "DE", "NL", "US")


def test_an_empty_table_round_trips():
    ranges = contract.decode_ip_countries(contract.encode_ip_countries([], []))
    assert list(ranges.ranges(4)) == [] and list(ranges.ranges(6)) == []


@pytest.mark.parametrize(
    ("ipv4", "ipv6", "message"),
    [
        ([(5, 10, "NL"), (10, 20, "DE")], [], "overlaps or precedes"),
        ([(20, 30, "NL"), (5, 10, "DE")], [], "overlaps or precedes"),
        ([(10, 5, "NL")], [], "not a range of IPv4 addresses"),
        ([(0, 2**32, "NL")], [], "not a range of IPv4 addresses"),
        ([(0, 5, "nl")], [], "not a two-letter upper-case country code"),
        ([(0, 5, "NLD")], [], "not a two-letter upper-case country code"),
        ([], [(v6("2001:db8::1"), v6("2001:db8::ffff"), "NL")], "whole /64 networks"),
    ],
)
def test_encoding_refuses_ranges_a_lookup_could_not_trust(ipv4, ipv6, message):
    with pytest.raises(contract.IpCountryError, match=message):
        contract.encode_ip_countries(ipv4, ipv6)


def corrupt(raw_change):
    raw = bytearray(zlib.decompress(contract.encode_ip_countries(IPV4, IPV6)))
    raw_change(raw)
    return zlib.compress(bytes(raw))


def swap_first_two_ipv4_starts(raw):
    header = 6 + 2 + 2 + 4 + 4
    first = header + 2 * 4  # after the four country codes
    raw[first : first + 8] = raw[first + 4 : first + 8] + raw[first : first + 4]


def point_at_a_missing_country(raw):
    header = 6 + 2 + 2 + 4 + 4
    indexes = header + 2 * 4 + 4 * len(IPV4) * 2
    raw[indexes : indexes + 2] = (9).to_bytes(2, "little")


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"not zlib at all", "not a complete zlib stream"),
        (contract.encode_ip_countries(IPV4, IPV6)[:-10], "not a complete zlib stream"),
        (zlib.compress(b"short"), "shorter than its header"),
        (zlib.compress(b"XXXXXX" + bytes(40)), "wrong magic"),
        (corrupt(lambda raw: raw.__setitem__(slice(6, 8), (99).to_bytes(2, "little"))), "format 99"),
        (corrupt(lambda raw: raw.extend(b"\0")), "header announces"),
        (corrupt(lambda raw: raw.__setitem__(slice(18, 20), b"n1")), "not a two-letter"),
        (corrupt(swap_first_two_ipv4_starts), "IPv4 range"),
        (corrupt(point_at_a_missing_country), "names a country it does not list"),
        ("a string", "must be bytes"),
    ],
    ids=["garbage", "truncated", "short", "magic", "format", "length", "country", "order", "index", "type"],
)
def test_decoding_refuses_a_corrupt_blob(blob, message):
    with pytest.raises(contract.IpCountryError, match=message):
        contract.decode_ip_countries(blob)


def test_the_keys_live_under_the_prefix():
    keys = contract.IpCountryKeys("ss")
    assert (keys.version, keys.blob) == ("ss:ipcountry:version", "ss:ipcountry:blob")


# -- lookups ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("9.255.255.255", None),  # one before the first range
        ("10.0.0.0", "NL"),  # first address
        ("10.0.0.99", "NL"),  # last address of a 100-address block
        ("10.0.0.100", "DE"),  # one past: the next range
        ("10.0.1.255", "DE"),
        ("10.0.2.0", None),  # one past the last address
        ("192.0.2.128", "US"),
        ("0.0.0.0", None),
        ("255.255.255.255", "AU"),  # the very last address
        ("2001:db8::", "NL"),
        ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "NL"),
        ("2001:db9::1", "DE"),
        ("2001:db9:0:ffff::1", "DE"),
        ("2001:db9:1::", None),  # one /64 past the /48
        ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("[2001:db8::5]", "NL"),  # as a Via or a URI writes it
        ("::ffff:10.0.0.5", "NL"),  # IPv4-mapped: a dual-stack socket's view of an IPv4 peer
        ("::ffff:192.0.2.1", "US"),
        ("::ffff:11.0.0.1", None),
        ("", None),
        ("example.com", None),
        ("10.0.0", None),
        ("10.0.0.256", None),
        ("fe80::1%eth0", None),
        (None, None),
    ],
)
def test_a_lookup_finds_the_country_of_an_address(table, ip, country):
    assert table.country(ip) == country


def test_an_empty_table_places_nothing():
    empty = geo.CountryTable.from_blob(contract.encode_ip_countries([], []), "empty")
    assert empty.country("10.0.0.1") is None and empty.country("2001:db8::1") is None


# -- the phones' rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("networks", "countries", "ip", "allowed"),
    [
        ((), (), "203.0.113.9", True),  # no geofence
        (("198.51.100.0/24",), (), "198.51.100.7", True),
        (("198.51.100.0/24",), (), "10.0.0.1", False),
        ((), ("NL",), "10.0.0.1", True),
        ((), ("NL",), "192.0.2.1", False),
        ((), ("NL", "US"), "192.0.2.1", True),
        ((), ("NL",), "203.0.113.9", False),  # in no range: no country
        ((), ("NL",), "2001:db8::1", True),
        ((), ("NL",), "::ffff:10.0.0.1", True),
        (("198.51.100.0/24",), ("NL",), "198.51.100.7", True),  # the office LAN ...
        (("198.51.100.0/24",), ("NL",), "10.0.0.1", True),  # ... or the country
        (("198.51.100.0/24",), ("NL",), "192.0.2.1", False),
        (("10.0.0.0/8",), (), "::ffff:10.0.0.1", True),
    ],
)
def test_a_phone_is_allowed_from_any_of_its_networks_or_countries(table, networks, countries, ip, allowed):
    limited = phone(allowed_networks=networks, allowed_countries=countries)
    assert geo.source_allowed(limited, ip, table) is allowed


def test_a_phone_limited_to_countries_is_refused_while_no_table_is_loaded():
    assert not geo.source_allowed(phone(allowed_countries=("NL",)), "10.0.0.1", None)
    assert geo.source_allowed(phone(allowed_networks=("10.0.0.0/8",), allowed_countries=("NL",)), "10.0.0.1", None)
    assert geo.source_allowed(phone(), "10.0.0.1", None)


# -- the loader of a call-core process -------------------------------------------------------------


class FakeRedis:
    def __init__(self):
        self.data = {}
        self.calls = []
        self.down = False

    def execute(self, *args):
        self.calls.append(args[0])
        if self.down:
            raise ConnectionError("Redis is down")
        if args[0] == "GET":
            return self.data.get(args[1])
        if args[0] == "MGET":
            return [self.data.get(key) for key in args[1:]]
        raise AssertionError(args)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def loader_parts():
    redis, clock = FakeRedis(), Clock()
    loader = geo.CountryLoader(redis.execute, "t", clock=clock)
    return redis, clock, loader


def publish(redis, blob, version):
    keys = contract.IpCountryKeys("t")
    redis.data[keys.blob] = blob
    redis.data[keys.version] = version


def test_the_loader_installs_a_table_and_fetches_it_again_only_when_its_version_changes(loader_parts):
    redis, clock, loader = loader_parts
    publish(redis, contract.encode_ip_countries(IPV4, []), b"v1")
    loader.refresh_if_due()
    assert loader.version == "v1" and loader.table.country("10.0.0.1") == "NL"

    redis.calls.clear()
    clock.now += contract.IP_COUNTRY_POLL_S - 1
    loader.refresh_if_due()
    assert redis.calls == []  # not due: no round trip at all
    clock.now += 1
    loader.refresh_if_due()
    assert redis.calls == ["GET"]  # due, unchanged: the version only

    publish(redis, contract.encode_ip_countries([(v4("10.0.0.0"), v4("10.0.0.255"), "BE")], []), b"v2")
    clock.now += contract.IP_COUNTRY_POLL_S
    loader.refresh_if_due()
    assert loader.version == "v2" and loader.table.country("10.0.0.1") == "BE"


def test_the_loader_keeps_its_table_when_redis_fails_loses_it_or_holds_a_corrupt_one(loader_parts, caplog):
    redis, clock, loader = loader_parts
    publish(redis, contract.encode_ip_countries(IPV4, []), b"v1")
    loader.refresh()

    redis.down = True
    loader.refresh()
    assert loader.version == "v1"
    redis.down = False

    redis.data.clear()  # a Redis that lost its data
    loader.refresh()
    assert loader.version == "v1"

    publish(redis, b"garbage", b"v2")
    with caplog.at_level(logging.ERROR, logger="callcore.geo"):
        loader.refresh()
    assert loader.version == "v1" and "v2 refused" in caplog.text
    redis.calls.clear()
    loader.refresh()
    assert redis.calls == ["GET"]  # a refused version is not fetched again


def test_a_refusal_for_want_of_a_table_is_logged_at_most_once_a_minute(loader_parts, caplog):
    redis, clock, loader = loader_parts
    limited = phone(allowed_countries=("NL",))
    with caplog.at_level(logging.ERROR, logger="callcore.geo"):
        for _ in range(5):
            assert not loader.allows(limited, "10.0.0.1")
            clock.now += 10
        assert caplog.text.count("no IP-country table is loaded") == 1
        clock.now += geo.MISSING_TABLE_LOG_S
        assert not loader.allows(limited, "10.0.0.1")
    assert caplog.text.count("no IP-country table is loaded") == 2
    assert loader.allows(phone(), "10.0.0.1")
