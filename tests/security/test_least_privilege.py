"""Least privilege on the real servers: each process's Redis user and the database roles, made by the same
provisioning code as the run command (softswitch_portal.core.provisioning), refuse what the process has no need for.
"""

import io
import stat
import uuid

import psycopg
import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from psycopg import errors, sql

from callcore import contract
from softswitch_portal.core import provisioning
from softswitch_portal.core.management.commands.provision_servers import read_env_file

PASSWORDS = {role: uuid.uuid4().hex for role in provisioning.REDIS_ROLES}


@pytest.fixture
def prefix(redis_client):
    """A prefix, and Redis users named after it, of this test's own; both gone afterwards."""
    prefix = f"sstest-lp-{uuid.uuid4().hex[:8]}"
    yield prefix
    for role in provisioning.REDIS_ROLES:
        redis_client.execute_command("ACL", "DELUSER", provisioning.redis_user_name(prefix, role))
    for key in redis_client.scan_iter(f"{prefix}*"):
        redis_client.delete(key)


@pytest.fixture
def login(redis_client, prefix):
    """A client logged in as one process's user, after provisioning them all."""
    provisioning.provision_redis(redis_client, prefix, PASSWORDS)
    clients = []

    def login(role, password=None):
        url = provisioning.redis_url_for(
            settings.REDIS_URL, provisioning.redis_user_name(prefix, role), password or PASSWORDS[role]
        )
        client = redis.Redis.from_url(url)
        clients.append(client)
        return client

    yield login
    for client in clients:
        client.close()


@pytest.mark.parametrize(
    "command",
    [("FLUSHALL",), ("FLUSHDB",), ("CONFIG", "GET", "*"), ("KEYS", "*"), ("ACL", "LIST"), ("MONITOR",)],
)
def test_the_portals_redis_user_runs_no_command_outside_its_list(login, command):
    with pytest.raises(redis.exceptions.NoPermissionError):
        login("portal").execute_command(*command)


def test_the_portals_redis_user_keeps_to_its_prefix(login, prefix):
    portal = login("portal")
    portal.set(f"{prefix}:snapshot:current", 1)  # its own: allowed
    assert portal.get(f"{prefix}:snapshot:current") == b"1"
    for other in ("ss:snapshot:current", f"{prefix}x:snapshot:current", "sstest-another:live:calls"):
        with pytest.raises(redis.exceptions.NoPermissionError):
            portal.set(other, 2)
        with pytest.raises(redis.exceptions.NoPermissionError):
            portal.get(other)


def test_the_call_cores_redis_user_cannot_write_the_snapshot(login, prefix, redis_client):
    keys = contract.SnapshotKeys(prefix)
    redis_client.set(keys.current, 7)
    callcore = login("callcore")

    assert callcore.get(keys.current) == b"7"  # it reads the snapshot
    for write in (
        lambda: callcore.set(keys.current, 8),
        lambda: callcore.set(keys.blob(8), b"forged"),
        lambda: callcore.set(keys.signature(8), b"forged"),
        lambda: callcore.delete(keys.current),
        lambda: callcore.eval("return redis.call('SET', KEYS[1], '9')", 1, keys.current),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            write()
    assert redis_client.get(keys.current) == b"7"


def test_the_call_cores_redis_user_writes_only_what_it_counts_and_records(login, prefix):
    callcore = login("callcore")
    live = contract.Keys(prefix)
    callcore.hset(live.live_calls, "call-1", "{}")
    callcore.xadd(live.cdr_stream, {"cdr": "{}"})
    callcore.hincrby(live.stats, "scanner_dropped", 1)
    callcore.zadd(live.dynamic_blacklist(), {"447700900123": 1})  # its set-up fraud rules block at once
    for write in (
        lambda: callcore.set(contract.IpCountryKeys(prefix).blob, b"x"),
        lambda: callcore.set(live.route_asr, b"x"),
        lambda: callcore.xadd(live.cdr_dead_letters, {"cdr": "{}"}),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            write()


def test_the_test_call_queue_is_filled_by_the_portal_and_served_by_the_worker(login, prefix, redis_client, settings):
    # The Procfile's testcalls worker serves TEST_CALL_QUEUE, not Celery's default queue: refused it, that
    # worker stopped at its first command and took the whole run command down with it.
    settings.TEST_CALL_QUEUE = queue = f"{prefix}-testcalls"  # a queue of this test's own, as its users
    provisioning.provision_redis(redis_client, prefix, PASSWORDS)
    login("portal").lpush(queue, "task")
    worker = login("worker")
    assert worker.llen(queue) == 1 and worker.rpop(queue) == b"task"
    worker.lpush(f"{queue}\x06\x163", "task")  # kombu's priority lists beside it
    assert worker.delete(f"{queue}\x06\x163") == 1


def test_the_ingests_redis_user_cannot_touch_the_snapshot(login, prefix):
    ingest = login("ingest")
    ingest.xadd(contract.Keys(prefix).cdr_dead_letters, {"cdr": "{}"})
    with pytest.raises(redis.exceptions.NoPermissionError):
        ingest.get(contract.SnapshotKeys(prefix).current)


def test_provisioning_again_replaces_a_users_password(login, redis_client, prefix):
    login("portal").ping()
    provisioning.provision_redis(redis_client, prefix, {**PASSWORDS, "portal": "a-new-password"})

    with pytest.raises(redis.exceptions.AuthenticationError):
        login("portal").ping()
    assert login("portal", "a-new-password").ping()


# -- PostgreSQL ------------------------------------------------------------------


def superuser(dbname):
    database = settings.DATABASES["default"]
    return psycopg.connect(
        dbname=dbname,
        user=database["USER"],
        password=database["PASSWORD"] or None,
        host=database["HOST"],
        port=database["PORT"],
        autocommit=True,
    )


def connect_as(dbname, role, password):
    database = settings.DATABASES["default"]
    return psycopg.connect(
        dbname=dbname, user=role, password=password, host=database["HOST"], port=database["PORT"], autocommit=True
    )


@pytest.fixture
def scratch_database():
    """A database of the test's own with a table a superuser's migrate made; dropped with its roles afterwards."""
    name = f"sstest_lp_{uuid.uuid4().hex[:8]}"
    with superuser("postgres") as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with superuser(name) as conn:
        conn.execute("CREATE TABLE billing_account (id bigserial PRIMARY KEY, name text)")
    yield name
    roles = provisioning.database_roles(name)
    with superuser("postgres") as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        for role in (roles.portal, roles.owner):
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


DB_PASSWORDS = {"owner": "owner-password", "portal": "portal-password"}


@pytest.fixture
def roles(scratch_database):
    roles = provisioning.database_roles(scratch_database)
    with superuser(scratch_database) as conn:
        provisioning.provision_postgres(conn.cursor(), scratch_database, roles, DB_PASSWORDS)
        provisioning.provision_postgres(conn.cursor(), scratch_database, roles, DB_PASSWORDS)  # idempotent
    return roles


def test_the_portals_role_reads_and_writes_rows(scratch_database, roles):
    with connect_as(scratch_database, roles.portal, DB_PASSWORDS["portal"]) as portal:
        portal.execute("INSERT INTO billing_account (name) VALUES ('Acme')")
        portal.execute("UPDATE billing_account SET name = 'Acme Ltd'")
        assert portal.execute("SELECT name FROM billing_account").fetchall() == [("Acme Ltd",)]
        portal.execute("CREATE TEMPORARY TABLE stage (n int)")  # the ingest's staging table
        portal.execute("DELETE FROM billing_account")


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE evil (id int)",
        "ALTER TABLE billing_account ADD COLUMN evil text",
        "DROP TABLE billing_account",
        "CREATE INDEX evil ON billing_account (name)",
        "TRUNCATE billing_account",
        "CREATE SCHEMA evil",
    ],
)
def test_the_portals_role_cannot_change_the_schema(scratch_database, roles, statement):
    with (
        connect_as(scratch_database, roles.portal, DB_PASSWORDS["portal"]) as portal,
        pytest.raises(errors.InsufficientPrivilege),
    ):
        portal.execute(statement)


