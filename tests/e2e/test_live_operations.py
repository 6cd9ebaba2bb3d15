"""Live operations end to end: calls held by SIPp on two call-core nodes, seen on the current-calls page and
disconnected through the portal (BYE both ways, an operator_disconnect CDR naming who did it); a phone's
registration seen on the registered-phones page."""

import time

import pytest
from django.urls import reverse

from billing import ingest
from billing.models import CDR
from callcore.contract import EndDirection, decode_answered

from .conftest import SECOND_SWITCH_PORT, SWITCH_PORT, VENDOR_A, keys, needs_sip, wait_for_cdrs

# The CDR ingest commits its own transactions.
pytestmark = [pytest.mark.sip, needs_sip, pytest.mark.django_db(transaction=True)]


def ingest_the_stream():
    ingester = ingest.Ingester("e2e", batch_size=100, block_ms=0)
    ingester.run(drain=True)
    ingester.client.close()


def wait_answered(client, count, timeout=15):
    """The live calls the current-calls API lists as answered, once there are ``count``."""
    deadline = time.monotonic() + timeout
    while True:
        rows = client.get(reverse("live-api:livecall-list"), {"state": "answered"}).json()["results"]
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


@pytest.fixture
def operator_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("alice", "alice@example.com", "pw-not-real-42"))
    return client


def test_a_call_held_on_each_of_two_nodes_is_ended_from_the_portal_and_its_cdr_says_who(
    callcore, second_callcore, switch_config, sipp, live_redis, operator_client
):
    switch_config.publish()
    sipp.vendor("uas_answer.xml", VENDOR_A, calls=2)
    held = [
        sipp.customer("uac_wait_bye.xml", "12125550100", port=port, background=True, timeout=40)
        for port in (SWITCH_PORT, SECOND_SWITCH_PORT)
    ]
    calls = wait_answered(operator_client, 2)
    assert sorted(c["node"] for c in calls) == ["e2e", "e2e-2"], calls
    page = operator_client.get(reverse("live:current_calls")).content.decode()
    assert 'data-testid="live-count">2<' in page and "E2E trunk" in page and "Vendor A" in page

    for call in calls:
        response = operator_client.post(reverse("live:disconnect"), {"call_id": call["call_id"]}, follow=True)
        assert f"Asked {call['node']} to end the call" in response.content.decode()

    # Each node's grant timer serves its own requests: BYE to both sides, and both SIPp ends see theirs.
    assert [process.wait(timeout=30) for process in held] == [0, 0]
    assert sipp.wait_vendors() == [0, 0, 0]
    records = wait_for_cdrs(live_redis, 2)
    assert {(r["node"], r["end_reason"], r["end_direction"], r["disconnected_by"]) for r in records} == {
        ("e2e", "operator_disconnect", EndDirection.SERVER, "portal:alice"),
        ("e2e-2", "operator_disconnect", EndDirection.SERVER, "portal:alice"),
    }
    ingest_the_stream()
    stored = CDR.objects.filter(call_uuid__in=[r["call_uuid"] for r in records])
    assert sorted(stored.values_list("end_reason", "end_direction", "disconnected_by", "node")) == [
        ("operator_disconnect", 2, "portal:alice", "e2e"),
        ("operator_disconnect", 2, "portal:alice", "e2e-2"),
    ]
    assert all(cdr.hold_time_ms > 0 for cdr in stored)
    assert live_redis.hlen(keys().live_calls) == 0
    detail = operator_client.get(reverse("billing:cdr", args=[stored[0].pk])).content.decode()
    assert "portal:alice" in detail


def kamailio_core_hash(text: str, size: int) -> int:
    """Kamailio's core_hash (src/core/hashes.h), by which its dialog module picks a call's hash entry."""
    data, mask, h, i = text.encode(), 0xFFFFFFFF, 0, 0
    while i <= len(data) - 4:
        v = (data[i] << 24) + (data[i + 1] << 16) + (data[i + 2] << 8) + data[i + 3]
        h, i = (h + (v ^ (v >> 3))) & mask, i + 4
    v = 0
    for byte in data[i:]:
        v = ((v << 8) + byte) & mask
    h = (h + (v ^ (v >> 3))) & mask
    h = ((h + (h >> 11)) + ((h >> 13) + (h >> 23))) & mask
    return h & (size - 1)


