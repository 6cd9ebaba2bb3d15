"""Fixtures of the portal tests: a logged-in operator and one object of every kind."""

import datetime as dt
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.utils import timezone

from billing.models import CDR, Account, Rate, RateTable
from security import ip_countries
from security.models import Alarm, BlackWhiteListGroup, DynamicBlacklistEntry, IpCountryRange, ListEntry
from softswitch_portal.core.models import SystemParameter
from softswitch_portal.switching.models import (
    CallerNumberPool,
    MappingGateway,
    NumberTransformRule,
    Phone,
    RoutingGateway,
    RoutingSchedule,
)

IP_COUNTRY_SAMPLE = Path(__file__).resolve().parents[1] / "security" / "data" / "delegated-test-extended.txt"


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser("operator", "operator@example.com", "not-a-real-secret-42")


@pytest.fixture
def operator_client(client, operator):
    """A client logged in as a superuser (every model permission)."""
    client.force_login(operator)
    return client


@pytest.fixture
def portal_objects(db, operator):
    """One row of every model, linked the way an operator would set them up."""
    from billing.services import apply_payment

    retail = RateTable.objects.create(name="Retail deck", currency="USD")
    rate = Rate.objects.create(
        rate_table=retail, prefix="4930", area="Germany Berlin", price_per_minute=Decimal("0.0125")
    )
    customer = Account.objects.create(name="Acme Telecom", rate_table=retail, credit_limit=Decimal("5"))
    vendor = Account.objects.create(name="Carrier One clearing", account_type="vendor")
    caller_rule = NumberTransformRule.objects.create(
        name="Strip 00", target="caller", match_prefix="00", strip_digits=2
    )
    callee_rule = NumberTransformRule.objects.create(name="Add 49", target="callee", match_prefix="0", prepend="49")
    schedule = RoutingSchedule.objects.create(name="Office hours", weekdays=[0, 1, 2, 3, 4], start_time=dt.time(8),
                                              end_time=dt.time(18))  # fmt: skip
    pool = CallerNumberPool.objects.create(name="Berlin CLIs", numbers=["4930111", "4930222"])
    blacklist = BlackWhiteListGroup.objects.create(name="Premium fraud", kind="black")
    entry = ListEntry.objects.create(group=blacklist, number="900", match="prefix", note="premium")
    mapping = MappingGateway.objects.create(name="acme-sbc", account=customer, remote_ips=["192.0.2.10"])
    mapping.caller_transforms.add(caller_rule)
    mapping.caller_list_groups.add(blacklist)
    routing = RoutingGateway.objects.create(name="carrier-one", host="198.51.100.7", prefixes=["49"],
                                            clearing_account=vendor, caller_number_pool=pool)  # fmt: skip
    routing.schedules.add(schedule)
    phone = Phone.objects.create(username="4930555", password="s3cret-digest", account=customer)
    ip_country_table = ip_countries.store(ip_countries.build([str(IP_COUNTRY_SAMPLE)]))
    ip_range = IpCountryRange.objects.create(start_ip="203.0.113.64", count=16, country="FR", memo="Paris PoP")
    parameter = SystemParameter.objects.create(name="SS_MAX_CPS", value="250")
    blocked = DynamicBlacklistEntry.objects.create(
        number="4915199999", reason="40 calls/min", figures={"calls_per_minute": 40}, evidence=["uuid-1"]
    )
    payment = apply_payment(customer, "recharge", "100", operator, memo="wire 42")
    alarm = Alarm.objects.create(
        kind="illegal_call_burst",
        severity="warning",
        subject_kind="ip",
        subject="203.0.113.99",
        dedupe_key="illegal_call_burst||ip|203.0.113.99|",
        figures={"calls": 25, "window_s": 300},
    )
    cdr = CDR.objects.create(
        call_uuid="cdr-fixture-1",
        start_time=timezone.now() - dt.timedelta(minutes=5),
        caller_number="4930555",
        callee_number="4989123456",
        caller_ip="192.0.2.10",
        account=customer,
        account_name=customer.name,
        mapping_gateway=mapping,
        mapping_gateway_name=mapping.name,
        routing_gateway=routing,
        routing_gateway_name=routing.name,
        hold_time_ms=61_000,
        fee=Decimal("0.11"),
        billing_mode=1,
        end_reason="normal_clearing",
        sip_status=200,
        vendors_tried=[{"gateway": "carrier-one", "ip": "198.51.100.7", "status": 200}],
    )
    return SimpleNamespace(
        retail=retail,
        rate=rate,
        customer=customer,
        vendor=vendor,
        caller_rule=caller_rule,
        callee_rule=callee_rule,
        schedule=schedule,
        pool=pool,
        blacklist=blacklist,
        entry=entry,
        mapping=mapping,
        routing=routing,
        phone=phone,
        ip_country_table=ip_country_table,
        ip_range=ip_range,
        parameter=parameter,
        blocked=blocked,
        payment=payment,
        cdr=cdr,
        alarm=alarm,
    )
