"""The call core's snapshot loader: lookups, Redis loading, refusal of bad blobs, the disk copy, the listener."""

import os
import socket
import time

import msgspec
import pytest
import redis

from callcore import contract
from callcore.snapshot import IndexedSnapshot, SnapshotLoader

# The validity bounds of the 4479 rates in the sample snapshot (conftest.py).
JAN_2030_MS = 1_893_456_000_000
FEB_2030_MS = 1_896_134_400_000


def install(client, prefix, version, blob, *, announce=True):
    """Make ``blob`` current the way the portal's publisher lays it out, signed with the run's key (conftest.py)."""
    keys = contract.SnapshotKeys(prefix)
    client.set(keys.blob(version), blob)
    client.set(keys.signature(version), contract.sign_snapshot(signing_key(), blob))
    client.set(keys.current, version)
    if announce:
        client.publish(keys.channel, version)


def signing_key():
    return contract.signing_key(os.environ[contract.SIGNING_KEY_ENV])


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout=1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.fixture
def index(sample_snapshot):
    return IndexedSnapshot(sample_snapshot, version=7)


@pytest.fixture
def loader(snapshot_redis, redis_prefix, tmp_path):
    loader = SnapshotLoader(snapshot_redis, redis_prefix, tmp_path / "snapshot.bin", poll_interval=0.2)
    yield loader
    loader.stop()


# -- lookups -----------------------------------------------------------------


def test_route_candidates_come_from_the_longest_matching_prefix(index):
    assert [g.id for g in index.route_candidates("447700900123")] == [2, 5]
    assert [g.id for g in index.route_candidates("442071234567")] == [2, 1]


def test_a_gateway_without_prefixes_serves_what_nothing_longer_does(index):
    assert [g.id for g in index.route_candidates("33123456")] == [4]


def test_a_disabled_gateway_neither_routes_nor_shadows_a_shorter_prefix(index):
    # Gateway 3 (disabled) has 4477; the enabled 447 gateways must still be found.
    assert [g.id for g in index.route_candidates("447712345678")] == [2, 5]


def test_the_rate_is_the_longest_prefix_valid_at_the_time(index):
    assert index.rate(1, "447700900123", JAN_2030_MS).price_per_minute == "0.0600"
    assert index.rate(1, "442071234567", JAN_2030_MS).price_per_minute == "0.0200"
    assert index.rate(1, "33123456", JAN_2030_MS).area == "Rest of world"


def test_a_rate_not_yet_valid_or_expired_gives_way(index):
    before = JAN_2030_MS - 1
    assert index.rate(1, "447912345678", before).prefix == "447"  # no 4479 price yet
    assert index.rate(1, "447912345678", JAN_2030_MS).price_per_minute == "0.0100"  # the January promotion
    assert index.rate(1, "447912345678", FEB_2030_MS - 1).price_per_minute == "0.0100"
    assert index.rate(1, "447912345678", FEB_2030_MS).price_per_minute == "0.0900"  # promotion over


def test_an_unknown_rate_table_has_no_rate(index):
    assert index.rate(99, "44", JAN_2030_MS) is None


def test_mapping_gateways_are_found_by_exact_source_ip(index):
    assert index.mapping_gateway_for("203.0.113.10").id == 1
    assert index.mapping_gateway_for("2001:db8:0::10").id == 1
    assert index.mapping_gateway_for("::ffff:203.0.113.10").id == 1


def test_mapping_gateways_are_found_by_the_most_specific_network(index):
    assert index.mapping_gateway_for("192.0.2.5").id == 3  # inside both /24 and /28
    assert index.mapping_gateway_for("192.0.2.200").id == 2
    assert index.mapping_gateway_for("2001:db8:1::abcd").id == 2
    assert index.mapping_gateway_for("2001:db8:2::1") is None
    assert index.mapping_gateway_for("198.51.100.1") is None
    assert index.mapping_gateway_for("192.000.002.005") is None  # not an address Kamailio would report
    assert index.mapping_gateway_for("not-an-address") is None


