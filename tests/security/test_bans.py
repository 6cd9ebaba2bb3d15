"""The ban page: the call core's bans (made here by its own code, in the real Redis) listed, recorded and released."""

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.urls import reverse

from callcore.bans import Bans
from callcore.contract import BanCause, Keys
from callcore.resp import RespClient
from callcore.snapshot import IndexedSnapshot
from security import bans
from security.bans import Ban
from tests.callcore import factories as F

pytestmark = pytest.mark.django_db

GUESSER, SCANNER = "198.51.100.40", "198.51.100.41"


class Cache(dict):
    def set(self, ip, seconds):
        self[ip] = seconds

    def reset(self):
        self.clear()


@pytest.fixture
def node(redis_client):
    keys = Keys(settings.REDIS_PREFIX)
    for key in [*redis_client.scan_iter(f"{keys.prefix}:ban:*"), keys.bans, keys.bans_version]:
        redis_client.delete(key)
    yield Bans(RespClient(settings.REDIS_URL, timeout=1), settings.REDIS_PREFIX, "node-7", Cache())


def world(**params):
    return IndexedSnapshot(F.snapshot(params=params), 1)


def guess(node, times, ip=GUESSER):
    for _ in range(times):
        node.auth_failed(ip, "2001", world(SS_BAN_AUTH_FAILURES_PER_IP=3))


def test_the_list_records_and_shows_the_bans_with_cause_counts_times_and_node(admin_client, node):
    guess(node, 3)
    node.offend(SCANNER, world(), BanCause.SCANNER)

    page = admin_client.get(reverse("security:ban_list"))
    assert page.status_code == 200
    text = page.content.decode()
    assert GUESSER in text and SCANNER in text and "Digest guessing (per source)" in text and "node-7" in text
    ban = Ban.objects.get(ip=GUESSER)
    assert (ban.cause, ban.count, ban.offences, ban.node, ban.active) == ("auth_failures", 3, 1, "node-7", True)
    assert ban.first_seen <= ban.last_seen < ban.expires_at

    only = admin_client.get(reverse("security:ban_list"), {"cause": "scanner", "state": "active"})
    assert [row.record.ip for row in only.context["table"].rows] == [SCANNER]
    by_count = admin_client.get(reverse("security:ban_list"), {"sort": "-count"})
    assert [row.record.ip for row in by_count.context["table"].rows] == [GUESSER, SCANNER]


def test_a_later_offence_updates_the_row_and_a_repeat_ban_is_a_new_one(node, redis_client):
    guess(node, 3)
    bans.record()
    guess(node, 1)  # seen again while banned (by a node that had not dropped it yet)
    bans.record()
    assert Ban.objects.get(ip=GUESSER).count == 4
    keys = Keys(settings.REDIS_PREFIX)
    redis_client.delete(keys.ban(GUESSER))  # lapsed
    redis_client.zrem(keys.bans, GUESSER)
    guess(node, 3)
    bans.record()
    assert sorted(Ban.objects.filter(ip=GUESSER).values_list("offences", flat=True)) == [1, 2]


def test_a_release_ends_the_ban_in_redis_and_on_every_nodes_cache(admin_client, node, redis_client):
    guess(node, 3)
    node.sync()
    assert GUESSER in node.cache
    bans.record()
    ban = Ban.objects.get(ip=GUESSER)

    detail = admin_client.get(ban.get_absolute_url()).content.decode()
    assert reverse("security:ban_release", args=[ban.pk]) in detail
    response = admin_client.post(reverse("security:ban_release", args=[ban.pk]))
    assert response.status_code == 302

    keys = Keys(settings.REDIS_PREFIX)
    assert not redis_client.exists(keys.ban(GUESSER))
    assert redis_client.zscore(keys.bans, GUESSER) is None
    assert node.sync() is True and GUESSER not in node.cache
    ban.refresh_from_db()
    assert ban.released_by.username == "admin" and ban.released_at is not None and not ban.active
    # Recorded again, a released ban stays released.
    bans.record()
    assert Ban.objects.filter(ip=GUESSER).count() == 1


def test_releasing_needs_its_own_permission(client, django_user_model, node, redis_client):
    guess(node, 3)
    bans.record()
    ban = Ban.objects.get(ip=GUESSER)
    noc = django_user_model.objects.create_user("noc", password="not-a-real-secret-45")
    noc.user_permissions.add(Permission.objects.get(codename="view_ban"))
    client.force_login(noc)

    assert client.get(reverse("security:ban_list")).status_code == 200
    assert reverse("security:ban_release", args=[ban.pk]) not in client.get(ban.get_absolute_url()).content.decode()
    assert client.post(reverse("security:ban_release", args=[ban.pk])).status_code == 403
    assert redis_client.exists(Keys(settings.REDIS_PREFIX).ban(GUESSER))

    nobody = django_user_model.objects.create_user("nobody", password="not-a-real-secret-46")
    client.force_login(nobody)
    assert client.get(reverse("security:ban_list")).status_code == 403
