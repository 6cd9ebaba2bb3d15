"""Validation of list entries and dynamic blacklist entries."""

import pytest
from django.core.exceptions import ValidationError

from security.models import BlackWhiteListGroup, DynamicBlacklistEntry, ListEntry
from softswitch_portal.switching.models import MappingGateway

pytestmark = pytest.mark.django_db


def errors_of(instance):
    with pytest.raises(ValidationError) as exc:
        instance.full_clean()
    return exc.value.message_dict


@pytest.fixture
def group():
    return BlackWhiteListGroup.objects.create(name="G", kind="black")


def test_a_full_number_entry_must_be_digits(group):
    assert "number" in errors_of(ListEntry(group=group, number="12-34", match="exact"))
    ListEntry(group=group, number="+4420794", match="exact").full_clean()


def test_a_prefix_entry_may_not_be_empty(group):
    assert "number" in errors_of(ListEntry(group=group, number="", match="prefix"))


def test_a_standalone_blacklist_entry_names_its_gateway(customer):
    assert "mapping_gateway" in errors_of(DynamicBlacklistEntry(number="123", scope="gateway", reason="cpm"))
    gateway = MappingGateway.objects.create(name="gw", account=customer, remote_ips=["192.0.2.1"])
    central = DynamicBlacklistEntry(number="123", scope="central", reason="cpm", mapping_gateway=gateway)
    assert "mapping_gateway" in errors_of(central)
    DynamicBlacklistEntry(number="123", scope="gateway", reason="cpm", mapping_gateway=gateway).full_clean()
