"""Calls through the real switch: SIPp customer -> callcore (Kamailio + KEMI) -> SIPp vendors."""

import time
from decimal import Decimal

import pytest

from billing import ingest, lost_calls
from billing.models import CDR, Account, Rate
from billing.rating import hold_seconds
from callcore.contract import HEARTBEAT_INTERVAL_S, BillingMode, EndDirection, decode_answered, pending_debit_field

from .conftest import VENDOR_A, VENDOR_B, cdrs, keys, needs_sip, wait_for_cdrs

pytestmark = [pytest.mark.sip, needs_sip, pytest.mark.django_db]


def assert_nothing_held(client):
    """After the call: no live call registered, no concurrency slot or balance reservation left.

    Only the pending debits (contract.pending) of answered calls whose CDR is in the stream stay held, each
    for exactly the call's last reservation, until an ingest takes the CDR (these tests run none).
    """
    k = keys()
    assert client.hlen(k.live_calls) == 0
    assert client.hlen(k.live_answered) == 0
    held = [key for key in client.scan_iter(k.slots("*", "*")) if client.zcard(key)]
    debits = {pending_debit_field(r["call_uuid"]) for r in cdrs(client) if r.get("answer_ms") is not None}
    for key in client.scan_iter(k.reservations("*")):
        kind = client.type(key)
        if kind == b"hash":
            fields = {f.decode(): int(v.split(b":")[0]) for f, v in client.hgetall(key).items()}
            held += [f"{key.decode()} {f}" for f in fields if f not in debits]
            total = int(client.get(key + b":sum") or 0)
            assert total == sum(fields.values()), "the reservation total is the sum of what is held"
        elif kind == b"zset":
            held += [f"{key.decode()} {m.decode()}" for m in client.zrange(key, 0, -1) if m.decode() not in debits]
    assert held == []


def test_an_answered_call_reaches_the_vendor_and_leaves_its_cdr(callcore, switch_config, sipp, live_redis):
    switch_config.publish()
    sipp.vendor("uas_answer.xml", VENDOR_A, EXPECT=r"^INVITE sip:4420794960@")
    result = sipp.customer("uac_call.xml", "4420794960", hold_ms=1500)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert sipp.wait_vendors() == [0]
    [record] = wait_for_cdrs(live_redis, 1)
    assert record["billing_mode"] == BillingMode.MAPPING_GATEWAY
    assert record["end_reason"] == "normal_clearing"
    assert record["end_direction"] == EndDirection.CALLER
    assert record["routing_gateway_name"] == "Vendor A"
    assert record["account_name"] == "E2E Customer"
    assert record["callee_number"] == "4420794960"
    assert 1400 <= record["hold_time_ms"] <= 4000
    assert record["vendors_tried"] == [
        {"gateway_id": switch_config.route_a.id, "gateway": "Vendor A", "ip": "127.0.0.1", "status": 200}
    ]
    assert record["rate_prefix"] == "44"
    assert_nothing_held(live_redis)


def test_failover_503_goes_to_the_second_vendor(callcore, switch_config, sipp, live_redis):
    switch_config.publish()
    sipp.vendor("uas_fail.xml", VENDOR_A, CODE=503)
    sipp.vendor("uas_answer.xml", VENDOR_B)
    result = sipp.customer("uac_call.xml", "12125550100", hold_ms=500)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert sipp.wait_vendors() == [0, 0]
    [record] = wait_for_cdrs(live_redis, 1)
    assert [(t["gateway"], t["status"]) for t in record["vendors_tried"]] == [("Vendor A", 503), ("Vendor B", 200)]
    assert record["routing_gateway_name"] == "Vendor B"
    assert_nothing_held(live_redis)


def test_a_vendor_that_never_answers_times_out_and_the_next_one_takes_the_call(
    callcore, switch_config, sipp, live_redis
):
    switch_config.set_parameter("SS_SIP_TIMEOUT_INVITE", 2)
    switch_config.publish()
    # Nobody listens on vendor A's port: no provisional answer within 2 s means 408.
    sipp.vendor("uas_answer.xml", VENDOR_B)
    result = sipp.customer("uac_call.xml", "12125550100", hold_ms=200)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    [record] = wait_for_cdrs(live_redis, 1)
    assert [(t["gateway"], t["status"]) for t in record["vendors_tried"]] == [("Vendor A", 408), ("Vendor B", 200)]
    assert 2000 <= record["answer_ms"] - record["start_ms"] < 6000
    assert_nothing_held(live_redis)


