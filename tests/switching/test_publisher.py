"""The snapshot publisher: what it serialises, how it lands in Redis, and that call cores see edits."""

import logging
import socket
import time
import typing
import zlib

import pytest
import redis
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from billing.choices import AccountType
from callcore import contract
from callcore.snapshot import SnapshotLoader
from security.choices import ListKind
from softswitch_portal.core import publisher
from softswitch_portal.core.models import SystemParameter
from softswitch_portal.switching.choices import AuthMode, PoolMode, RoutePolicy, Transport
from softswitch_portal.switching.models import MappingGateway, RoutingGateway


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def current_version(settings):
    raw = redis.Redis.from_url(settings.REDIS_URL).get(contract.SnapshotKeys(settings.REDIS_PREFIX).current)
    return None if raw is None else int(raw)


def wait_for(predicate, timeout=1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


# -- building ----------------------------------------------------------------


def test_the_snapshot_holds_the_configuration(configuration, settings):
    c = configuration

    snapshot = publisher.build_snapshot()

    (account,) = [a for a in snapshot.accounts if a.id == c.customer.id]
    assert (account.balance, account.credit_limit, account.rate_table_id) == ("12.3400", "5.0000", c.table.id)
    (table,) = snapshot.rate_tables
    mobile = table.rates[1]
    assert (mobile.prefix, mobile.price_per_minute, mobile.connect_fee) == ("447", "0.0600", "0.0100")
    assert (mobile.valid_from_ms, mobile.valid_to_ms) == (1_893_456_000_000, 1_896_134_400_000)
    assert table.rates[0].valid_from_ms is None
    (mapping,) = snapshot.mapping_gateways
    assert mapping.remote_ips == ("203.0.113.10", "192.0.2.0/24")
    assert [r.name for r in mapping.callee_transforms] == ["early", "late"]  # by priority, not by link order
    assert [r.name for r in mapping.caller_transforms] == ["caller"]
    assert (mapping.caller_list_group_ids, mapping.callee_list_group_ids) == ((c.black.id,), (c.white.id,))
    assert mapping.prefix_forbid == ("900",)
    (routing,) = snapshot.routing_gateways
    assert (routing.host, routing.prefixes, routing.tech_prefix) == ("198.51.100.7", ("44", "447"), "9#")
    assert routing.clearing_account_id == c.vendor.id
    assert routing.caller_number_pool.numbers == ("442000000001", "442000000002")
    assert routing.schedule_ids == (c.nights.id,)
    assert routing.failover_codes == (486,)
    (schedule,) = snapshot.routing_schedules
    assert (schedule.weekdays, schedule.start_minute, schedule.end_minute) == ((0, 4), 22 * 60, 2 * 60 + 30)
    black = next(g for g in snapshot.list_groups if g.id == c.black.id)
    assert (black.kind, black.numbers, black.prefixes) == ("black", ("441234567",), ("4490",))
    assert snapshot.parameters["SS_GATEWAY_SWITCH_LIMIT"] == 3
    assert snapshot.parameters["SS_SIP_TIMEOUT_INVITE"] == 8  # a default filled in
    assert (snapshot.time_zone, snapshot.sip_realm) == (settings.TIME_ZONE, contract.SIP_REALM)


def test_the_built_snapshot_survives_encoding(configuration):
    snapshot = publisher.build_snapshot()

    assert contract.decode_snapshot(contract.encode_snapshot(snapshot)) == snapshot


def test_phones_carry_the_digest_hash_and_never_the_password(configuration, settings):
    settings.SIP_REALM = "switch.example.net"
    phone = configuration.phone
    phone.password = "s3cret-pass-123"  # hashed in the realm as of its save
    phone.save()

    snapshot = publisher.build_snapshot()
    raw = zlib.decompress(contract.encode_snapshot(snapshot))

    (phone,) = snapshot.phones
    assert phone.ha1 == contract.digest_ha1("1001", "switch.example.net", "s3cret-pass-123")
    assert phone.ha1b == contract.digest_ha1b("1001", "switch.example.net", "s3cret-pass-123")
    assert snapshot.sip_realm == "switch.example.net"
    assert phone.ha1.encode() in raw
    assert b"s3cret-pass-123" not in raw
    assert b"password" not in raw


def test_building_takes_the_same_queries_whatever_the_row_counts(configuration):
    with CaptureQueriesContext(connection) as small:
        publisher.build_snapshot()
    for n in range(20):
        build_configuration_copy(n)

    with CaptureQueriesContext(connection) as large:
        snapshot = publisher.build_snapshot()

    assert len(snapshot.routing_gateways) == 21
    assert len(large.captured_queries) == len(small.captured_queries) <= 20


def build_configuration_copy(n):
    from billing.models import Account, Rate, RateTable

    table = RateTable.objects.create(name=f"table {n}")
    Rate.objects.create(rate_table=table, prefix=f"{n}", price_per_minute=1)
    account = Account.objects.create(name=f"account {n}", rate_table=table)
    gateway = MappingGateway.objects.create(name=f"mg {n}", account=account, remote_ips=[f"10.0.0.{n}"])
    gateway.callee_transforms.set(MappingGateway.objects.get(name="acme-trunk").callee_transforms.all())
    routing = RoutingGateway.objects.create(name=f"rg {n}", host=f"10.1.0.{n}", prefixes=[f"{n}"])
    routing.schedules.set(RoutingGateway.objects.get(name="carrier-uk").schedules.all())


def test_a_bad_stored_parameter_is_published_as_its_default(configuration, caplog):
    SystemParameter.objects.create(name="SS_MAX_CPS", value="lots")  # bypassing clean(), as raw SQL could
    SystemParameter.objects.create(name="NO_SUCH_PARAMETER", value="1")

    with caplog.at_level(logging.WARNING, logger=publisher.__name__):
        snapshot = publisher.build_snapshot()

    assert snapshot.parameters["SS_MAX_CPS"] == 0
    assert "NO_SUCH_PARAMETER" not in snapshot.parameters
    assert "SS_MAX_CPS" in caplog.text and "NO_SUCH_PARAMETER" in caplog.text


def test_the_contract_names_the_same_choices_as_the_models():
    def literal(alias):
        return set(typing.get_args(alias))

    assert literal(contract.AuthMode) == set(AuthMode.values)
    assert literal(contract.RoutePolicy) == set(RoutePolicy.values)
    assert literal(contract.Transport) == set(Transport.values)
    assert literal(contract.PoolMode) == set(PoolMode.values)
    assert literal(contract.ListKind) == set(ListKind.values)
    assert literal(contract.AccountType) == set(AccountType.values)


@pytest.mark.django_db(transaction=True)
def test_the_build_reads_one_consistent_view():
    with CaptureQueriesContext(connection) as queries:
        publisher._build_consistent()

    statements = [q["sql"] for q in queries.captured_queries if q["sql"] != "BEGIN"]
    assert statements[0] == "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
    assert len(statements) > 10


# -- publishing ----------------------------------------------------------------


def test_publish_installs_a_version_a_loader_reads(configuration, snapshot_prefix, settings, tmp_path):
    version = publisher.publish()

    loader = SnapshotLoader(settings.REDIS_URL, snapshot_prefix, tmp_path / "snapshot.bin")
    loader.start(listen=False)
    assert loader.version == version
    assert loader.current.snapshot == publisher.build_snapshot()
    assert loader.current.route_candidates("447700900123")[0].name == "carrier-uk"
    client = redis.Redis.from_url(settings.REDIS_URL)
    assert client.get(f"{snapshot_prefix}:snapshot:current") == str(version).encode()
    assert client.get(f"{snapshot_prefix}:snapshot:version") == str(version).encode()
    assert client.exists(f"{snapshot_prefix}:snapshot:{version}")


def test_publish_announces_the_version_on_the_channel(configuration, snapshot_prefix, settings):
    pubsub = redis.Redis.from_url(settings.REDIS_URL).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(f"{snapshot_prefix}:snapshot")
    pubsub.get_message(timeout=1)

    version = publisher.publish()

    message = pubsub.get_message(timeout=1)
    assert message is not None and message["data"] == str(version).encode()
    pubsub.close()


def test_an_unchanged_configuration_keeps_its_version_unless_forced(configuration, snapshot_prefix, settings):
    client = redis.Redis.from_url(settings.REDIS_URL)
    first = publisher.publish()

    assert publisher.publish() == first
    forced = publisher.publish(force=True)

    assert forced == first + 1
    assert 0 < client.ttl(f"{snapshot_prefix}:snapshot:{first}") <= publisher.SUPERSEDED_TTL_SECONDS
    assert client.ttl(f"{snapshot_prefix}:snapshot:{forced}") == -1  # the current blob never expires


def test_a_lost_blob_is_published_again_even_if_unchanged(configuration, snapshot_prefix, settings):
    client = redis.Redis.from_url(settings.REDIS_URL)
    first = publisher.publish()
    client.delete(f"{snapshot_prefix}:snapshot:{first}")

    assert publisher.publish() == first + 1


def test_publish_logs_and_returns_none_when_redis_is_down(configuration, snapshot_prefix, settings, caplog):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"

    with caplog.at_level(logging.ERROR, logger=publisher.__name__):
        assert publisher.publish() is None

    assert "not published" in caplog.text


def test_publish_gives_up_while_another_holds_the_lock(configuration, snapshot_prefix, settings, monkeypatch):
    monkeypatch.setattr(publisher, "LOCK_WAIT_SECONDS", 0.2)
    client = redis.Redis.from_url(settings.REDIS_URL)

    with client.lock(f"{snapshot_prefix}:snapshot:lock", timeout=10):
        assert publisher.publish() is None
    assert publisher.publish() is not None


def test_the_command_publishes(configuration, snapshot_prefix, settings, capsys):
    call_command("publish_snapshot")

    assert f"Snapshot version {current_version(settings)} is current" in capsys.readouterr().out


def test_the_command_fails_loudly_when_redis_is_down(configuration, snapshot_prefix, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"

    with pytest.raises(CommandError, match="Redis is unreachable"):
        call_command("publish_snapshot")


# -- publishing on commit ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_one_transaction_publishes_once(snapshot_prefix, settings, make_configuration):
    with transaction.atomic():
        make_configuration()  # a dozen saves and many-to-many changes
    after_setup = current_version(settings)

    with transaction.atomic():
        for gateway in RoutingGateway.objects.all():
            gateway.priority += 1
            gateway.save()
        MappingGateway.objects.get().callee_transforms.clear()

    assert after_setup == 1
    assert current_version(settings) == 2


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_publishes_nothing_and_blocks_nothing(snapshot_prefix, settings, make_configuration):
    with transaction.atomic():
        make_configuration()

    with pytest.raises(RuntimeError), transaction.atomic():
        RoutingGateway.objects.update(priority=1)
        RoutingGateway.objects.get().save()
        raise RuntimeError("the operator's form failed")
    assert current_version(settings) == 1

    with transaction.atomic():
        RoutingGateway.objects.get().save(update_fields=["priority"])
    assert current_version(settings) == 1  # unchanged content: no new version...
    with transaction.atomic():
        gateway = RoutingGateway.objects.get()
        gateway.port = 5070
        gateway.save()
    assert current_version(settings) == 2  # ...but a change is published


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_savepoint_does_not_lose_the_outer_publish(snapshot_prefix, settings, make_configuration):
    with transaction.atomic():
        make_configuration()

    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            RoutingGateway.objects.get().save()
            raise RuntimeError("inner failure")
        gateway = RoutingGateway.objects.get()
        gateway.host = "198.51.100.99"
        gateway.save()

    assert current_version(settings) == 2


@pytest.mark.django_db(transaction=True)
def test_a_save_commits_even_when_redis_is_down(snapshot_prefix, settings, caplog, make_configuration):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"

    with caplog.at_level(logging.ERROR), transaction.atomic():
        make_configuration()

    assert RoutingGateway.objects.filter(name="carrier-uk").exists()
    assert "not published" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_an_edit_reaches_a_running_call_core_within_a_second(snapshot_prefix, settings, tmp_path, make_configuration):
    with transaction.atomic():
        make_configuration()
    # A poll interval far beyond the deadline: only the published announcement can explain a quick pick-up.
    loader = SnapshotLoader(settings.REDIS_URL, snapshot_prefix, tmp_path / "snapshot.bin", poll_interval=30)
    loader.start()
    try:
        before = loader.version
        assert loader.current.route_candidates("447700900123")[0].host == "198.51.100.7"
        time.sleep(0.1)  # let the listener subscribe

        with transaction.atomic():
            gateway = RoutingGateway.objects.get(name="carrier-uk")
            gateway.host = "198.51.100.42"
            gateway.save()

        assert wait_for(lambda: loader.version != before, timeout=1.0)
        assert loader.current.route_candidates("447700900123")[0].host == "198.51.100.42"
    finally:
        loader.stop()
