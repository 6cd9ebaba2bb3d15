"""Importing the registries' delegated statistics as the IP-to-country table, and publishing it to Redis."""

import functools
import gzip
import http.server
import threading
from pathlib import Path

import pytest
import redis
from django.core.management import call_command
from django.core.management.base import CommandError

from callcore import contract
from security import ip_countries
from security.models import IpCountryTable
from softswitch_portal.switching import tasks

SAMPLE = Path(__file__).parent / "data" / "delegated-test-extended.txt"
HEADER = "2|test|20240101|3|19830101|20240101|+0000\n"


def ranges_of(table, version=4):
    shown = []
    for start, end, country in contract.decode_ip_countries(table.blob).ranges(version):
        shown.append((ip_countries._address(version, start), ip_countries._address(version, end), country))
    return shown


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# -- parsing -----------------------------------------------------------------------------------------


def test_the_sample_file_gives_its_blocks_in_use_merged():
    table = ip_countries.build([str(SAMPLE)])

    assert ranges_of(table, 4) == [
        ("100.64.0.0", "100.64.2.255", "US"),  # 768 addresses: three /24s, no CIDR block
        ("192.0.2.0", "192.0.2.255", "NL"),
        ("198.51.100.0", "198.51.100.255", "NL"),  # two adjacent /25s of one country, joined
        ("203.0.113.0", "203.0.113.99", "DE"),  # 100 addresses
    ]
    assert ranges_of(table, 6) == [
        ("2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "NL"),
        ("2001:db9::", "2001:db9:0:ffff:ffff:ffff:ffff:ffff", "DE"),
    ]
    # The header, the summaries, the ASN, the reserved and available blocks (ZZ or no country) are not ranges.
    assert (table.ipv4_ranges, table.ipv6_ranges, table.countries, table.delegations) == (4, 2, 3, 7)
    assert table.sources == ("delegated-test-extended.txt",)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("test|NL|ipv4|192.0.2.0|256|20000101", "6 fields where a record has at least 7"),
        ("test|NL|ipv4|192.0.2.300|256|20000101|allocated", "'192.0.2.300' is not an IPv4 address"),
        ("test|NL|ipv4|192.0.2.0|lots|20000101|allocated", "'lots' is not a whole number"),
        ("test|NL|ipv4|192.0.2.0|0|20000101|allocated", "no addresses"),
        ("test|NL|ipv4|255.255.255.0|512|20000101|allocated", "run past 255.255.255.255"),
        ("test|NL|ipv6|2001:db8::1|32|20000101|allocated", "not the first address of a /32"),
        ("test|NL|ipv6|2001:db8::|96|20000101|allocated", "a /96: the registries delegate no IPv6 block smaller"),
        ("test|NL|ipv6|2001:db8::|129|20000101|allocated", "a /129 is no IPv6 prefix length"),
        ("test||ipv6|2001:db8::1|32||reserved", "not the first address of a /32"),  # checked though skipped
        ("test|NL|ipv6|192.0.2.0|32|20000101|allocated", "is not an IPv6 address"),
        ("test|NL|ipx|192.0.2.0|256|20000101|allocated", "type 'ipx' is none of asn, ipv4, ipv6"),
        ("test|NL|ipv4|192.0.2.0|256|20000101|stolen", "status 'stolen'"),
        ("test|N1|ipv4|192.0.2.0|256|20000101|allocated", "'N1' is not a two-letter country code"),
        ("test|NLD|ipv4|192.0.2.0|256|20000101|allocated", "'NLD' is not a two-letter country code"),
    ],
)
def test_a_malformed_line_is_refused_naming_the_file_and_the_line(tmp_path, line, message):
    good = "test|DE|ipv4|203.0.113.0|256|20000101|allocated\n"
    path = write(tmp_path, "delegated-bad.txt", HEADER + good + line + "\n" + good)

    with pytest.raises(ip_countries.DelegatedFileError) as refused:
        ip_countries.build([path])

    assert (refused.value.source, refused.value.line) == (path, 3)
    assert str(refused.value).startswith(f"{path}, line 3: ")
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("<html><body>Not found</body></html>\n", 1, "not a registry's delegated statistics file"),
        ("prefix,price\n44,0.05\n", 1, "not a registry's delegated statistics file"),
        ("", None, "is empty"),
        ("# only a comment\n", None, "is empty"),
        (HEADER + "test|*|ipv4|*|0|summary\n", None, "holds no IPv4 or IPv6 block"),
        (HEADER + "test|NL|ipv4|192.0.2.0|256|2000|allocated\n\xff\n", 3, "not ASCII text"),
    ],
    ids=["html", "csv", "empty", "comment", "nothing", "binary"],
)
def test_a_file_of_another_kind_is_refused(tmp_path, text, line, message):
    path = tmp_path / "wrong.txt"
    path.write_bytes(text.encode("latin-1"))

    with pytest.raises(ip_countries.DelegatedFileError) as refused:
        ip_countries.build([str(path)])

    assert (refused.value.source, refused.value.line) == (str(path), line)
    assert message in str(refused.value)