def test_all_vendors_failing_gives_the_caller_the_last_answer(callcore, switch_config, sipp, live_redis):
    switch_config.publish()
    sipp.vendor("uas_fail.xml", VENDOR_A, CODE=503)
    sipp.vendor("uas_fail.xml", VENDOR_B, CODE=502)
    result = sipp.customer("uac_reject.xml", "12125550100", CODE=502)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    [record] = wait_for_cdrs(live_redis, 1)
    assert record["end_reason"] == "vendor_failed"
    assert record["end_direction"] == EndDirection.CALLEE
    assert record["sip_status"] == 502
    assert [(t["gateway"], t["status"]) for t in record["vendors_tried"]] == [("Vendor A", 503), ("Vendor B", 502)]
    assert record["hold_time_ms"] == 0
    assert_nothing_held(live_redis)


def test_a_busy_vendor_does_not_fail_over(callcore, switch_config, sipp, live_redis):
    switch_config.publish()
    sipp.vendor("uas_fail.xml", VENDOR_A, CODE=486)
    result = sipp.customer("uac_reject.xml", "12125550100", CODE=486)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    [record] = wait_for_cdrs(live_redis, 1)
    assert record["end_reason"] == "vendor_rejected"
    assert [t["gateway"] for t in record["vendors_tried"]] == ["Vendor A"]


def test_no_failover_after_early_media(callcore, switch_config, sipp, live_redis):
    switch_config.publish()
    early = """<send><![CDATA[
      SIP/2.0 183 Session Progress
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0

    ]]></send>"""
    sipp.vendor("uas_fail.xml", VENDOR_A, CODE=503, EARLY_MEDIA=early)
    # A proxy never relays a 503 upstream (RFC 3261 16.7): the caller hears 500.
    result = sipp.customer("uac_reject.xml", "12125550100", CODE=500)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    [record] = wait_for_cdrs(live_redis, 1)
    assert [t["gateway"] for t in record["vendors_tried"]] == ["Vendor A"]


def test_a_call_from_an_unknown_source_is_illegal(callcore, switch_config, sipp, live_redis):
    switch_config.publish()
    # Challenged like a phone's first INVITE, so a scanner cannot tell an extension from none; recorded.
    result = sipp.customer("uac_reject.xml", "4420794960", source="127.0.0.2", CODE=407)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    [record] = wait_for_cdrs(live_redis, 1)
    assert record["billing_mode"] == BillingMode.ILLEGAL
    assert record["end_reason"] == "illegal_source"
    assert record["caller_ip"] == "127.0.0.2"
    assert record["callee_number"] == "4420794960"
    assert record["caller_number"] == "15551230001"


def test_no_illegal_cdr_when_the_parameter_is_off(callcore, switch_config, sipp, live_redis):
    switch_config.set_parameter("SERVER_BILLING_RECORD_ILLEGAL_CALL", 0)
    switch_config.publish()
    result = sipp.customer("uac_reject.xml", "4420794960", source="127.0.0.2", CODE=407)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    # A legal refusal after it proves the stream is being written, so the absence is real.
    switch_config.gateway.prefix_forbid = ["44"]
    switch_config.gateway.save()
    switch_config.publish()
    result = sipp.customer("uac_reject.xml", "4420794960", CODE=403)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    records = wait_for_cdrs(live_redis, 1)
    assert [r["end_reason"] for r in records] == ["prefix_forbidden"]


def test_a_scanner_gets_no_answer(callcore, switch_config, sipp, live_redis):
    switch_config.publish()
    # A source of its own: the scanner is banned, on every node, for SS_BAN_SECONDS.
    result = sipp.customer("uac_reject.xml", "100", source="127.0.0.66", CODE=403, UA="friendly-scanner", timeout=3)
    assert result.returncode != 0  # nothing came back
    assert live_redis.hget(keys().ban("127.0.0.66"), "cause") == "scanner"
    assert wait_for_cdrs(live_redis, 1, timeout=1) == []
    # Counted, without any other call having to come by for the worker to report it.
    assert int(live_redis.hget(keys().stats, "scanner_dropped") or 0) >= 1


