"""The CDR sink: the stream, the spool when Redis is away, replays that send each line exactly once."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import threading
import time

import msgspec
import pytest
import redis
from django.conf import settings

from callcore import cdr
from callcore.cdr import CdrSink, call_record, refusal_record
from callcore.contract import (
    MIN_MS,
    BillingMode,
    CallState,
    CdrRecord,
    EndDirection,
    EndReason,
    RouteState,
    VendorAttempt,
    decode_cdr,
    encode_cdr,
)
from callcore.decide import decide
from callcore.setup_types import LiveStatus, SetupResult

from . import factories as F

UNREACHABLE = "redis://127.0.0.1:1"


@pytest.fixture
def spool_path(tmp_path):
    return tmp_path / "spool" / "cdr-spool.jsonl"


@pytest.fixture
def sink(prefix, spool_path):
    return CdrSink(settings.REDIS_URL, prefix, spool_path)


@pytest.fixture
def down(prefix, spool_path):
    """The same sink while Redis is unreachable."""
    return CdrSink(UNREACHABLE, prefix, spool_path)


def record(n: int) -> dict:
    return {"call_uuid": f"node:call-{n}:1900000000000", "caller_number": "15551230000", "hold_time_ms": n}


def streamed(client, prefix) -> list[dict]:
    return [json.loads(fields[b"cdr"]) for _id, fields in client.xrange(f"{prefix}:cdr")]


def uuids(client, prefix) -> list[str]:
    return [r["call_uuid"] for r in streamed(client, prefix)]


def spooled(spool_path) -> list[dict]:
    return [json.loads(line) for line in spool_path.read_text().splitlines()] if spool_path.exists() else []


def leftovers(spool_path) -> list[str]:
    return sorted(p.name for p in spool_path.parent.glob("*.replay.*"))


def test_a_cdr_goes_to_the_stream(sink, client, prefix, spool_path):
    assert sink.emit(record(1)) is True
    assert streamed(client, prefix) == [record(1)]
    assert not spool_path.exists()


def test_a_cdr_emitted_without_waiting_reaches_the_stream(sink, client, prefix, spool_path):
    sink.emit_later(record(1))
    sink.emit_later(record(2))
    assert sink.resp.pending() == 2
    assert sink.emit(record(3)) is True  # reads the two replies before its own
    assert sink.resp.pending() == 0
    assert streamed(client, prefix) == [record(1), record(2), record(3)]
    assert not spool_path.exists()


def test_a_cdr_emitted_without_waiting_to_an_unreachable_redis_is_spooled(down, spool_path):
    down.emit_later(record(1))
    assert spooled(spool_path) == [record(1)]


def test_with_redis_unreachable_the_cdr_is_spooled_to_disk(down, client, prefix, spool_path):
    assert down.emit(record(1)) is False
    assert down.emit(record(2)) is False
    assert spooled(spool_path) == [record(1), record(2)]
    assert not client.exists(f"{prefix}:cdr")


def test_a_replay_with_redis_back_sends_every_spooled_line_once_and_empties_the_spool(
    down, sink, client, prefix, spool_path
):
    for n in range(5):
        down.emit(record(n))
    assert sink.replay() == 5
    assert streamed(client, prefix) == [record(n) for n in range(5)]
    assert not sink.spool.pending()
    assert spooled(spool_path) == []
    assert leftovers(spool_path) == []
    assert sink.replay() == 0
    assert len(streamed(client, prefix)) == 5


def test_the_first_cdr_that_reaches_redis_again_brings_the_spool_along(down, sink, client, prefix):
    down.emit(record(1))
    down.emit(record(2))
    assert sink.emit(record(3)) is True
    assert sorted(uuids(client, prefix)) == sorted(r["call_uuid"] for r in map(record, (1, 2, 3)))
    assert not sink.spool.pending()


class SlowSend:
    """Wraps a sink's XADD so that replays overlap; counts what each sent."""

    def __init__(self, sink, delay=0.001):
        self.send, self.delay, self.sent = sink._xadd, delay, 0
        sink._xadd = self

    def __call__(self, line):
        time.sleep(self.delay)
        self.send(line)
        self.sent += 1


