"""One source address, one customer: the mapping gateway form refuses a claim another gateway already holds."""

import io

import pytest
from django.core.management import call_command

from softswitch_portal.switching.forms import MappingGatewayForm
from softswitch_portal.switching.models import MappingGateway

pytestmark = pytest.mark.django_db


@pytest.fixture
def claim(customer):
    """Save a gateway named ``name`` (unvalidated, as rows from before the rule may be) holding ``ips``."""

    def make(name, ips, auth_mode="ip", port=None, enabled=True):
        return MappingGateway.objects.create(
            name=name, account=customer, remote_ips=ips, auth_mode=auth_mode, remote_port=port, enabled=enabled
        )

    return make


def form_for(customer, ips, auth_mode="ip", port=None, instance=None):
    data = {
        "name": instance.name if instance else "New trunk",
        "account": customer.pk,
        "enabled": "on",
        "auth_mode": auth_mode,
        "remote_ips": ", ".join(ips),
        "remote_port": port or "",
        "capacity": 0,
        "cps_limit": 0,
        "conversation_limit": 0,
        "route_policy": "priority",
    }
    return MappingGatewayForm(data=data, instance=instance)


@pytest.mark.parametrize(
    ("held", "wanted", "message"),
    [
        pytest.param(
            (["192.0.2.10"], "ip", None), (["192.0.2.10"], "ip", None),
            "192.0.2.10 is already claimed by mapping gateway \u201cOld trunk\u201d", id="the same IP",
        ),
        pytest.param(
            (["192.0.2.10/32"], "ip", None), (["198.51.100.1", "192.0.2.10"], "ip", None),
            "192.0.2.10 is already claimed by mapping gateway \u201cOld trunk\u201d", id="the same IP among others",
        ),
        pytest.param(
            (["192.0.2.10"], "ip_port", 5060), (["192.0.2.10"], "ip_port", 5060),
            "192.0.2.10 port 5060 is already claimed by mapping gateway \u201cOld trunk\u201d",
            id="the same IP and port",
        ),
        pytest.param(
            (["192.0.2.10"], "ip_port", 5060), (["192.0.2.10"], "ip", None),
            "192.0.2.10 port 5060 is already claimed by mapping gateway \u201cOld trunk\u201d",
            id="an IP claim beside an IP+port one",
        ),
        pytest.param(
            (["192.0.2.10"], "ip", None), (["192.0.2.10"], "ip_port", 5070),
            "192.0.2.10 is already claimed by mapping gateway \u201cOld trunk\u201d",
            id="an IP+port claim beside an IP one",
        ),
        pytest.param(
            (["10.0.0.0/24"], "ip", None), (["10.0.0.0/24"], "ip", None),
            "10.0.0.0/24 is already claimed by mapping gateway \u201cOld trunk\u201d", id="the same network",
        ),
        pytest.param(
            (["10.0.0.0/24"], "ip", None), (["10.0.0.77/24"], "ip", None),
            "10.0.0.0/24 is already claimed by mapping gateway \u201cOld trunk\u201d",
            id="the same network written from another address in it",
        ),
        pytest.param(
            (["2001:db8::/48"], "ip", None), (["2001:db8:0::/48"], "ip", None),
            "2001:db8::/48 is already claimed by mapping gateway \u201cOld trunk\u201d", id="the same IPv6 network",
        ),
    ],
)  # fmt: skip
def test_the_form_refuses_a_claim_another_gateway_holds(customer, claim, held, wanted, message):
    ips, mode, port = held
    claim("Old trunk", ips, mode, port)
    form = form_for(customer, *wanted)
    assert not form.is_valid()
    [error] = form.errors["remote_ips"]
    assert error.startswith(message)
    assert MappingGateway.objects.filter(name="New trunk").count() == 0


@pytest.mark.parametrize(
    ("held", "wanted"),
    [
        pytest.param((["192.0.2.10"], "ip", None), (["192.0.2.11"], "ip", None), id="another IP"),
        pytest.param((["192.0.2.10"], "ip_port", 5060), (["192.0.2.10"], "ip_port", 5070),
                     id="the same IP, another port"),
        pytest.param((["10.0.0.0/24"], "ip", None), (["10.0.0.5"], "ip", None), id="an address inside a network"),
        pytest.param((["10.0.0.5"], "ip", None), (["10.0.0.0/24"], "ip", None), id="a network around an address"),
        pytest.param((["10.0.0.0/24"], "ip", None), (["10.0.0.0/25"], "ip", None), id="a narrower network"),
        pytest.param((["10.0.0.0/24"], "ip", None), (["10.0.1.0/24"], "ip", None), id="a neighbouring network"),
    ],
)  # fmt: skip
def test_the_form_accepts_claims_the_call_core_tells_apart(customer, claim, held, wanted):
    ips, mode, port = held
    claim("Old trunk", ips, mode, port)
    form = form_for(customer, *wanted)
    assert form.is_valid(), form.errors
    form.save()


def test_a_disabled_gateway_still_holds_its_addresses(customer, claim):
    claim("Old trunk", ["192.0.2.10"], enabled=False)
    form = form_for(customer, ["192.0.2.10"])
    assert not form.is_valid()
    assert "\u201cOld trunk\u201d" in form.errors["remote_ips"][0]


def test_a_gateway_saved_again_does_not_conflict_with_itself(customer, claim):
    gateway = claim("Old trunk", ["192.0.2.10", "10.0.0.0/24"])
    form = form_for(customer, ["192.0.2.10", "10.0.0.0/24"], instance=gateway)
    assert form.is_valid(), form.errors


def test_every_gateway_a_claim_overlaps_is_named(customer, claim):
    claim("First trunk", ["192.0.2.10"])
    claim("Second trunk", ["10.0.0.0/24"])
    form = form_for(customer, ["10.0.0.0/24", "192.0.2.10"])
    assert not form.is_valid()
    errors = form.errors["remote_ips"]
    assert [e.split(" is already")[0] for e in errors] == ["192.0.2.10", "10.0.0.0/24"]
    assert ["\u201cFirst trunk\u201d" in errors[0], "\u201cSecond trunk\u201d" in errors[1]] == [True, True]


def test_the_demo_data_claims_no_address_twice():
    call_command("seed_demo", "--demo", stdout=io.StringIO())
    gateways = list(MappingGateway.objects.all())
    assert gateways
    for gateway in gateways:
        gateway.full_clean()