def test_the_vendor_receives_the_transformed_numbers(callcore, switch_config, sipp, live_redis):
    from softswitch_portal.switching.models import CallerNumberPool, NumberTransformRule

    strip = NumberTransformRule.objects.create(name="strip 00", target="callee", match_prefix="00", strip_digits=2)
    switch_config.gateway.callee_transforms.add(strip)
    pool = CallerNumberPool.objects.create(name="pool", numbers=["442030000001"])
    switch_config.route_a.tech_prefix = "7788"
    switch_config.route_a.caller_number_pool = pool
    switch_config.route_a.save()
    switch_config.publish()
    sipp.vendor("uas_answer.xml", VENDOR_A, EXPECT=r"^INVITE sip:77884420794960@.*From: .sip:442030000001@")
    result = sipp.customer("uac_call.xml", "004420794960", hold_ms=200)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert sipp.wait_vendors() == [0]
    [record] = wait_for_cdrs(live_redis, 1)
    assert record["callee_number"] == "004420794960"
    assert record["callee_number_out"] == "77884420794960"
    assert record["caller_number_out"] == "442030000001"


def test_each_vendor_of_a_failover_gets_its_own_caller_number(callcore, switch_config, sipp, live_redis):
    from softswitch_portal.switching.models import CallerNumberPool

    for route, number in ((switch_config.route_a, "442030000001"), (switch_config.route_b, "442030000002")):
        route.caller_number_pool = CallerNumberPool.objects.create(name=f"pool {number}", numbers=[number])
        route.save()
    switch_config.publish()
    sipp.vendor("uas_fail.xml", VENDOR_A, CODE=503, EXPECT=r"^INVITE .*From: .sip:442030000001@")
    # Vendor B sees its own number on the INVITE and on the caller's BYE alike...
    sipp.vendor(
        "uas_answer.xml",
        VENDOR_B,
        EXPECT=r"^INVITE .*From: .sip:442030000002@",
        BYE_EXPECT=r"^BYE .*From: .sip:442030000002@",
    )
    # ... and the caller gets its own From back on the answer.
    result = sipp.customer("uac_call.xml", "12125550100", hold_ms=300, ANSWER_EXPECT=r"From: .sip:15551230001@")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert sipp.wait_vendors() == [0, 0]
    [record] = wait_for_cdrs(live_redis, 1)
    assert [(t["gateway"], t["status"]) for t in record["vendors_tried"]] == [("Vendor A", 503), ("Vendor B", 200)]
    assert record["caller_number_out"] == "442030000002"
    assert_nothing_held(live_redis)


def test_the_vendor_hanging_up_reaches_the_caller_with_its_own_numbers(callcore, switch_config, sipp, live_redis):
    from softswitch_portal.switching.models import CallerNumberPool

    # The vendor knows the caller as the pool's number: its BYE must reach the caller addressed to the
    # caller's own From (the uac module restores it along the recorded route).
    switch_config.route_a.caller_number_pool = CallerNumberPool.objects.create(name="pool", numbers=["442030000001"])
    switch_config.route_a.save()
    switch_config.publish()
    sipp.vendor("uas_hangup.xml", VENDOR_A)
    result = sipp.customer("uac_wait_bye.xml", "12125550100", BYE_EXPECT=r"^BYE .*To: .sip:15551230001@")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert sipp.wait_vendors() == [0]
    [record] = wait_for_cdrs(live_redis, 1)
    assert (record["end_reason"], record["end_direction"]) == ("normal_clearing", EndDirection.CALLEE)
    assert 900 <= record["hold_time_ms"] <= 3000
    assert record["caller_number_out"] == "442030000001"
    assert_nothing_held(live_redis)


def call_up_to_a_2s_limit(switch_config, sipp, live_redis, customer_scenario):
    """One answered call on a gateway with a 2 s conversation limit; its CDR once both sides got their BYE."""
    switch_config.gateway.conversation_limit = 2
    switch_config.gateway.save()
    switch_config.publish()
    sipp.vendor("uas_answer.xml", VENDOR_A)
    result = sipp.customer(customer_scenario, "12125550100", timeout=20)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert sipp.wait_vendors() == [0]  # the vendor got its BYE too: nothing stays up on its side
    [record] = wait_for_cdrs(live_redis, 1)
    return record


