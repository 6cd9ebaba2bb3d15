"""The decision trace: each candidate vendor skipped with why, and the limits a call got, as its CDR keeps them."""

from __future__ import annotations

from callcore import contract
from callcore.cdr import call_record, refusal_record
from callcore.contract.trace import LimitSource, Skip, decode_trace, encode_trace
from callcore.decide import Action, call_state, conclude, plan_call, trace_text
from callcore.setup_types import LiveStatus, SetupResult

from . import factories as F

NIGHT_ONLY = F.schedule(1, "22:00", "06:00")


def world(**params):
    """Five vendors for 44: in schedule, out of it, dearer than the customer, and two more past a switch limit."""
    return F.indexed(
        params={"SS_GATEWAY_SWITCH_LIMIT": 2, **params},
        routing_gateways=(
            F.routing_gateway(1, priority=10),
            F.routing_gateway(2, priority=20, schedule_ids=(1,)),
            F.routing_gateway(3, priority=30, clearing_account_id=3),
            F.routing_gateway(4, priority=40, conversation_limit=600),
            F.routing_gateway(5, priority=50),
        ),
        accounts=(F.account(), F.vendor(), F.vendor(3, rate_table_id=3)),
        rate_tables=(F.customer_rates(), F.vendor_rates(), F.vendor_rates(F.rate("44", "0.0900"), id=3)),
        routing_schedules=(NIGHT_ONLY,),
    )


def test_each_skipped_candidate_is_traced_with_its_reason_in_the_order_met():
    trace = []
    plan = plan_call(F.facts(), world(), trace=trace)
    assert [r.gateway_id for r in plan.routes] == [1, 4]
    assert [(g.id, why) for g, why in trace] == [(2, Skip.SCHEDULE), (3, Skip.MARGIN), (5, Skip.SWITCH_LIMIT)]


def test_without_a_trace_list_the_plan_is_the_same():
    assert [r.gateway_id for r in plan_call(F.facts(), world()).routes] == [
        r.gateway_id for r in plan_call(F.facts(), world(), trace=[]).routes
    ]


def test_a_routed_calls_trace_names_the_busy_vendors_and_the_limit_of_the_first_one_it_got():
    plan = plan_call(F.facts(), world(), trace=[])
    # The live state found vendor 1 full and took a slot on vendor 4, whose conversation limit is 600 s.
    decision = conclude(plan, SetupResult(LiveStatus.OK, None, 1))
    assert decision.action is Action.ROUTE
    text = trace_text(decision)
    assert text == "policy=priority;routes=1,4;skip=2:schedule,3:margin,5:switch_limit;busy=1;max=600:route"
    state = call_state(plan.facts, decision)
    assert state.decision_trace == text
    record = call_record(
        contract.decode_state(contract.encode_state(state)), route=state.routes[0], answer_ms=None,
        stop_ms=F.NOON_WEDNESDAY + 1000, ring_ms=None, tried=[], direction=contract.EndDirection.CALLEE,
        reason=contract.EndReason.VENDOR_FAILED, sip_status=503, callee_call_id="", node="n1",
    )  # fmt: skip
    assert contract.decode_cdr(contract.encode_cdr(record)).decision_trace == text


def test_a_call_no_vendor_can_take_records_every_candidate_skipped():
    trace = []
    snap = F.indexed(route={"schedule_ids": (1,)}, routing_schedules=(NIGHT_ONLY,))
    decision = plan_call(F.facts(), snap, trace=trace)
    assert decision.reason is contract.EndReason.NO_ROUTE
    text = trace_text(decision, trace)
    assert decode_trace(text).skipped == [(1, "schedule")]
    record = refusal_record(
        call_id="c", start_ms=F.NOON_WEDNESDAY, source_ip=F.CUSTOMER_IP, source_port=5060, user_agent="",
        caller="1", callee="44", reason=decision.reason, billing_mode=decision.billing_mode, decision=decision,
        snapshot_version=1, node="n1", decision_trace=text,
    )  # fmt: skip
    assert record.decision_trace == "policy=priority;skip=1:schedule"


def test_a_customer_without_a_rate_for_what_one_vendor_is_sent_skips_it_for_no_rate():
    # Rating the sent number: vendor 2 prepends 9, and the customer has no rate for 9...
    snap = F.indexed(
        params={"SERVER_BILLING_GATEWAY_ROUTE_PREFIX": 1},
        routing_gateways=(F.routing_gateway(1), F.routing_gateway(2, tech_prefix="9")),
    )
    trace = []
    plan = plan_call(F.facts(), snap, trace=trace)
    assert [r.gateway_id for r in plan.routes] == [1]
    assert [(g.id, why) for g, why in trace] == [(2, Skip.NO_RATE)]


def test_the_limit_names_the_mapping_gateways_conversation_limit_when_it_is_the_shortest():
    snap = F.indexed(gateway={"conversation_limit": 300}, route={"conversation_limit": 900})
    decision = conclude(plan_call(F.facts(), snap, trace=[]), SetupResult(LiveStatus.OK, None, 0))
    assert decode_trace(trace_text(decision)).max_by == LimitSource.MAPPING_GATEWAY
    assert decode_trace(trace_text(decision)).max_duration_s == 300


def test_a_long_trace_is_cut_at_a_whole_entry_and_still_reads():
    text = encode_trace("priority", [1], [(n, Skip.MARGIN) for n in range(1000, 1200)], max_duration_s=60)
    assert len(text) <= contract.TEXT_WIDTHS["decision_trace"]
    decoded = decode_trace(text)
    assert decoded.skipped[0] == (1000, "margin") and all(reason == "margin" for _, reason in decoded.skipped)


def test_a_garbled_trace_reads_as_far_as_it_can():
    assert decode_trace("policy=asr;routes=1,x;skip=7:cps").skipped == [(7, "cps")]
    assert decode_trace("").routes == []
