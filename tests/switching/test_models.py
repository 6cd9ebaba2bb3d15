"""Validation of the switching models: what an operator may not save."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from callcore import contract
from security.models import IpCountryTable
from softswitch_portal.switching.models import (
    CallerNumberPool,
    MappingGateway,
    NumberTransformRule,
    Phone,
    RoutingGateway,
    RoutingSchedule,
)

pytestmark = pytest.mark.django_db


def errors_of(instance):
    with pytest.raises(ValidationError) as exc:
        instance.full_clean()
    return exc.value.message_dict


def test_a_mapping_gateway_refuses_a_bad_ip(customer):
    gateway = MappingGateway(name="gw", account=customer, remote_ips=["192.0.2.1", "10.0.0.300"])
    assert "10.0.0.300" in errors_of(gateway)["remote_ips"][0]


def test_a_mapping_gateway_accepts_ips_and_cidrs(customer):
    MappingGateway(
        name="gw", account=customer, remote_ips=["192.0.2.1", "198.51.100.0/24", "2001:db8::/32"]
    ).full_clean()


def test_ip_and_port_authentication_needs_the_port(customer):
    gateway = MappingGateway(name="gw", account=customer, remote_ips=["192.0.2.1"], auth_mode="ip_port")
    assert "port" in errors_of(gateway)["remote_port"][0]


def test_a_forbidden_prefix_with_letters_is_refused(customer):
    gateway = MappingGateway(name="gw", account=customer, remote_ips=["192.0.2.1"], prefix_forbid=["1900", "44a"])
    assert "44a" in errors_of(gateway)["prefix_forbid"][0]


def test_a_routing_gateway_refuses_a_bad_host_and_port():
    errors = errors_of(RoutingGateway(name="v", host="bad host!", port=70000))
    assert "host" in errors and "port" in errors


def test_a_routing_gateway_clearing_account_must_be_a_vendor(customer, vendor_account):
    errors = errors_of(RoutingGateway(name="v", host="192.0.2.5", clearing_account=customer))
    assert "vendor" in errors["clearing_account"][0]
    RoutingGateway(name="v", host="carrier.example.net", clearing_account=vendor_account).full_clean()


def test_failover_codes_must_be_final_failures():
    errors = errors_of(RoutingGateway(name="v", host="192.0.2.5", failover_codes=[503, 180]))
    assert "180" in errors["failover_codes"][0]


def test_a_phone_needs_a_strong_password_and_valid_countries(customer):
    errors = errors_of(Phone(username="1001", password="123", account=customer, allowed_countries=["usa"]))
    assert "10 characters" in errors["password"][0]
    phone = Phone(username="1001", password="s3cret-enough", account=customer, allowed_countries=["us"])
    assert "country code" in errors_of(phone)["allowed_countries"][0]


def test_a_phone_limited_to_countries_needs_the_ip_country_table(customer):
    phone = Phone(username="1001", password="s3cret-enough", account=customer, allowed_countries=["NL"])
    assert "import the RIR statistics first" in errors_of(phone)["allowed_countries"][0]

    IpCountryTable.objects.create(
        blob=contract.encode_ip_countries([(0, 255, "NL")], []),
        version="test",
        ipv4_ranges=1,
        ipv6_ranges=0,
        countries=1,
        sources=["test"],
    )
    phone.full_clean()


def test_a_phone_username_is_a_number(customer):
    assert "username" in errors_of(Phone(username="bob", password="s3cret-enough", account=customer))


def test_a_transform_rule_rewrites_matching_numbers_only():
    rule = NumberTransformRule(name="r", match_prefix="00", strip_digits=2, prepend="", min_length=5)
    assert rule.apply("00441234") == "441234"
    assert rule.apply("0044") is None  # too short
    assert rule.apply("441234") is None  # prefix does not match


def test_a_transform_rule_refuses_max_below_min():
    assert "max_length" in errors_of(NumberTransformRule(name="r", min_length=10, max_length=5))


def test_a_schedule_refuses_an_empty_window():
    schedule = RoutingSchedule(name="s", start_time=dt.time(9), end_time=dt.time(9))
    assert "end_time" in errors_of(schedule)


def test_a_number_pool_needs_numbers():
    assert "numbers" in errors_of(CallerNumberPool(name="p", numbers=[]))
    assert "numbers" in errors_of(CallerNumberPool(name="p", numbers=["12ab"]))