def test_the_switch_hangs_up_at_the_conversation_limit(callcore, switch_config, sipp, live_redis):
    record = call_up_to_a_2s_limit(switch_config, sipp, live_redis, "uac_wait_bye.xml")
    assert record["end_direction"] == EndDirection.SERVER
    assert record["end_reason"] == "max_duration"
    # Kamailio's dialog timer counts whole seconds from the answer: a 2 s limit ends the call 1-2 s
    # after it, depending on where in its second the answer fell (seen: 1.08 s to 2.04 s).
    assert 1000 <= record["hold_time_ms"] <= 3500


def test_a_reinvite_follows_the_dialog_and_does_not_extend_the_limit(callcore, switch_config, sipp, live_redis):
    # A re-INVITE is relayed to the vendor and its answer back (kamailio.cfg.tmpl's request_route, not
    # Python); it must not re-arm the dialog's timer, or a caller could hold a call past its limit
    # (past what its balance pays for) by re-INVITEing.
    switch_config.gateway.conversation_limit = 6
    switch_config.gateway.save()
    switch_config.publish()
    # The caller's new SDP (version ...638, PCMA) reaches the vendor.
    sipp.vendor("uas_reinvite.xml", VENDOR_A, REINVITE_EXPECT=r"CSeq: 2 INVITE.*2353687638.*PCMA")
    result = sipp.customer("uac_reinvite.xml", "12125550100", timeout=20, REINVITE_MS=3500)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert sipp.wait_vendors() == [0]
    [record] = wait_for_cdrs(live_redis, 1)
    assert record["end_reason"] == "max_duration"
    assert record["end_direction"] == EndDirection.SERVER
    # The 6 s limit ends the call 5-6 s after the answer (whole-second timer); re-armed by the re-INVITE
    # at 3.5 s it would end 8.5-9.5 s after it. The gap leaves a loaded machine's timer 1.5 s of slack (a
    # 3 s limit left 0.3 s, and a run ended at 3.4 s).
    assert 4500 <= record["hold_time_ms"] <= 7500
    assert_nothing_held(live_redis)


def test_a_caller_that_vanishes_is_hung_up_by_the_keepalives(callcore, switch_config, sipp, live_redis):
    # A lost BYE (or a crashed customer switch) would otherwise keep the call up and charging until its
    # max duration (2 hours by default). In-dialog OPTIONS every 30 s (Kamailio's least) find it out.
    switch_config.publish()
    sipp.vendor("uas_keepalive.xml", VENDOR_A, timeout=90)  # answers the keep-alives, then gets the BYE
    result = sipp.customer("uac_vanish.xml", "12125550100")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert sipp.wait_vendors(timeout=90) == [0]
    [record] = wait_for_cdrs(live_redis, 1)
    assert record["end_reason"] == "keepalive_failed"
    assert record["end_direction"] == EndDirection.SERVER
    # First OPTIONS 30-31 s after the answer, its timeout 4 s later, then the module's 10 s grace.
    assert 30_000 <= record["hold_time_ms"] <= 60_000
    assert_nothing_held(live_redis)


def a_call_talking_when_callcore_dies(callcore, switch_config, sipp, live_redis):
    """An answered call, up for a few heartbeats, then every Kamailio process killed: (its kept answer, the
    node's last heartbeat), both as the switch left them in Redis."""
    # 6.00/min and 3.00/min by the second: every second talked is 0.10 to the customer and 0.05 to the vendor.
    for table, price in (("Retail", "6.0000"), ("Cost", "3.0000")):
        Rate.objects.filter(rate_table__name=table, prefix="1").update(
            price_per_minute=Decimal(price), first_period=1, next_period=1
        )
    switch_config.publish()
    sipp.vendor("uas_answer.xml", VENDOR_A)
    sipp.customer("uac_call.xml", "12125550100", hold_ms=30_000, background=True)
    k = keys()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not live_redis.hlen(k.live_answered):
        time.sleep(0.1)
    [answered] = live_redis.hvals(k.live_answered)
    time.sleep(2 * HEARTBEAT_INTERVAL_S + 1)  # talking, heartbeats after the answer
    callcore["crash"]()
    return decode_answered(answered), int(live_redis.hget(k.heartbeats, "e2e"))


def ingested(record):
    ingester = ingest.Ingester("e2e", batch_size=100, block_ms=0)
    ingester.run(drain=True)
    ingester.client.close()
    return CDR.objects.get(call_uuid=record["call_uuid"])


