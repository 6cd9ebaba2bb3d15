"""The CDR of a call its node lost (contract.lost): charged from its answer to the node's last heartbeat, estimated."""

from __future__ import annotations

import msgspec

from callcore.contract import (
    AnsweredCall,
    BillingMode,
    EndDirection,
    EndReason,
    decode_answered,
    decode_cdr,
    encode_answered,
    encode_cdr,
    lost_call_record,
)

from .test_cdr import ROUTE

NOW = 1_900_000_000_000
ENTRY = {
    "account_id": 1, "mapping_gateway_id": 3, "phone_id": None, "route_gateway_ids": [7], "caller": "15551230000",
    "callee": "447700900123", "source_ip": "192.0.2.10", "start_ms": NOW, "snapshot_version": 4,
    "billing_mode": int(BillingMode.MAPPING_GATEWAY), "node": "node-a",
}  # fmt: skip
ANSWERED = AnsweredCall(answer_ms=NOW + 2_000, route=ROUTE)


def test_an_answered_call_is_charged_from_its_answer_to_the_last_heartbeat_and_marked_estimated():
    record = lost_call_record("abc@pbx", ENTRY, "node-a", NOW + 90_000, answered=ANSWERED, heartbeat_ms=NOW + 62_000)
    assert (record.answer_ms, record.stop_ms, record.hold_time_ms) == (NOW + 2_000, NOW + 62_000, 60_000)
    assert record.estimated is True
    assert (record.end_reason, record.end_direction) == (EndReason.SWITCH_RESTART.code, EndDirection.SERVER)
    # The vendor that answered, so the vendor's cost is recorded too.
    assert (record.routing_gateway_id, record.vendor_account_id, record.vendor_ip) == (7, 2, "198.51.100.7")
    assert (record.callee_number, record.callee_number_routed, record.callee_number_out) == (
        "447700900123", "447700900123", "0101#447700900123",
    )  # fmt: skip
    assert (record.rate_prefix, record.vendor_rate_prefix) == ("44", "447")
    assert [(t.gateway_id, t.status) for t in record.vendors_tried] == [(7, 200)]
    line = encode_cdr(record)
    assert encode_cdr(decode_cdr(line)) == line  # the ingest takes it as written


def test_an_unanswered_call_is_charged_nothing_and_ends_at_the_last_heartbeat():
    record = lost_call_record("abc@pbx", ENTRY, "node-a", NOW + 90_000, heartbeat_ms=NOW + 3_000)
    assert (record.answer_ms, record.hold_time_ms, record.stop_ms) == (None, 0, NOW + 3_000)
    assert (record.routing_gateway_id, record.vendor_account_id, record.vendors_tried) == (None, None, [])
    assert record.estimated is True


def test_without_a_heartbeat_the_call_ends_now():
    record = lost_call_record("abc@pbx", ENTRY, "node-a", NOW + 90_000, answered=ANSWERED)
    assert (record.stop_ms, record.hold_time_ms) == (NOW + 90_000, 88_000)


def test_a_call_answered_after_the_last_heartbeat_is_charged_nothing_rather_than_a_negative_time():
    # The node beat, the call was answered, the node died before its next beat: nothing says it talked.
    record = lost_call_record("abc@pbx", ENTRY, "node-a", NOW + 90_000, answered=ANSWERED, heartbeat_ms=NOW + 1_000)
    assert (record.answer_ms, record.stop_ms, record.hold_time_ms) == (NOW + 2_000, NOW + 2_000, 0)
    unanswered = lost_call_record("abc@pbx", ENTRY, "node-a", NOW + 90_000, heartbeat_ms=NOW - 5_000)
    assert unanswered.stop_ms == NOW  # never before it started


def test_the_node_and_the_worker_build_the_same_record_whenever_they_run():
    # Both read the same registry entry, answer and heartbeat: only "now" differs, which a heartbeat overrides.
    early = lost_call_record("abc@pbx", ENTRY, "node-a", NOW + 70_000, answered=ANSWERED, heartbeat_ms=NOW + 9_000)
    late = lost_call_record("abc@pbx", ENTRY, "node-a", NOW + 900_000, answered=ANSWERED, heartbeat_ms=NOW + 9_000)
    assert encode_cdr(early) == encode_cdr(late)


def test_the_kept_answer_survives_its_round_trip_through_redis():
    assert decode_answered(encode_answered(ANSWERED)) == ANSWERED
    assert msgspec.json.decode(encode_answered(ANSWERED))[0] == NOW + 2_000