def test_the_owner_migrates_and_the_portal_may_use_what_it_makes(scratch_database, roles):
    with connect_as(scratch_database, roles.owner, DB_PASSWORDS["owner"]) as owner:
        owner.execute("ALTER TABLE billing_account ADD COLUMN note text")  # a table a superuser made, handed over
        owner.execute("CREATE TABLE billing_rate (id bigserial PRIMARY KEY, prefix text)")
    with connect_as(scratch_database, roles.portal, DB_PASSWORDS["portal"]) as portal:
        portal.execute("INSERT INTO billing_rate (prefix) VALUES ('44')")
        assert portal.execute("SELECT prefix FROM billing_rate").fetchall() == [("44",)]


def test_roles_are_named_after_the_database_and_none_is_the_call_cores(scratch_database, roles):
    assert (roles.owner, roles.portal) == (f"{scratch_database}_owner", f"{scratch_database}_portal")
    with superuser(scratch_database) as conn:
        granted = {
            row[0]
            for row in conn.execute(
                "SELECT grantee::regrole::text FROM (SELECT (aclexplode(datacl)).grantee FROM pg_database "
                "WHERE datname = %s) acl",
                [scratch_database],
            )
        }
    assert granted <= {roles.owner, roles.portal}


# -- the run command's step ---------------------------------------------------------


def test_the_command_keeps_its_secrets_in_a_private_env_file_and_gives_each_process_its_user(
    tmp_path, scratch_database, monkeypatch, redis_client
):
    monkeypatch.setitem(settings.DATABASES["default"], "NAME", scratch_database)
    monkeypatch.setattr(settings, "REDIS_PREFIX", f"sstest-lp-{uuid.uuid4().hex[:8]}")
    env_file = tmp_path / ".env"
    try:
        call_command("provision_servers", env_file=str(env_file), stdout=io.StringIO())
        first = read_env_file(env_file)
        call_command("provision_servers", env_file=str(env_file), stdout=io.StringIO())
        again = read_env_file(env_file)

        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        assert first == again  # secrets are made once and kept
        assert len(contract.signing_key(first["SNAPSHOT_SIGNING_KEY"])) >= contract.SIGNING_KEY_MIN_LENGTH
        portal = redis.Redis.from_url(first["SS_REDIS_URL_PORTAL"])
        assert portal.ping()
        with pytest.raises(redis.exceptions.NoPermissionError):
            portal.flushall()
        portal.close()
        with (
            connect_as(scratch_database, first["SS_DB_USER_PORTAL"], first["SS_DB_PASSWORD_PORTAL"]) as conn,
            pytest.raises(errors.InsufficientPrivilege),
        ):
            conn.execute("CREATE TABLE evil (id int)")
    finally:
        for role in provisioning.REDIS_ROLES:
            redis_client.execute_command("ACL", "DELUSER", provisioning.redis_user_name(settings.REDIS_PREFIX, role))