def assert_charged_up_to_the_heartbeat(record, answered, beat, switch_config):
    assert (record["end_reason"], record["end_direction"]) == ("switch_restart", EndDirection.SERVER)
    assert (record["node"], record["account_id"], record["estimated"]) == ("e2e", switch_config.customer.id, True)
    # From the answer to the node's last heartbeat: time the call surely had, no more.
    assert (record["answer_ms"], record["stop_ms"]) == (answered.answer_ms, beat)
    assert record["hold_time_ms"] == beat - answered.answer_ms > 0
    cdr = ingested(record)
    # A remainder under the hold-time precision (50 ms by default) is not billed: the beat may fall just past a second.
    seconds = hold_seconds(record["hold_time_ms"])
    assert (cdr.fee_time, cdr.estimated, cdr.routing_gateway_id) == (seconds, True, switch_config.route_a.id)
    assert (cdr.fee, cdr.vendor_cost) == (Decimal("0.10") * seconds, Decimal("0.05") * seconds)
    assert Account.objects.get(pk=switch_config.customer.pk).balance == Decimal("50") - cdr.fee
    assert Account.objects.get(pk=switch_config.vendor_a.pk).balance == cdr.vendor_cost


@pytest.mark.django_db(transaction=True)  # the CDR ingest commits its own transactions
def test_the_calls_a_crash_lost_are_released_and_recorded_when_callcore_starts_again(
    callcore, switch_config, sipp, live_redis
):
    # Kamailio keeps its dialogs in memory: after a crash nothing ends these calls, so their slots
    # would stay taken until their expiry (max duration + 60 s) and they would have no CDR; the vendor
    # bills us for the talk, so the customer is charged for it, up to the node's last heartbeat.
    answered, beat = a_call_talking_when_callcore_dies(callcore, switch_config, sipp, live_redis)
    assert cdrs(live_redis) == []
    callcore["start"]()
    [record] = wait_for_cdrs(live_redis, 1)
    assert_nothing_held(live_redis)
    assert_charged_up_to_the_heartbeat(record, answered, beat, switch_config)


@pytest.mark.django_db(transaction=True)
def test_the_calls_of_a_node_that_never_comes_back_are_recorded_by_the_worker(
    callcore, switch_config, sipp, live_redis
):
    answered, beat = a_call_talking_when_callcore_dies(callcore, switch_config, sipp, live_redis)
    try:
        # Not yet silent for the threshold: the node may be restarting, its calls are its own to record.
        assert lost_calls.release_gone_nodes(now_ms=beat + lost_calls.STALE_AFTER_S * 1000) == 0
        # Silent past it (the clock moved on rather than the test waiting a minute): the worker records them.
        assert lost_calls.release_gone_nodes(now_ms=beat + lost_calls.STALE_AFTER_S * 1000 + 1) == 1
        [record] = cdrs(live_redis)
        assert_nothing_held(live_redis)
    finally:
        callcore["start"]()
    # The node coming back after all (it released what it found before answering) finds nothing left: one CDR.
    assert [r["call_uuid"] for r in cdrs(live_redis)] == [record["call_uuid"]]
    assert_charged_up_to_the_heartbeat(record, answered, beat, switch_config)


def test_an_answer_the_caller_never_acknowledges_is_ended_and_not_billed(callcore, switch_config, sipp, live_redis):
    # The caller never got the 200 OK (or never sent its ACK): whatever ends the dialog, the call
    # was never established for the caller and must not be charged as a conversation.
    record = call_up_to_a_2s_limit(switch_config, sipp, live_redis, "uac_no_ack.xml")
    assert record["end_reason"] == "caller_no_ack"
    assert record["end_direction"] == EndDirection.SERVER
    assert record["answer_ms"] is None and record["hold_time_ms"] == 0
    assert [(t["gateway"], t["status"]) for t in record["vendors_tried"]] == [("Vendor A", 200)]
    assert_nothing_held(live_redis)


def test_a_caller_cancel_ends_the_attempt(callcore, switch_config, sipp, live_redis):
    switch_config.publish()
    sipp.vendor("uas_ring.xml", VENDOR_A)
    result = sipp.customer("uac_cancel.xml", "12125550100")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert sipp.wait_vendors() == [0]
    [record] = wait_for_cdrs(live_redis, 1)
    assert record["end_reason"] == "caller_cancel"
    assert record["end_direction"] == EndDirection.CALLER
    assert [t["gateway"] for t in record["vendors_tried"]] == ["Vendor A"]
    assert_nothing_held(live_redis)