def test_an_ip_and_port_gateway_needs_the_port_too(index):
    assert index.mapping_gateway_for("203.0.113.20", 5080).id == 4
    assert index.mapping_gateway_for("203.0.113.20", 5060) is None
    assert index.mapping_gateway_for("203.0.113.20") is None


def test_a_disabled_mapping_gateway_admits_nothing(index):
    assert index.mapping_gateway_for("203.0.113.30") is None
    assert index.mapping_gateways[5].enabled is False


def test_phones_are_found_by_username_when_enabled(index):
    assert index.phone("1001").ha1 == contract.digest_ha1("1001", "softswitch", "s3cret-pass")
    assert index.phone("1002") is None
    assert index.phone("9999") is None


def test_list_groups_match_full_numbers_and_prefixes(index):
    black = index.list_group(10)
    assert "441234567" in black
    assert black.matches("449012345")
    assert not black.matches("44123456")  # a full number is not a prefix
    assert index.list_group(11).matches("15551234567")
    assert not index.list_group(11).matches("33123456")


def test_schedules_are_read_in_the_snapshot_time_zone(index):
    gateway = index.routing_gateways[4]  # Friday 22:00-02:00, Europe/London
    friday_2230_london_summer = 1_782_509_400_000  # 2026-06-26T21:30:00Z, BST
    assert index.in_schedule(gateway, friday_2230_london_summer)
    assert not index.in_schedule(gateway, friday_2230_london_summer - 3_600_000)
    assert index.in_schedule(index.routing_gateways[1], 0)  # no schedule: always


def test_parameters_are_read_by_name_or_vos_alias(index):
    assert index.parameter("SS_GATEWAY_SWITCH_LIMIT") == 3
    assert index.parameter("SERVER_BILLING_FEE_PRECISTION") == 2


# -- loading -----------------------------------------------------------------


def test_it_loads_the_current_version_from_redis(loader, snapshot_redis, redis_prefix, sample_snapshot):
    install(snapshot_redis, redis_prefix, 3, contract.encode_snapshot(sample_snapshot))

    loader.start(listen=False)

    assert loader.version == 3
    assert loader.current.snapshot == sample_snapshot


def test_refresh_reloads_only_when_the_version_changes(loader, snapshot_redis, redis_prefix, sample_snapshot):
    install(snapshot_redis, redis_prefix, 3, contract.encode_snapshot(sample_snapshot))
    loader.start(listen=False)
    first = loader.current

    assert loader.refresh() is False
    assert loader.current is first

    changed = msgspec.structs.replace(sample_snapshot, time_zone="UTC")
    install(snapshot_redis, redis_prefix, 4, contract.encode_snapshot(changed))
    assert loader.refresh() is True
    assert (loader.version, loader.current.snapshot.time_zone) == (4, "UTC")


@pytest.mark.parametrize(
    "bad_blob",
    [b"\x00not zlib at all", b"schema-mismatch", b"truncated"],
)
def test_a_malformed_blob_is_refused_and_the_previous_snapshot_kept(
    loader, snapshot_redis, redis_prefix, sample_snapshot, bad_blob
):
    good = contract.encode_snapshot(sample_snapshot)
    if bad_blob == b"schema-mismatch":
        bad_blob = contract.encode_snapshot(msgspec.structs.replace(sample_snapshot, schema_version=999))
    elif bad_blob == b"truncated":
        bad_blob = good[:-20]
    install(snapshot_redis, redis_prefix, 1, good)
    loader.start(listen=False)
    kept = loader.current

    install(snapshot_redis, redis_prefix, 2, bad_blob)

    assert loader.refresh() is False
    assert loader.current is kept and loader.version == 1
    assert loader.rejected == 1
    assert loader.last_error
    # Polling again does not count the same bad version twice; the next good one is taken.
    assert loader.refresh() is False and loader.rejected == 1
    install(snapshot_redis, redis_prefix, 3, good)
    assert loader.refresh() is True and loader.version == 3