def test_a_missing_file_or_a_broken_gzip_is_refused(tmp_path):
    with pytest.raises(ip_countries.DelegatedFileError, match="cannot be read"):
        ip_countries.build([str(tmp_path / "nowhere.txt")])
    broken = tmp_path / "broken.txt.gz"
    broken.write_bytes(gzip.compress(SAMPLE.read_bytes())[:-20])
    with pytest.raises(ip_countries.DelegatedFileError, match="not a complete gzip file"):
        ip_countries.build([str(broken)])


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_a_gzip_file_and_a_url_are_read(tmp_path):
    packed = tmp_path / "delegated.gz"
    packed.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    plain = ip_countries.build([str(SAMPLE)])

    assert ip_countries.build([str(packed)]).blob == plain.blob
    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/delegated.gz"
            table = ip_countries.build([url])
            with pytest.raises(ip_countries.DelegatedFileError, match="missing.txt: cannot be read"):
                ip_countries.build([url.replace("delegated.gz", "missing.txt")])
        finally:
            server.shutdown()
    assert table.blob == plain.blob and table.sources == (url,)


def test_a_block_of_no_country_is_skipped_whatever_its_status(tmp_path):
    path = write(
        tmp_path,
        "pool.txt",
        HEADER + "a|NL|ipv4|10.0.0.0|256|2000|allocated\n"
        "a||ipv4|10.1.0.0|65536||ianapool\n"
        "a|ZZ|ipv6|2001:db8::|96||reserved\n",
    )
    assert ranges_of(ip_countries.build([path])) == [("10.0.0.0", "10.0.0.255", "NL")]


def test_overlapping_blocks_of_different_countries_go_to_the_one_read_later(tmp_path):
    first = write(tmp_path, "first.txt", HEADER + "a|NL|ipv4|10.0.0.0|1024|2000|allocated\n")
    second = write(tmp_path, "second.txt", HEADER + "b|DE|ipv4|10.0.1.0|256|2000|assigned\n")

    table = ip_countries.build([first, second])

    assert ranges_of(table) == [
        ("10.0.0.0", "10.0.0.255", "NL"),
        ("10.0.1.0", "10.0.1.255", "DE"),
        ("10.0.2.0", "10.0.3.255", "NL"),
    ]
    assert table.conflict_count == 1
    assert str(table.conflicts[0]) == (
        f"10.0.1.0-10.0.1.255: NL ({first}, line 2) and DE ({second}, line 2); DE, read later, wins"
    )
    # The other order: the larger block, read later, covers it all.
    assert ranges_of(ip_countries.build([second, first])) == [("10.0.0.0", "10.0.3.255", "NL")]


def test_overlapping_blocks_of_one_country_are_joined_without_a_conflict(tmp_path):
    path = write(
        tmp_path,
        "dupes.txt",
        HEADER + "a|NL|ipv4|10.0.0.0|512|2000|allocated\n"
        "a|NL|ipv4|10.0.1.0|512|2000|allocated\n"
        "a|NL|ipv4|10.0.0.0|256|2000|allocated\n",
    )
    table = ip_countries.build([path])
    assert ranges_of(table) == [("10.0.0.0", "10.0.2.255", "NL")]
    assert table.conflict_count == 0


# -- the command: all or nothing ----------------------------------------------------------------------


@pytest.fixture
def table_keys(settings):
    keys = contract.IpCountryKeys(settings.REDIS_PREFIX)
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(keys.version, keys.blob)
    yield keys, client
    client.delete(keys.version, keys.blob)
    client.close()


@pytest.mark.django_db
def test_the_command_imports_stores_and_publishes_the_table(table_keys, capsys):
    keys, client = table_keys

    call_command("import_ip_countries", str(SAMPLE))

    row = IpCountryTable.objects.get()
    assert (row.ipv4_ranges, row.ipv6_ranges, row.countries) == (4, 2, 3)
    assert row.sources == ["delegated-test-extended.txt"]
    assert client.get(keys.version) == row.version.encode()
    assert bytes(row.blob) == client.get(keys.blob)
    assert contract.decode_ip_countries(client.get(keys.blob)).countries == ("DE", "NL", "US")
    assert "as 4 IPv4 and 2 IPv6 ranges in 3 countries" in capsys.readouterr().out


