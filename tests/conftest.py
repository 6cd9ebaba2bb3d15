"""Fixtures every test package may use: Redis isolation and small builders of configuration."""

import os
import secrets
import shutil
import uuid
from decimal import Decimal

import pytest
import redis
from django.conf import settings

from tests.servers import PrivateRedis

# The snapshot's HMAC key (callcore.contract.signing) for this run, unless one is given: the portal signs
# with it, and the call cores the tests start and the loaders they build read it from the environment.
os.environ.setdefault("SNAPSHOT_SIGNING_KEY", secrets.token_hex(32))


@pytest.fixture(scope="session", autouse=True)
def _snapshot_signing_key():
    if not settings.SNAPSHOT_SIGNING_KEY:
        settings.SNAPSHOT_SIGNING_KEY = os.environ["SNAPSHOT_SIGNING_KEY"]


@pytest.fixture(scope="session", autouse=True)
def _redis_prefix_cleanup():
    """Keep this run's Redis keys apart from a running switch's, and drop them at the end.

    scripts/test.sh gives each run its own REDIS_PREFIX; a bare pytest run
    would otherwise publish test snapshots into the live switch's keys.
    """
    if not settings.REDIS_PREFIX.startswith("sstest"):
        settings.REDIS_PREFIX = f"sstest-{uuid.uuid4().hex[:8]}"
    yield
    client = redis.Redis.from_url(settings.REDIS_URL)
    if settings.REDIS_PREFIX.startswith("sstest"):
        for key in client.scan_iter(f"{settings.REDIS_PREFIX}:*", count=1000):
            client.delete(key)


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of the test's own: for tests that stop it, or need one that has never seen a script."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed: this test starts a Redis of its own")
    server = PrivateRedis(binary, tmp_path / "redis")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def unique():
    """A short unique suffix for names that must not collide across tests."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def customer(db):
    from billing.models import Account, RateTable

    table = RateTable.objects.create(name="Retail")
    return Account.objects.create(name="Acme Telecom", rate_table=table, credit_limit=Decimal("5"))


@pytest.fixture
def vendor_account(db):
    from billing.models import Account

    return Account.objects.create(name="Carrier One", account_type="vendor")
