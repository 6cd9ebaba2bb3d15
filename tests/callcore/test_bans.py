"""Shared source-IP bans (callcore.bans) against the real Redis: limits, escalation, allow-list, node caches."""

import time

import pytest
from django.conf import settings

from callcore.bans import Bans, parse_networks
from callcore.contract import BanCause, BanRecord, Keys
from callcore.resp import RespClient

from . import factories as F

ATTACKER = "198.51.100.7"


class Cache:
    """What the node's htable does for the bans: entries with an expiry, and a reset."""

    def __init__(self):
        self.entries = {}
        self.resets = 0

    def set(self, ip, seconds):
        self.entries[ip] = seconds

    def reset(self):
        self.resets += 1
        self.entries.clear()


@pytest.fixture
def node(prefix):
    def make(name="node-a", own=()):
        return Bans(RespClient(settings.REDIS_URL, timeout=1), prefix, name, Cache(), own)

    return make


def params(**changes):
    return F.indexed(params=changes)


def ban_of(client, prefix, ip):
    fields = client.hgetall(Keys(prefix).ban(ip))
    return BanRecord.from_hash(ip, fields) if fields else None


def test_a_scanner_is_banned_at_its_first_request_in_redis_and_the_nodes_cache(node, client, prefix):
    bans = node()
    seconds = bans.offend(ATTACKER, params(SS_BAN_SECONDS=120), BanCause.SCANNER)
    assert seconds == 120
    assert bans.cache.entries == {ATTACKER: 120}
    record = ban_of(client, prefix, ATTACKER)
    assert (record.cause, record.count, record.node, record.offences) == ("scanner", 1, "node-a", 1)
    assert 119_000 < client.pttl(Keys(prefix).ban(ATTACKER)) <= 120_000
    assert client.zscore(Keys(prefix).bans, ATTACKER) == record.expires_ms


def test_wrong_digest_answers_from_one_source_are_banned_at_the_limit_not_before(node, client, prefix):
    bans = node()
    world = params(SS_BAN_AUTH_FAILURES_PER_IP=5, SS_BAN_AUTH_FAILURES_PER_USER=0)
    answers = [bans.auth_failed(ATTACKER, "2001", world) for _ in range(5)]
    assert answers[:4] == [0, 0, 0, 0] and answers[4] == 300
    record = ban_of(client, prefix, ATTACKER)
    assert (record.cause, record.count) == ("auth_failures", 5)
    assert record.first_ms <= record.last_ms


def test_guesses_at_one_username_from_many_sources_ban_the_sources_that_keep_guessing(node, client, prefix):
    bans = node()
    world = params(SS_BAN_AUTH_FAILURES_PER_IP=100, SS_BAN_AUTH_FAILURES_PER_USER=6)
    sources = [f"198.51.100.{n}" for n in range(1, 7)]
    answers = [bans.auth_failed(ip, "2001", world) for ip in sources]
    assert answers == [0, 0, 0, 0, 0, 300]
    record = ban_of(client, prefix, sources[-1])
    assert (record.cause, record.subject, record.count) == ("auth_failures_user", "2001", 6)
    assert ban_of(client, prefix, sources[0]) is None


def test_a_repeat_offender_is_banned_twice_as_long_each_time_up_to_the_cap(node, client, prefix):
    bans = node()
    world = params(SS_BAN_SECONDS=100, SS_BAN_MAX_SECONDS=350)
    lengths = []
    for _ in range(4):
        lengths.append(bans.offend(ATTACKER, world, BanCause.FLOOD))
        client.delete(Keys(prefix).ban(ATTACKER))  # the ban lapses; the offences are remembered for a day
    assert lengths == [100, 200, 350, 350]
    assert 86_000 < client.ttl(Keys(prefix).ban_offences(ATTACKER)) <= 86_400


def test_a_source_already_banned_is_counted_not_banned_again(node, client, prefix):
    bans = node()
    world = params()
    bans.offend(ATTACKER, world, BanCause.SCANNER)
    bans.offend(ATTACKER, world, BanCause.SCANNER)
    record = ban_of(client, prefix, ATTACKER)
    assert (record.count, record.offences) == (2, 1)


def test_the_operators_networks_and_the_mapping_gateways_are_never_banned(node, client, prefix):
    bans = node(own=parse_networks("192.0.2.0/24, 2001:db8::/32"))
    world = params()
    assert bans.offend("192.0.2.200", world, BanCause.SCANNER) == 0
    assert bans.offend("2001:db8::5", world, BanCause.SCANNER) == 0
    assert bans.offend(F.CUSTOMER_IP, world, BanCause.SCANNER) == 0  # the mapping gateway's address
    assert client.zcard(Keys(prefix).bans) == 0
    # Without SS_BAN_EXEMPT_GATEWAYS the gateway is banned like anyone, and loopback never was exempt.
    assert bans.offend(F.CUSTOMER_IP, params(SS_BAN_EXEMPT_GATEWAYS=False), BanCause.SCANNER) == 300
    assert bans.offend("127.0.0.1", world, BanCause.SCANNER) == 300


def test_a_bad_allow_list_names_the_setting_and_the_entry():
    with pytest.raises(ValueError, match=r"SS_BAN_ALLOW_NETWORKS: 'not-a-net'"):
        parse_networks("10.0.0.0/8,not-a-net")


def test_another_nodes_ban_reaches_this_nodes_cache_on_its_next_sync_and_a_release_leaves_it(node, client, prefix):
    a, b = node("node-a"), node("node-b")
    assert b.sync() is True  # the first sync loads whatever is banned (nothing yet)
    assert b.sync() is False  # nothing moved: one GET, no reload
    a.offend(ATTACKER, params(), BanCause.SCANNER)
    assert b.sync() is True
    assert set(b.cache.entries) == {ATTACKER} and 298 <= b.cache.entries[ATTACKER] <= 300
    # The portal's release: the ban and its index entry go, the version moves, every cache reloads without it.
    k = Keys(prefix)
    client.delete(k.ban(ATTACKER))
    client.zrem(k.bans, ATTACKER)
    client.incr(k.bans_version)
    assert b.sync() is True
    assert b.cache.entries == {}


def test_a_lapsed_ban_is_not_loaded_into_a_cache(node, client, prefix):
    k = Keys(prefix)
    client.zadd(k.bans, {"198.51.100.9": time.time() * 1000 - 1000, ATTACKER: time.time() * 1000 + 60_000})
    client.incr(k.bans_version)
    bans = node()
    bans.sync()
    assert set(bans.cache.entries) == {ATTACKER}


def test_counts_lapse_after_the_window(node, client, prefix):
    bans = node()
    world = params(SS_BAN_AUTH_FAILURES_PER_IP=2, SS_BAN_AUTH_FAILURES_PER_USER=0, SS_BAN_WINDOW_SECONDS=1)
    assert bans.auth_failed(ATTACKER, "", world) == 0
    counter = Keys(prefix).ban_counter("auth_failures", ATTACKER)
    assert 0 < client.pttl(counter) <= 1000
    client.delete(counter)  # as the window's expiry would
    assert bans.auth_failed(ATTACKER, "", world) == 0
