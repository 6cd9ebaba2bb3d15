"""An operator's test call names the one vendor to try (X-Test-Gateway); only the test-call phone may."""

from __future__ import annotations

from callcore.contract import EndReason
from callcore.decide import Plan, plan_call

from . import factories as F

THREE_VENDORS = [F.routing_gateway(i, priority=i) for i in (1, 2, 3)]


def vendors(facts, **world):
    planned = plan_call(facts, F.indexed(**world))
    return [route.gateway_id for route in planned.routes] if isinstance(planned, Plan) else planned.reason


def test_the_test_phone_keeps_only_the_gateway_it_names():
    world = {"routing_gateways": THREE_VENDORS, "phones": [F.phone(test_phone=True)]}
    assert vendors(F.phone_facts(test_gateway="2"), **world) == [2]
    assert vendors(F.phone_facts(), **world) == [1, 2, 3]  # without the header: an ordinary call


def test_a_named_gateway_that_cannot_take_the_number_is_no_route_not_another_vendor():
    world = {"routing_gateways": THREE_VENDORS, "phones": [F.phone(test_phone=True)]}
    assert vendors(F.phone_facts(test_gateway="9"), **world) is EndReason.NO_ROUTE


def test_any_other_caller_naming_a_gateway_is_routed_as_usual():
    world = {"routing_gateways": THREE_VENDORS}
    assert vendors(F.phone_facts(test_gateway="2"), **world) == [1, 2, 3]  # an ordinary phone
    assert vendors(F.facts(test_gateway="2"), **world) == [1, 2, 3]  # a mapping gateway


def test_a_header_that_is_not_an_id_is_ignored():
    world = {"routing_gateways": THREE_VENDORS, "phones": [F.phone(test_phone=True)]}
    assert vendors(F.phone_facts(test_gateway="2; drop"), **world) == [1, 2, 3]
