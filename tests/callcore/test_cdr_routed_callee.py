"""The CDR names the callee three ways: as received, as routed (after the mapping gateway's transforms), as sent."""

from __future__ import annotations

import msgspec

from callcore.cdr import call_record, refusal_record
from callcore.contract import CDR_SCHEMA, CdrRecord, EndDirection, EndReason, decode_cdr, encode_cdr
from callcore.decide import decide
from callcore.setup_types import LiveStatus, SetupResult

from . import factories as F
from .test_cdr import CALL_STATE, ROUTE

STRIP_00 = {"callee_transforms": (F.rule(1, "00", strip=2),)}


def test_a_routed_call_records_the_callee_as_received_routed_and_sent():
    state = msgspec.structs.replace(CALL_STATE, callee_in="00447700900123", callee="447700900123")
    record = call_record(
        state, route=ROUTE, answer_ms=1_003_000, stop_ms=1_064_000, ring_ms=None, tried=[], node="node-a",
        direction=EndDirection.CALLER, reason=EndReason.NORMAL_CLEARING, sip_status=200, callee_call_id="leg-b",
    )  # fmt: skip
    assert (record.callee_number, record.callee_number_routed, record.callee_number_out) == (
        "00447700900123",
        "447700900123",
        "0101#447700900123",
    )


def refusal(facts, decision):
    return refusal_record(
        call_id=facts.call_id, start_ms=facts.now_ms, source_ip=facts.source_ip, source_port=facts.source_port,
        user_agent=facts.user_agent, caller=facts.caller, callee=facts.callee, reason=decision.reason,
        billing_mode=decision.billing_mode, decision=decision, snapshot_version=1, node="node-a",
    )  # fmt: skip


def test_a_refusal_after_planning_records_the_routed_callee_and_one_before_it_none():
    facts = F.facts(callee="00447700900123")
    planned = refusal(
        facts, decide(facts, F.indexed(gateway=STRIP_00), SetupResult(LiveStatus.MAPPING_CAPACITY, None, -1))
    )
    assert (planned.callee_number, planned.callee_number_routed) == ("00447700900123", "447700900123")
    locked = refusal(facts, decide(facts, F.indexed(gateway=STRIP_00, customer={"locked": True})))
    assert (locked.callee_number, locked.callee_number_routed) == ("00447700900123", "")


def test_the_routed_callee_goes_through_the_stream_and_an_older_record_without_it_still_decodes():
    record = CdrRecord(call_uuid="u", start_ms=1_000_000_000_000, billing_mode=1, callee_number_routed="447700900123")
    assert decode_cdr(encode_cdr(record)).callee_number_routed == "447700900123"
    older = msgspec.json.decode(encode_cdr(record))
    del older["callee_number_routed"]
    assert older["cdr_schema"] == CDR_SCHEMA
    assert decode_cdr(msgspec.json.encode(older)).callee_number_routed == ""