def test_a_dynamically_blacklisted_caller_is_refused(callcore, switch_config, sipp, live_redis):
    from security.models import DynamicBlacklistEntry

    switch_config.publish()
    entry = DynamicBlacklistEntry.objects.create(number="15551230001", reason="calls per minute")
    from security.dynamic_blacklist import sync_entry

    sync_entry(entry)  # the test's transaction never commits, so sync by hand
    result = sipp.customer("uac_reject.xml", "12125550100", CODE=403)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    [record] = wait_for_cdrs(live_redis, 1)
    assert record["end_reason"] == "dynamic_blacklisted"


def test_the_vendor_never_sees_the_customers_address(callcore, switch_config, sipp, live_redis):
    switch_config.gateway.remote_ips = ["127.0.0.3"]
    switch_config.gateway.save()
    switch_config.publish()
    sipp.vendor("uas_answer.xml", VENDOR_A)
    result = sipp.customer("uac_call.xml", "12125550100", source="127.0.0.3", hold_ms=200)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert sipp.wait_vendors() == [0]
    seen_by_vendor = "\n".join(p.read_text() for p in sipp.tmp_path.glob("vendor-*.log"))
    assert "INVITE sip:" in seen_by_vendor and "BYE sip:" in seen_by_vendor
    topology = [
        line for line in seen_by_vendor.splitlines()
        if line.split(":", 1)[0].strip().lower() in ("via", "v", "contact", "m", "record-route", "route")
    ]  # fmt: skip
    assert any(line.lower().startswith("via") for line in topology)
    assert [line for line in topology if "127.0.0.3" in line] == []


def test_a_call_over_tcp_is_relayed_to_a_udp_vendor(callcore, switch_config, sipp, live_redis):
    switch_config.publish()
    sipp.vendor("uas_answer.xml", VENDOR_A)
    result = sipp.customer("uac_call.xml", "12125550100", hold_ms=300, extra=("-t", "t1"))
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert sipp.wait_vendors() == [0]
    [record] = wait_for_cdrs(live_redis, 1)
    assert record["end_reason"] == "normal_clearing"
    assert "SIP/2.0/TCP" in result.log.read_text()


def test_hangups_and_new_calls_go_on_after_redis_drops_the_switch_s_connections(
    callcore, switch_config, sipp, live_redis
):
    # Redis restarted (or dropped its clients) while a call was up. The hang-up's teardown, which a
    # SIP worker sends without waiting, must not be written into the dead connection and lost with it
    # until that worker's next call, and the next calls must not be refused for a Redis that is back.
    # Nine calls from one caller to one number are the malicious-caller rule's pattern, not this test's subject.
    switch_config.set_parameter("SS_FRAUD_MALICIOUS_CALLER_ENABLED", 0)
    switch_config.publish()
    sipp.vendor("uas_answer.xml", VENDOR_A, calls=9)
    caller = sipp.customer("uac_call.xml", "12125550100", hold_ms=3000, background=True)
    registry = keys().live_calls
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not live_redis.hlen(registry):
        time.sleep(0.1)
    assert live_redis.hlen(registry) == 1
    time.sleep(1)
    switch = [c for c in live_redis.client_list() if c["name"] == "callcore:e2e"]
    assert switch, "callcore names its Redis connections after its node"
    for connection in switch:
        live_redis.client_kill_filter(_id=connection["id"])
    assert caller.wait(timeout=30) == 0
    [record] = wait_for_cdrs(live_redis, 1)
    assert record["end_reason"] == "normal_clearing"
    assert 2500 <= record["hold_time_ms"] <= 6000
    assert_nothing_held(live_redis)
    # Every worker had its connection dropped: each call below reaches one of them.
    result = sipp.customer("uac_call.xml", "12125550100", calls=8, rate=20, hold_ms=100)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert sipp.wait_vendors() == [0, 0]  # the vendor and the first caller
    records = wait_for_cdrs(live_redis, 9)
    assert [r["end_reason"] for r in records[1:]] == ["normal_clearing"] * 8
    assert_nothing_held(live_redis)