def test_a_current_pointer_that_is_not_a_number_is_refused(loader, snapshot_redis, redis_prefix, sample_snapshot):
    install(snapshot_redis, redis_prefix, 1, contract.encode_snapshot(sample_snapshot))
    loader.start(listen=False)

    snapshot_redis.set(contract.SnapshotKeys(redis_prefix).current, "banana")

    assert loader.refresh() is False
    assert (loader.version, loader.rejected) == (1, 1)


def test_the_last_good_snapshot_is_kept_on_disk(loader, snapshot_redis, redis_prefix, sample_snapshot, tmp_path):
    install(snapshot_redis, redis_prefix, 5, contract.encode_snapshot(sample_snapshot))
    loader.start(listen=False)
    install(snapshot_redis, redis_prefix, 6, b"corrupt")
    loader.refresh()

    assert loader.state_path.read_bytes().startswith(b"callcore-snapshot 5 ")  # then the blob's signature
    assert [p.name for p in tmp_path.iterdir()] == ["snapshot.bin"]  # no temp file left behind


def test_it_starts_from_disk_when_redis_is_unreachable(loader, snapshot_redis, redis_prefix, sample_snapshot):
    install(snapshot_redis, redis_prefix, 9, contract.encode_snapshot(sample_snapshot))
    loader.start(listen=False)

    offline = SnapshotLoader(f"redis://127.0.0.1:{closed_port()}/0", redis_prefix, loader.state_path, poll_interval=0.2)
    try:
        offline.start(listen=True)  # the listener keeps retrying in the background

        assert offline.version == 9
        assert offline.current.route_candidates("447700900123")
        with pytest.raises(redis.ConnectionError):
            offline.refresh()
        assert offline.version == 9
    finally:
        offline.stop()


def test_without_redis_or_disk_there_is_no_snapshot(tmp_path, redis_prefix):
    offline = SnapshotLoader(f"redis://127.0.0.1:{closed_port()}/0", redis_prefix, tmp_path / "none.bin")

    assert offline.start(listen=False) is None
    assert offline.current is None


def test_a_damaged_disk_copy_is_not_used(tmp_path, redis_prefix):
    path = tmp_path / "snapshot.bin"
    path.write_bytes(b"callcore-snapshot 4\nnot a blob")
    offline = SnapshotLoader(f"redis://127.0.0.1:{closed_port()}/0", redis_prefix, path)

    assert offline.load_from_disk() is False
    assert offline.current is None and offline.rejected == 1


def test_the_listener_installs_a_published_version_at_once(snapshot_redis, redis_prefix, tmp_path, sample_snapshot):
    # A long poll interval, so only the PUBLISH can explain a quick pick-up.
    loader = SnapshotLoader(snapshot_redis, redis_prefix, tmp_path / "s.bin", poll_interval=30)
    install(snapshot_redis, redis_prefix, 1, contract.encode_snapshot(sample_snapshot))
    loader.start()
    try:
        time.sleep(0.1)  # let the listener subscribe
        install(snapshot_redis, redis_prefix, 2, contract.encode_snapshot(sample_snapshot))

        assert wait_for(lambda: loader.version == 2, timeout=1.0)
    finally:
        loader.stop()


def test_the_listener_also_polls_for_a_version_it_was_not_told_about(
    loader, snapshot_redis, redis_prefix, sample_snapshot
):
    install(snapshot_redis, redis_prefix, 1, contract.encode_snapshot(sample_snapshot))
    loader.start()

    install(snapshot_redis, redis_prefix, 2, contract.encode_snapshot(sample_snapshot), announce=False)

    assert wait_for(lambda: loader.version == 2, timeout=1.0)