@pytest.mark.django_db
def test_a_bad_second_file_leaves_the_table_imported_before(tmp_path, table_keys):
    keys, client = table_keys
    call_command("import_ip_countries", str(SAMPLE))
    before = IpCountryTable.objects.get()
    other = write(tmp_path, "other.txt", HEADER + "x|FR|ipv4|10.0.0.0|256|2000|allocated\n")
    bad = write(tmp_path, "bad.txt", HEADER + "x|FR|ipv4|10.0.0.0|256|2000|allocated\nx|FR|ipv4|10.0.1.0\n")

    with pytest.raises(CommandError, match=r"Nothing imported: .*bad\.txt, line 3: 4 fields"):
        call_command("import_ip_countries", other, bad)

    after = IpCountryTable.objects.get()
    assert (after.pk, after.version, bytes(after.blob)) == (before.pk, before.version, bytes(before.blob))
    assert client.get(keys.version) == before.version.encode()


@pytest.mark.django_db
def test_a_new_import_replaces_the_table(tmp_path, table_keys):
    keys, client = table_keys
    call_command("import_ip_countries", str(SAMPLE))
    other = write(tmp_path, "other.txt", HEADER + "x|FR|ipv4|10.0.0.0|256|2000|allocated\n")

    call_command("import_ip_countries", other)

    row = IpCountryTable.objects.get()
    assert ranges_of(row) == [("10.0.0.0", "10.0.0.255", "FR")]
    assert client.get(keys.version) == row.version.encode()


@pytest.mark.django_db
def test_stored_but_not_published_when_redis_is_down(settings, table_keys, capsys):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    call_command("import_ip_countries", str(SAMPLE))

    assert IpCountryTable.objects.count() == 1
    assert "Stored, but not published" in capsys.readouterr().err


# -- republishing ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_periodic_republish_refills_a_redis_that_lost_the_table(table_keys):
    keys, client = table_keys
    row = ip_countries.store(ip_countries.build([str(SAMPLE)]))
    assert client.get(keys.version) is None

    tasks.republish_snapshot()
    assert client.get(keys.version) == row.version.encode()

    client.delete(keys.blob)  # half lost: the version alone is not enough
    tasks.republish_snapshot()
    assert client.get(keys.blob) == bytes(row.blob)


@pytest.mark.django_db
def test_the_start_up_publish_publishes_the_table(table_keys, capsys):
    keys, client = table_keys
    row = ip_countries.store(ip_countries.build([str(SAMPLE)]))

    call_command("publish_snapshot")

    assert client.get(keys.version) == row.version.encode()
    assert f"IP-country table {row.version} is current" in capsys.readouterr().out


@pytest.mark.django_db
def test_a_table_the_database_no_longer_holds_leaves_redis_too(table_keys):
    keys, client = table_keys
    ip_countries.store(ip_countries.build([str(SAMPLE)]))
    ip_countries.publish()
    IpCountryTable.objects.all().delete()

    assert ip_countries.publish() is None
    assert client.get(keys.version) is None and client.get(keys.blob) is None


# -- the operators' ranges ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "over", "expected"),
    [
        ([(0, 99, "DE")], [(40, 49, "FR")], [(0, 39, "DE"), (40, 49, "FR"), (50, 99, "DE")]),  # inside one
        (
            [(0, 9, "DE"), (20, 29, "NL")],
            [(5, 24, "FR")],
            [(0, 4, "DE"), (5, 24, "FR"), (25, 29, "NL")],
        ),  # across a gap
        ([(0, 9, "DE")], [(0, 9, "FR")], [(0, 9, "FR")]),  # the whole of one
        ([(0, 9, "DE")], [(10, 19, "DE")], [(0, 19, "DE")]),  # beside one of its country: joined
        ([], [(3, 4, "FR")], [(3, 4, "FR")]),  # nothing imported
        ([(0, 9, "DE"), (10, 19, "NL")], [], [(0, 9, "DE"), (10, 19, "NL")]),
    ],
)
def test_an_operators_range_wins_where_it_overlaps_the_imported_table(base, over, expected):
    assert ip_countries.overlay(base, over) == expected


@pytest.mark.django_db
def test_the_version_published_changes_with_the_operators_ranges(table_keys):
    from security.models import IpCountryRange

    keys, client = table_keys
    row = ip_countries.store(ip_countries.build([str(SAMPLE)]))
    assert ip_countries.publish() == row.version
    limit = IpCountryRange.objects.create(start_ip="10.1.0.0", count=256, country="BE")
    with_range = ip_countries.publish()
    assert with_range != row.version and client.get(keys.version) == with_range.encode()
    table = contract.decode_ip_countries(client.get(keys.blob))
    assert (167837696, 167837951, "BE") in list(table.ranges(4)) and len(list(table.ranges(6))) == 2
    limit.delete()
    assert ip_countries.publish() == row.version and client.get(keys.blob) == bytes(row.blob)
