"""Fixtures of the call core tests: a representative snapshot and a Redis prefix of each test's own."""

import uuid

import pytest
import redis
from django.conf import settings

from callcore import contract
from callcore.live import LiveState

JAN_2030_MS = 1_893_456_000_000  # 2030-01-01T00:00:00Z
FEB_2030_MS = 1_896_134_400_000  # 2030-02-01T00:00:00Z


def _rule(pk, match_prefix="", strip=0, prepend=""):
    return contract.TransformRule(
        id=pk,
        name=f"rule-{pk}",
        match_prefix=match_prefix,
        min_length=0,
        max_length=0,
        strip_digits=strip,
        prepend=prepend,
    )


def _rate(prefix, price, valid_from_ms=None, valid_to_ms=None, area=""):
    return contract.Rate(
        prefix=prefix,
        area=area or f"area {prefix}",
        price_per_minute=price,
        first_period=60,
        next_period=60,
        connect_fee="0.0000",
        valid_from_ms=valid_from_ms,
        valid_to_ms=valid_to_ms,
    )


def _mapping(pk, remote_ips, *, auth_mode="ip", remote_port=None, enabled=True):
    return contract.MappingGateway(
        id=pk,
        name=f"customer-gw-{pk}",
        account_id=1,
        remote_ips=tuple(remote_ips),
        auth_mode=auth_mode,
        remote_port=remote_port,
        capacity=30,
        cps_limit=5,
        caller_transforms=(_rule(1, "0", 1, "44"),),
        callee_transforms=(_rule(2, "00", 2), _rule(3)),
        caller_list_group_ids=(10,),
        callee_list_group_ids=(11,),
        prefix_allow=(),
        prefix_forbid=("900",),
        conversation_limit=3600,
        dynamic_blacklist_standalone=False,
        route_policy="priority",
        enabled=enabled,
    )


def _routing(pk, prefixes, *, priority=100, enabled=True, schedule_ids=()):
    return contract.RoutingGateway(
        id=pk,
        name=f"vendor-gw-{pk}",
        host=f"198.51.100.{pk}",
        port=5060,
        transport="udp",
        prefixes=tuple(prefixes),
        tech_prefix="",
        priority=priority,
        capacity=0,
        cps_limit=0,
        clearing_account_id=2,
        caller_transforms=(),
        callee_transforms=(_rule(4, "", 0, "9#"),),
        schedule_ids=tuple(schedule_ids),
        caller_number_pool=contract.CallerNumberPool(id=1, name="pool", numbers=("4420", "4421"), mode="random"),
        failover_codes=(486,),
        conversation_limit=0,
        dynamic_blacklist_standalone=False,
        enabled=enabled,
    )


def make_snapshot():
    return contract.Snapshot(
        schema_version=contract.SNAPSHOT_SCHEMA_VERSION,
        sip_realm="softswitch",
        time_zone="Europe/London",
        parameters={**contract.default_parameters(), "SS_GATEWAY_SWITCH_LIMIT": 3},
        accounts=(
            contract.Account(
                id=1,
                name="Acme",
                account_type="customer",
                balance="12.3400",
                credit_limit="5.0000",
                locked=False,
                anti_overdraft=True,
                capacity=0,
                rate_table_id=1,
            ),
            contract.Account(
                id=2,
                name="Carrier",
                account_type="vendor",
                balance="-1.0000",
                credit_limit="0.0000",
                locked=False,
                anti_overdraft=False,
                capacity=0,
                rate_table_id=None,
            ),
        ),
        rate_tables=(
            contract.RateTable(
                id=1,
                name="Retail",
                currency="USD",
                rates=(
                    _rate("", "0.5000", area="Rest of world"),
                    _rate("44", "0.0200"),
                    _rate("447", "0.0600"),
                    # 4479 only has a price from February 2030, and a January-only promotion.
                    _rate("4479", "0.0900", valid_from_ms=FEB_2030_MS),
                    _rate("4479", "0.0100", valid_from_ms=JAN_2030_MS, valid_to_ms=FEB_2030_MS),
                    _rate("1", "0.0100"),
                ),
            ),
        ),
        mapping_gateways=(
            _mapping(1, ["203.0.113.10", "2001:db8::10"]),
            _mapping(2, ["192.0.2.0/24", "2001:db8:1::/64"]),
            _mapping(3, ["192.0.2.0/28"]),
            _mapping(4, ["203.0.113.20"], auth_mode="ip_port", remote_port=5080),
            _mapping(5, ["203.0.113.30"], enabled=False),
        ),
        routing_gateways=(
            _routing(1, ["44"], priority=20),
            _routing(2, ["44", "447"], priority=10),
            _routing(3, ["4477"], enabled=False),
            _routing(4, [], priority=200, schedule_ids=(1,)),
            _routing(5, ["447"], priority=10),
        ),
        phones=(
            contract.Phone(
                id=1,
                username="1001",
                ha1=contract.digest_ha1("1001", "softswitch", "s3cret-pass"),
                account_id=1,
                capacity=2,
                allowed_networks=("10.0.0.0/8",),
                allowed_countries=("GB",),
                enabled=True,
            ),
            contract.Phone(
                id=2,
                username="1002",
                ha1=contract.digest_ha1("1002", "softswitch", "other-pass"),
                account_id=1,
                capacity=1,
                allowed_networks=(),
                allowed_countries=(),
                enabled=False,
            ),
        ),
        list_groups=(
            contract.ListGroup(id=10, name="bad callers", kind="black", numbers=("441234567",), prefixes=("4490",)),
            contract.ListGroup(id=11, name="allowed callees", kind="white", numbers=(), prefixes=("44", "1")),
        ),
        routing_schedules=(
            contract.RoutingSchedule(id=1, name="nights", weekdays=(4,), start_minute=22 * 60, end_minute=2 * 60),
        ),
    )


@pytest.fixture
def sample_snapshot():
    """A small snapshot using every kind of value the schema has."""
    return make_snapshot()


@pytest.fixture
def snapshot_redis():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def redis_prefix(snapshot_redis):
    """A Redis key prefix no other test or running switch uses; its keys are deleted afterwards."""
    prefix = f"sstest-{uuid.uuid4().hex[:12]}"
    yield prefix
    for key in snapshot_redis.scan_iter(f"{prefix}:*", count=1000):
        snapshot_redis.delete(key)


# The names the live-state, grant and CDR-sink tests use for the two above, and a LiveState on that prefix.
@pytest.fixture
def client(snapshot_redis):
    return snapshot_redis


@pytest.fixture
def prefix(redis_prefix):
    return redis_prefix


@pytest.fixture
def live(prefix):
    return LiveState(settings.REDIS_URL, prefix)
