"""The call state kept in the dialog: built from the decision, and read back as it was written."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from callcore import contract
from callcore.contract import BillingMode, CallState, VendorAttempt
from callcore.decide import Action, call_state, decide
from callcore.setup_types import LiveStatus, SetupResult

from . import factories as F


def routed(facts=None, live=None, **world):
    facts = facts or F.facts()
    decision = decide(facts, F.indexed(version=7, **world), live)
    assert decision.action is Action.ROUTE, decision.reason
    return facts, decision


def test_the_state_holds_the_call_its_routes_and_the_parameters_at_set_up():
    params = {
        "SERVER_BILLING_RECORD_ZERO_HOLD_TIME": True,
        "SERVER_BILLING_RECORD_SERVER_HANG_UP": False,
        "SS_SIP_STOP_SWITCH_AFTER_SDP": False,
        "SS_GATEWAY_SWITCH_LIMIT": 3,
        "SS_SIP_TIMEOUT_INVITE": 7,
    }
    facts, decision = routed(params=params)
    state = call_state(facts, decision)
    assert (state.call_id, state.start_ms, state.snapshot_version) == (facts.call_id, facts.now_ms, 7)
    assert (state.source_ip, state.caller_in, state.callee_in) == (F.CUSTOMER_IP, facts.caller, facts.callee)
    assert (state.billing_mode, state.account_id, state.mapping_gateway_id) == (BillingMode.MAPPING_GATEWAY, 1, 1)
    assert (state.record_zero_hold, state.record_server_hangup, state.stop_switch_after_sdp) == (True, False, False)
    assert (state.switch_limit, state.invite_timeout_ms) == (3, 7000)
    assert state.expiry_ms == facts.now_ms + (decision.max_duration_s + 60) * 1000
    route, attempt = state.routes[0], decision.routes[0]
    assert (route.gateway_id, route.host, route.callee) == (attempt.gateway_id, attempt.host, attempt.callee_out)
    assert route.failover_codes == attempt.failover_codes
    assert (route.rate_prefix, route.vendor_rate_prefix) == (attempt.customer_rate.prefix, attempt.vendor_rate.prefix)


def test_a_prepaid_call_keeps_its_grant_terms_not_a_balance_limit():
    facts, decision = routed(live=SetupResult(LiveStatus.OK, Decimal("0.10"), 0))
    state = call_state(facts, decision)
    assert state.balance_limited is False
    assert (state.grant.seconds, state.grant.fee_precision) == (60, 2)
    assert len(state.grant.rates) == len(state.routes) == len(state.route_max_s)


def test_the_state_reads_back_as_it_was_written():
    state = call_state(*routed())
    assert contract.decode_state(contract.encode_state(state)) == state
    tried = [VendorAttempt(1, "vendor-gw-1", "198.51.100.1", 503)]
    assert contract.decode_tried(contract.encode_tried(tried)) == tried
    # The tried vendors are written as the CDR's vendors_tried elements.
    assert msgspec.json.decode(contract.encode_tried(tried)) == [
        {"gateway_id": 1, "gateway": "vendor-gw-1", "ip": "198.51.100.1", "status": 503}
    ]


def test_a_lone_surrogate_in_the_state_becomes_a_replacement_character_instead_of_failing_the_call():
    facts, decision = routed(F.facts(user_agent="pbx\ud800"))
    state = contract.decode_state(contract.encode_state(call_state(facts, decision)))
    assert state.user_agent == "pbx\ufffd"
    assert isinstance(state, CallState)