def test_two_concurrent_replays_in_threads_do_not_send_a_line_twice(down, prefix, spool_path, client):
    for n in range(100):
        down.emit(record(n))
    sinks = [CdrSink(settings.REDIS_URL, prefix, spool_path) for _ in range(2)]
    sends = [SlowSend(s) for s in sinks]
    start = threading.Barrier(2)

    def replay(s):
        start.wait()
        s.replay()

    threads = [threading.Thread(target=replay, args=(s,)) for s in sinks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(s.sent for s in sends) == 100
    sent = uuids(client, prefix)
    assert len(sent) == len(set(sent)) == 100
    assert not sinks[0].spool.pending()


def _replay_in_a_process(prefix, spool_path, start):
    sink = CdrSink(settings.REDIS_URL, prefix, spool_path)
    SlowSend(sink)
    start.wait(10)
    sink.replay()


def test_two_concurrent_replays_in_processes_do_not_send_a_line_twice(down, prefix, spool_path, client):
    for n in range(100):
        down.emit(record(n))
    context = multiprocessing.get_context("fork")
    start = context.Barrier(2)
    processes = [context.Process(target=_replay_in_a_process, args=(prefix, spool_path, start)) for _ in range(2)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(30)
    assert [p.exitcode for p in processes] == [0, 0]
    sent = uuids(client, prefix)
    assert len(sent) == len(set(sent)) == 100


def test_a_replay_that_fails_halfway_keeps_the_unsent_lines(down, sink, client, prefix, spool_path):
    for n in range(10):
        down.emit(record(n))
    send = sink._xadd
    calls = []

    def flaky(line):
        calls.append(line)
        if len(calls) == 4:
            raise redis.ConnectionError("Redis went away again")
        send(line)

    sink._xadd = flaky
    assert sink.replay() == 3
    assert streamed(client, prefix) == [record(n) for n in range(3)]
    assert spooled(spool_path) == [record(n) for n in range(3, 10)]
    assert leftovers(spool_path) == []
    sink._xadd = send
    assert sink.replay() == 7
    assert streamed(client, prefix) == [record(n) for n in range(10)]


def test_a_line_spooled_while_a_replay_renames_the_spool_is_not_lost(monkeypatch, down, sink, client, prefix):
    """A writer that opened the spool just before a replay renamed it must not write into the renamed file."""
    down.emit(record(1))
    opened, resume = threading.Event(), threading.Event()
    real_open = os.open

    class PausingOs:
        """os, except that the writer thread stops right after it opened the spool for appending."""

        def __getattr__(self, name):
            return getattr(os, name)

        def open(self, path, flags, mode=0o777):
            fd = real_open(path, flags, mode)
            if threading.current_thread().name == "writer" and flags & os.O_APPEND and not opened.is_set():
                opened.set()
                resume.wait(10)
            return fd

    monkeypatch.setattr(cdr, "os", PausingOs())
    writer = threading.Thread(target=down.spool.append, args=(encode_cdr(record(2)),), name="writer")
    writer.start()
    assert opened.wait(10)
    sink.replay()  # renames the spool (the writer's file) aside, sends record 1, deletes the file
    resume.set()
    writer.join(10)
    sink.replay()
    assert sorted(uuids(client, prefix)) == [record(1)["call_uuid"], record(2)["call_uuid"]]


# ---------------------------------------------------------------------------
# Building records


def _refusal(facts, decision, snapshot) -> dict:
    return msgspec.to_builtins(refusal_record(
        call_id=facts.call_id, start_ms=facts.now_ms, source_ip=facts.source_ip, source_port=facts.source_port,
        user_agent=facts.user_agent, caller=facts.caller, callee=facts.callee, reason=decision.reason,
        billing_mode=decision.billing_mode, decision=decision, snapshot_version=snapshot.version, node="node-a",
    ))  # fmt: skip


def test_a_refusal_after_planning_records_the_numbers_as_they_would_have_been_sent():
    snapshot = F.indexed(gateway={"callee_transforms": (F.rule(1, "00", strip=2),)})
    facts = F.facts(callee="00447700900123")
    decision = decide(facts, snapshot, SetupResult(LiveStatus.MAPPING_CAPACITY, None, -1))
    row = _refusal(facts, decision, snapshot)
    assert (row["callee_number"], row["callee_number_out"]) == ("00447700900123", "447700900123")
    assert (row["caller_number"], row["caller_number_out"]) == ("15551230000", "15551230000")
    assert (row["end_reason"], row["sip_status"]) == ("mapping_capacity", 486)


def test_a_phone_refusal_records_the_phone():
    snapshot = F.indexed()
    facts = F.phone_facts()
    decision = decide(facts, snapshot, SetupResult(LiveStatus.PHONE_CAPACITY, None, -1))
    row = _refusal(facts, decision, snapshot)
    assert (row["phone_id"], row["mapping_gateway_id"], row["billing_mode"]) == (1, None, BillingMode.PHONE)


def test_a_refusal_record_carries_the_reason_the_source_and_the_account():
    snapshot = F.indexed(version=42, customer={"locked": True})
    facts = F.facts(user_agent="PBX/" + "x" * 300)
    row = _refusal(facts, decide(facts, snapshot), snapshot)
    assert len(row["call_uuid"]) == 32  # bounded whatever the Call-ID's length
    other_attempt = _refusal(dataclasses.replace(facts, now_ms=facts.now_ms + 1), decide(facts, snapshot), snapshot)
    assert other_attempt["call_uuid"] != row["call_uuid"]
    assert (row["end_reason"], row["sip_status"], row["end_direction"]) == ("account_locked", 403, EndDirection.SERVER)
    assert (row["account_id"], row["account_name"], row["mapping_gateway_id"]) == (1, "customer-1", 1)
    assert (row["caller_ip"], row["caller_port"], row["billing_mode"]) == (
        F.CUSTOMER_IP,
        5060,
        BillingMode.MAPPING_GATEWAY,
    )
    assert (row["start_ms"], row["stop_ms"], row["hold_time_ms"]) == (facts.now_ms, facts.now_ms, 0)
    assert len(row["caller_user_agent"]) == 200
    assert row["snapshot_version"] == 42


def test_an_illegal_call_record_has_no_account_and_the_illegal_billing_mode():
    row = msgspec.to_builtins(refusal_record(
        call_id="x", start_ms=1, source_ip=F.FOREIGN_IP, source_port=5060, user_agent="", caller="1", callee="2",
        reason=EndReason.ILLEGAL_SOURCE, billing_mode=BillingMode.ILLEGAL, decision=None, snapshot_version=3,
        node="node-a",
    ))  # fmt: skip
    assert (row["billing_mode"], row["account_id"], row["end_reason"]) == (BillingMode.ILLEGAL, None, "illegal_source")


ROUTE = RouteState(
    gateway_id=7, gateway_name="vendor-gw-7", host="198.51.100.7", port=5060, transport="udp",
    caller="447700900999", callee="0101#447700900123", capacity=0, cps_limit=0, failover_codes=frozenset(),
    conversation_limit=0, vendor_account_id=2, rate_prefix="44", rate_area="UK", vendor_rate_prefix="447",
    vendor_rate_area="UK mobile",
)  # fmt: skip
CALL_STATE = CallState(
    call_id="abc@pbx", start_ms=1_000_000, snapshot_version=9, caller_in="07700900999",
    callee_in="00447700900123", caller="07700900999", callee="00447700900123", source_ip=F.CUSTOMER_IP,
    source_port=5060, user_agent="PBX", account_id=1, account_name="customer-1", phone_id=None,
    mapping_gateway_id=1, mapping_gateway_name="customer-gw-1", billing_mode=BillingMode.MAPPING_GATEWAY,
    max_duration_s=7200, balance_limited=False, slot_taken=True, routes=[ROUTE], from_per_branch=False,
    expiry_ms=8_260_000, record_zero_hold=False, record_server_hangup=True, stop_switch_after_sdp=True,
    switch_limit=0, invite_timeout_ms=5000,
)  # fmt: skip


def test_a_call_record_has_the_times_the_vendor_and_both_rates():
    tried = [VendorAttempt(gateway_id=6, gateway="vendor-gw-6", ip="198.51.100.6", status=503)]
    row = msgspec.to_builtins(call_record(
        CALL_STATE, route=ROUTE, answer_ms=1_003_000, stop_ms=1_064_250, ring_ms=1_001_500, tried=tried,
        direction=EndDirection.CALLEE, reason=EndReason.NORMAL_CLEARING, sip_status=200, callee_call_id="leg-b",
        node="node-a",
    ))  # fmt: skip
    assert (row["start_ms"], row["answer_ms"], row["stop_ms"]) == (1_000_000, 1_003_000, 1_064_250)
    assert (row["hold_time_ms"], row["pdd_ms"]) == (61_250, 1_500)
    assert (row["caller_number"], row["callee_number"]) == ("07700900999", "00447700900123")
    assert (row["caller_number_out"], row["callee_number_out"]) == ("447700900999", "0101#447700900123")
    assert (row["routing_gateway_id"], row["vendor_ip"], row["vendor_account_id"]) == (7, "198.51.100.7", 2)
    assert (row["rate_prefix"], row["vendor_rate_prefix"], row["vendor_rate_area"]) == ("44", "447", "UK mobile")
    assert (row["mapping_gateway_id"], row["mapping_gateway_name"]) == (1, "customer-gw-1")
    assert (row["end_direction"], row["end_reason"], row["sip_status"]) == (
        EndDirection.CALLEE,
        "normal_clearing",
        200,
    )
    assert row["vendors_tried"] == [{"gateway_id": 6, "gateway": "vendor-gw-6", "ip": "198.51.100.6", "status": 503}]
    assert (row["caller_call_id"], row["callee_call_id"], row["snapshot_version"]) == ("abc@pbx", "leg-b", 9)


def test_an_unanswered_call_record_has_no_hold_time_and_no_pdd_without_ringing():
    row = call_record(
        CALL_STATE, route=ROUTE, answer_ms=None, stop_ms=1_008_000, ring_ms=None, tried=[], node="node-a",
        direction=EndDirection.CALLEE, reason=EndReason.VENDOR_TIMEOUT, sip_status=408, callee_call_id="",
    )  # fmt: skip
    assert (row.answer_ms, row.hold_time_ms, row.pdd_ms) == (None, 0, None)


def test_a_lone_surrogate_becomes_a_replacement_character_instead_of_failing_the_call():
    from callcore.cdr import dumps, loads

    # msgspec refuses to encode it; the call's state and CDR must still be written.
    text = dumps({"caller_user_agent": "pbx\ud800", "n": 1}, sort_keys=True)
    assert loads(text) == {"caller_user_agent": "pbx\ufffd", "n": 1}
    line = encode_cdr(CdrRecord(call_uuid="u", start_ms=MIN_MS, billing_mode=-1, caller_user_agent="pbx\ud800é"))
    assert decode_cdr(line).caller_user_agent == "pbx\ufffdé"