def test_a_call_in_the_dialog_tables_first_entry_is_ended_on_request_too(
    callcore, switch_config, sipp, live_redis, operator_client
):
    # The dialog module (hash_size 4096) files a call under entry core_hash(Call-ID) & 4095: entry 0 is a
    # number like any other, once kept as "no dialog" and then never ended on request.
    call_id = next(c for c in (f"slot-{n}@e2e" for n in range(1_000_000)) if kamailio_core_hash(c, 4096) == 0)
    switch_config.publish()
    sipp.vendor("uas_answer.xml", VENDOR_A)
    held = sipp.customer("uac_wait_bye.xml", "12125550100", background=True, timeout=40, extra=("-cid_str", call_id))
    [call] = wait_answered(operator_client, 1)
    assert call["call_id"] == call_id
    assert decode_answered(live_redis.hget(keys().live_answered, call_id)).h_entry == 0
    operator_client.post(reverse("live:disconnect"), {"call_id": call_id})
    assert held.wait(timeout=30) == 0  # the switch's BYE reached the customer
    assert sipp.wait_vendors() == [0, 0]
    [record] = wait_for_cdrs(live_redis, 1)
    assert (record["end_reason"], record["disconnected_by"]) == ("operator_disconnect", "portal:alice")


def test_a_phone_registered_through_the_second_node_is_listed_with_its_contact(
    second_callcore, switch_config, sipp, live_redis, operator_client
):
    from softswitch_portal.switching.models import Phone

    Phone.objects.create(username="2001", password="correct-horse-9", account=switch_config.customer)
    switch_config.publish()
    live_redis.delete(keys().registrations, keys().registrations_expiry)
    result = sipp.customer("uac_register.xml", "2001", source="127.0.0.2", CODE=200, port=SECOND_SWITCH_PORT,
                           extra=("-au", "2001", "-ap", "correct-horse-9"))  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    deadline = time.monotonic() + 5
    while not live_redis.hlen(keys().registrations) and time.monotonic() < deadline:
        time.sleep(0.1)
    page = operator_client.get(reverse("live:registrations")).content.decode()
    assert "sip:2001@127.0.0.2:" in page and "e2e-2" in page and "E2E Customer" in page
    assert ">1</strong> contact registered" in page


def test_a_call_still_ringing_is_cancelled_from_the_portal_and_its_cdr_says_who(
    callcore, switch_config, sipp, live_redis, operator_client
):
    switch_config.publish()
    sipp.vendor("uas_ring.xml", VENDOR_A)  # rings until the switch's CANCEL, then 487
    ringing = sipp.customer("uac_reject.xml", "12125550100", CODE=487, background=True, timeout=30)
    deadline = time.monotonic() + 15
    rows = []
    while not rows and time.monotonic() < deadline:
        rows = operator_client.get(reverse("live-api:livecall-list"), {"state": "setup"}).json()["results"]
        time.sleep(0.2)
    [call] = rows
    time.sleep(0.5)  # ringing at the vendor, not just sent
    response = operator_client.post(reverse("live:disconnect"), {"call_id": call["call_id"]}, follow=True)
    assert f"Asked {call['node']} to end the call" in response.content.decode()

    # CANCEL to the vendor, its 487 relayed to the caller: both SIPp ends complete their scenarios.
    assert ringing.wait(timeout=30) == 0
    assert sipp.wait_vendors() == [0, 0]
    [record] = wait_for_cdrs(live_redis, 1)
    assert (record["end_reason"], record["end_direction"], record["disconnected_by"]) == (
        "operator_disconnect", EndDirection.SERVER, "portal:alice",
    )  # fmt: skip
    assert record["answer_ms"] is None and record["hold_time_ms"] == 0
    assert [(t["gateway"], t["status"]) for t in record["vendors_tried"]] == [("Vendor A", 487)]
    assert live_redis.hlen(keys().live_calls) == 0
