"""Builders of call-core snapshots and call facts: every entity with plain defaults, changed by keyword.

The default world is one customer (account 1, prepaid: anti-overdraft on) calling
in through mapping gateway 1 from CUSTOMER_IP, one vendor (account 2) behind
routing gateway 1 serving "44", and phone "1001" on the customer's account.
Customer rates (table 1): 44 at 0.0200, 1 at 0.0100; vendor rates (table 2):
44 at 0.0100, 1 at 0.0050; all 60/60 without connect fee.

``snapshot()`` round-trips what it builds through the contract's encoder and
validating decoder, so a test cannot drive ``decide`` with a snapshot the
portal could never publish (pass ``validate=False`` to build a broken one).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec

from callcore import contract
from callcore.decide import CallFacts
from callcore.snapshot import IndexedSnapshot

CUSTOMER_IP = "203.0.113.10"
PHONE_IP = "10.0.0.5"
FOREIGN_IP = "198.18.0.66"
PHONE_USERNAME = "1001"
PHONE_PASSWORD = "s3cret-pass"


def ms(year, month, day, hour=0, minute=0, tz="UTC") -> int:
    """Epoch milliseconds of a wall-clock moment in ``tz``."""
    return int(datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz)).timestamp() * 1000)


# Wednesday 16 January 2030, noon UTC: the moment every call happens unless a test says otherwise.
NOON_WEDNESDAY = ms(2030, 1, 16, 12)


def _with(obj, changes):
    if not changes:
        return obj
    # Snapshot entities are msgspec Structs, call facts are dataclasses.
    replace = msgspec.structs.replace if isinstance(obj, msgspec.Struct) else dataclasses.replace
    return replace(obj, **changes)


def account(id=1, **changes) -> contract.Account:
    return _with(
        contract.Account(
            id=id,
            name=f"customer-{id}",
            account_type="customer",
            balance="100.0000",
            credit_limit="0.0000",
            locked=False,
            anti_overdraft=True,
            capacity=0,
            rate_table_id=1,
        ),
        changes,
    )


def vendor(id=2, rate_table_id=2, **changes) -> contract.Account:
    return account(
        id,
        name=f"vendor-{id}",
        account_type="vendor",
        anti_overdraft=False,
        rate_table_id=rate_table_id,
        **changes,
    )


def rate(
    prefix, price, *, first=60, next=60, connect="0.0000", valid_from_ms=None, valid_to_ms=None, area=""
) -> contract.Rate:
    return contract.Rate(
        prefix=prefix,
        area=area or f"area {prefix}",
        price_per_minute=price,
        first_period=first,
        next_period=next,
        connect_fee=connect,
        valid_from_ms=valid_from_ms,
        valid_to_ms=valid_to_ms,
    )


def rate_table(id, *rates) -> contract.RateTable:
    return contract.RateTable(id=id, name=f"table-{id}", currency="USD", rates=tuple(rates))


def customer_rates(*rates) -> contract.RateTable:
    return rate_table(1, *(rates or (rate("44", "0.0200"), rate("1", "0.0100"))))


def vendor_rates(*rates, id=2) -> contract.RateTable:
    return rate_table(id, *(rates or (rate("44", "0.0100"), rate("1", "0.0050"))))


def rule(id=1, match_prefix="", strip=0, prepend="", min_length=0, max_length=0) -> contract.TransformRule:
    return contract.TransformRule(
        id=id,
        name=f"rule-{id}",
        match_prefix=match_prefix,
        min_length=min_length,
        max_length=max_length,
        strip_digits=strip,
        prepend=prepend,
    )


def mapping_gateway(id=1, **changes) -> contract.MappingGateway:
    return _with(
        contract.MappingGateway(
            id=id,
            name=f"customer-gw-{id}",
            account_id=1,
            remote_ips=(CUSTOMER_IP,),
            auth_mode="ip",
            remote_port=None,
            capacity=0,
            cps_limit=0,
            caller_transforms=(),
            callee_transforms=(),
            caller_list_group_ids=(),
            callee_list_group_ids=(),
            prefix_allow=(),
            prefix_forbid=(),
            conversation_limit=0,
            dynamic_blacklist_standalone=False,
            route_policy="priority",
            enabled=True,
        ),
        changes,
    )


def routing_gateway(id=1, **changes) -> contract.RoutingGateway:
    return _with(
        contract.RoutingGateway(
            id=id,
            name=f"vendor-gw-{id}",
            host=f"198.51.100.{id}",
            port=5060,
            transport="udp",
            prefixes=("44",),
            tech_prefix="",
            priority=100,
            capacity=0,
            cps_limit=0,
            clearing_account_id=2,
            caller_transforms=(),
            callee_transforms=(),
            schedule_ids=(),
            caller_number_pool=None,
            failover_codes=(),
            conversation_limit=0,
            dynamic_blacklist_standalone=False,
            enabled=True,
        ),
        changes,
    )


def pool(*numbers, id=1, mode="random") -> contract.CallerNumberPool:
    return contract.CallerNumberPool(id=id, name=f"pool-{id}", numbers=tuple(numbers), mode=mode)


def phone(id=1, username=PHONE_USERNAME, password=PHONE_PASSWORD, **changes) -> contract.Phone:
    return _with(
        contract.Phone(
            id=id,
            username=username,
            ha1=contract.digest_ha1(username, contract.SIP_REALM, password),
            account_id=1,
            capacity=0,
            allowed_networks=(),
            allowed_countries=(),
            enabled=True,
        ),
        changes,
    )


def list_group(id, kind, numbers=(), prefixes=()) -> contract.ListGroup:
    return contract.ListGroup(
        id=id, name=f"{kind}-list-{id}", kind=kind, numbers=tuple(numbers), prefixes=tuple(prefixes)
    )


def schedule(id, start, end, weekdays=()) -> contract.RoutingSchedule:
    """A weekly window from "HH:MM" to "HH:MM" (end before start: it crosses midnight)."""

    def minute(text):
        hours, minutes = text.split(":")
        return int(hours) * 60 + int(minutes)

    return contract.RoutingSchedule(
        id=id, name=f"schedule-{id}", weekdays=tuple(weekdays), start_minute=minute(start), end_minute=minute(end)
    )


def snapshot(
    *,
    params=None,
    customer=None,
    gateway=None,
    route=None,
    accounts=None,
    rate_tables=None,
    mapping_gateways=None,
    routing_gateways=None,
    phones=None,
    list_groups=(),
    routing_schedules=(),
    time_zone="UTC",
    validate=True,
) -> contract.Snapshot:
    """The default world; ``customer``/``gateway``/``route`` are changes to account 1 / mapping
    gateway 1 / routing gateway 1, the plural keywords replace a whole collection."""
    built = contract.Snapshot(
        schema_version=contract.SNAPSHOT_SCHEMA_VERSION,
        sip_realm=contract.SIP_REALM,
        time_zone=time_zone,
        parameters={**contract.default_parameters(), **(params or {})},
        accounts=tuple(accounts) if accounts is not None else (account(**(customer or {})), vendor()),
        rate_tables=tuple(rate_tables) if rate_tables is not None else (customer_rates(), vendor_rates()),
        mapping_gateways=(
            tuple(mapping_gateways) if mapping_gateways is not None else (mapping_gateway(**(gateway or {})),)
        ),
        routing_gateways=(
            tuple(routing_gateways) if routing_gateways is not None else (routing_gateway(**(route or {})),)
        ),
        phones=tuple(phones) if phones is not None else (phone(),),
        list_groups=tuple(list_groups),
        routing_schedules=tuple(routing_schedules),
    )
    if validate:
        built = contract.decode_snapshot(contract.encode_snapshot(built))
    return built


def indexed(version=1, **world) -> IndexedSnapshot:
    return IndexedSnapshot(snapshot(**world), version)


def facts(**changes) -> CallFacts:
    """An INVITE from the customer's mapping gateway to a UK mobile, at NOON_WEDNESDAY."""
    return _with(
        CallFacts(
            call_id="a84b4c76e66710@test",
            source_ip=CUSTOMER_IP,
            source_port=5060,
            caller="15551230000",
            callee="447700900123",
            now_ms=NOON_WEDNESDAY,
            user_agent="CustomerPBX/1.0",
        ),
        changes,
    )


def phone_facts(**changes) -> CallFacts:
    """An INVITE from phone 1001 that passed digest authentication."""
    return facts(**{"source_ip": PHONE_IP, "caller": PHONE_USERNAME, "phone_username": PHONE_USERNAME, **changes})
