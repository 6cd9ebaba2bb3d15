"""The dynamic blacklist reaches the call core's Redis sets on commit, and leaves them when released."""

import datetime as dt

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from callcore.contract import NEVER_EXPIRES_MS, Keys
from security import dynamic_blacklist
from security.models import DynamicBlacklistEntry
from softswitch_portal.switching.models import MappingGateway

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client():
    c = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    for key in c.scan_iter(f"{settings.REDIS_PREFIX}:dynbl:*"):
        c.delete(key)
    yield c
    for key in c.scan_iter(f"{settings.REDIS_PREFIX}:dynbl:*"):
        c.delete(key)


def keys():
    return Keys(settings.REDIS_PREFIX)


def test_an_active_central_entry_is_in_the_central_set_with_its_expiry(client):
    expires = timezone.now() + dt.timedelta(hours=1)
    DynamicBlacklistEntry.objects.create(number="15550001111", reason="cpm", expires_at=expires)
    assert client.zscore(keys().dynamic_blacklist(), "15550001111") == int(expires.timestamp() * 1000)


def test_an_entry_without_expiry_never_expires(client):
    DynamicBlacklistEntry.objects.create(number="15550001111", reason="cpm")
    assert client.zscore(keys().dynamic_blacklist(), "15550001111") == NEVER_EXPIRES_MS


def test_a_standalone_entry_goes_to_its_gateways_set_only(client, customer):
    gateway = MappingGateway.objects.create(name="gw", account=customer, remote_ips=["192.0.2.1"])
    DynamicBlacklistEntry.objects.create(number="15550002222", reason="short calls", scope="gateway",
                                         mapping_gateway=gateway)  # fmt: skip
    assert client.zscore(keys().dynamic_blacklist(gateway.id), "15550002222") is not None
    assert client.zscore(keys().dynamic_blacklist(), "15550002222") is None


def test_releasing_an_entry_removes_it(client):
    entry = DynamicBlacklistEntry.objects.create(number="15550003333", reason="cpm")
    entry.status = "released"
    entry.save()
    assert client.zscore(keys().dynamic_blacklist(), "15550003333") is None


def test_releasing_one_of_two_entries_keeps_the_number_blocked(client):
    DynamicBlacklistEntry.objects.create(number="15550004444", reason="cpm")
    second = DynamicBlacklistEntry.objects.create(number="15550004444", reason="failure ratio")
    second.delete()
    assert client.zscore(keys().dynamic_blacklist(), "15550004444") is not None


def test_resync_rebuilds_the_sets_after_redis_lost_them(client):
    DynamicBlacklistEntry.objects.create(number="15550005555", reason="cpm")
    DynamicBlacklistEntry.objects.create(number="15550006666", reason="cpm", status="released")
    client.delete(keys().dynamic_blacklist())
    client.zadd(keys().dynamic_blacklist(), {"stale-number": 1})
    assert dynamic_blacklist.resync_all() == 1
    assert client.zrange(keys().dynamic_blacklist(), 0, -1) == ["15550005555"]
