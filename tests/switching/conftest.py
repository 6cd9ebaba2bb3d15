"""Fixtures of the switching tests: a Redis prefix per test and a small but complete configuration."""

import datetime as dt
import uuid
from decimal import Decimal
from types import SimpleNamespace

import pytest
import redis


@pytest.fixture
def snapshot_prefix(settings):
    """Point the publisher at a Redis prefix of this test's own, and delete its keys afterwards."""
    prefix = f"sstest-{uuid.uuid4().hex[:12]}"
    settings.REDIS_PREFIX = prefix
    url = settings.REDIS_URL  # a test may point REDIS_URL at a dead port; clean up where the keys are
    yield prefix
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(f"{prefix}:*", count=1000):
        client.delete(key)
    client.close()


def build_configuration():
    from billing.models import Account, Rate, RateTable
    from security.models import BlackWhiteListGroup, ListEntry
    from softswitch_portal.core.models import SystemParameter
    from softswitch_portal.switching.models import (
        CallerNumberPool,
        MappingGateway,
        NumberTransformRule,
        Phone,
        RoutingGateway,
        RoutingSchedule,
    )

    table = RateTable.objects.create(name="Retail")
    Rate.objects.create(rate_table=table, prefix="44", area="UK", price_per_minute=Decimal("0.02"))
    Rate.objects.create(
        rate_table=table,
        prefix="447",
        area="UK mobile",
        price_per_minute=Decimal("0.06"),
        first_period=1,
        next_period=1,
        connect_fee=Decimal("0.01"),
        valid_from=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
        valid_to=dt.datetime(2030, 2, 1, tzinfo=dt.UTC),
    )
    customer = Account.objects.create(name="Acme", rate_table=table, credit_limit=Decimal("5"))
    Account.objects.filter(pk=customer.pk).update(balance=Decimal("12.34"))
    vendor = Account.objects.create(name="Carrier", account_type="vendor")

    late = NumberTransformRule.objects.create(name="late", priority=20, match_prefix="00", strip_digits=2)
    early = NumberTransformRule.objects.create(name="early", priority=10, match_prefix="0", prepend="44")
    caller_rule = NumberTransformRule.objects.create(name="caller", target="caller", strip_digits=1)

    black = BlackWhiteListGroup.objects.create(name="bad callers", kind="black")
    ListEntry.objects.create(group=black, number="441234567")
    ListEntry.objects.create(group=black, number="4490", match="prefix")
    white = BlackWhiteListGroup.objects.create(name="allowed callees", kind="white")
    ListEntry.objects.create(group=white, number="44", match="prefix")

    nights = RoutingSchedule.objects.create(
        name="nights", weekdays=[4, 0], start_time=dt.time(22, 0), end_time=dt.time(2, 30)
    )
    pool = CallerNumberPool.objects.create(name="uk pool", numbers=["442000000001", "442000000002"])

    mapping = MappingGateway.objects.create(
        name="acme-trunk",
        account=customer,
        remote_ips=["203.0.113.10", "192.0.2.0/24"],
        capacity=30,
        cps_limit=5,
        prefix_forbid=["900"],
        conversation_limit=3600,
    )
    mapping.callee_transforms.set([late, early])
    mapping.caller_transforms.set([caller_rule])
    mapping.caller_list_groups.set([black])
    mapping.callee_list_groups.set([white])

    routing = RoutingGateway.objects.create(
        name="carrier-uk",
        host="198.51.100.7",
        prefixes=["44", "447"],
        tech_prefix="9#",
        priority=10,
        clearing_account=vendor,
        caller_number_pool=pool,
        failover_codes=[486],
    )
    routing.schedules.set([nights])
    routing.callee_transforms.set([early])

    phone = Phone.objects.create(username="1001", password="s3cret-pass-123", account=customer)
    SystemParameter.objects.create(name="SS_GATEWAY_SWITCH_LIMIT", value="3")

    return SimpleNamespace(
        table=table,
        customer=customer,
        vendor=vendor,
        late=late,
        early=early,
        caller_rule=caller_rule,
        black=black,
        white=white,
        nights=nights,
        pool=pool,
        mapping=mapping,
        routing=routing,
        phone=phone,
    )


@pytest.fixture
def make_configuration():
    """The builder itself, for tests that must create the configuration inside their own transaction."""
    return build_configuration


@pytest.fixture
def configuration(db):
    return build_configuration()
