"""Media through the switch: two pjsua2 agents talk through the call core, with the media proxy (rtpengine) and
without, and each hears the other's tone; a vendor that answers and sends only silence is heard as no audio; a
call that carries no RTP at all is ended by the media timeout, BYE both ways; the re-INVITEs of a proxied call,
from either side and with a late offer, keep both sides on the proxy's addresses."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest

from callcore import media
from callcore.contract import BillingMode, EndDirection
from softswitch_portal.switching.testcalls import audio

from .conftest import ROOT, RTPENGINE_NG_PORT, SWITCH_PORT, VENDOR_A, audio_vendor, needs_sip, wait_for_cdrs

pytestmark = [pytest.mark.sip, needs_sip, pytest.mark.django_db(transaction=True)]

CALLER_HZ, VENDOR_HZ = 1000, 700
PROXY_PORTS = range(20000, 21000)  # rtpengine's relay ports here: below the ephemeral ports the agents get


@pytest.fixture(scope="module")
def rtpengine(tmp_path_factory):
    """The media proxy on the call core's control port, as scripts/rtpengine.sh runs it."""
    state = tmp_path_factory.mktemp("rtpengine")
    process = subprocess.Popen(
        ["rtpengine", "--config-file=none", "--foreground", "--log-stderr", "--table=-1", "--interface=127.0.0.1",
         f"--listen-ng=127.0.0.1:{RTPENGINE_NG_PORT}", f"--port-min={PROXY_PORTS.start}",
         f"--port-max={PROXY_PORTS.stop - 1}", "--timeout=86400", "--delete-delay=0", f"--pidfile={state}/pid"],
        stdout=subprocess.DEVNULL, stderr=open(state / "log", "w"),  # noqa: SIM115 - the process holds it
    )  # fmt: skip
    client = media.NgClient(f"127.0.0.1:{RTPENGINE_NG_PORT}", timeout=0.2)
    for _ in range(50):
        try:
            client.command("ping")
            break
        except media.MediaProxyError:
            time.sleep(0.1)
    time.sleep(4.5)  # the call core's rtpengine module asks again 2 s after finding it down (slack for a busy host)
    yield client
    client.close()
    process.terminate()
    process.wait(timeout=10)


def vendor_agent(tmp_path, mode, calls=1, timeout=40):
    return audio_vendor(tmp_path, VENDOR_A, mode, VENDOR_HZ, calls=calls, timeout=timeout)


def customer_call(tmp_path, callee="12125550100", talk=3.0):
    play = audio.write_tone(tmp_path / "customer-tone.wav", seconds=2, hz=CALLER_HZ)
    result = subprocess.run(
        [sys.executable, "-m", "softswitch_portal.switching.testcalls.agent", f"sip:{callee}@127.0.0.1:{SWITCH_PORT}",
         str(play), str(tmp_path / "customer-heard.wav"), "--talk", str(talk)],
        cwd=ROOT, capture_output=True, timeout=60,
    )  # fmt: skip
    return json.loads(result.stdout.decode().strip().splitlines()[-1])


def vendor_results(process):
    out, _ = process.communicate(timeout=60)
    return json.loads(out.decode().strip().splitlines()[-1])


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def talk_through_the_switch(tmp_path, switch_config, mode):
    switch_config.route_a.media_proxy = mode
    switch_config.route_a.save()
    switch_config.publish()
    vendor = vendor_agent(tmp_path, "tone")
    customer = customer_call(tmp_path)
    [answered] = vendor_results(vendor)
    return customer, answered


def test_a_call_through_the_media_proxy_carries_audio_both_ways(callcore, rtpengine, switch_config, live_redis,
                                                               tmp_path):  # fmt: skip
    customer, vendor = talk_through_the_switch(tmp_path, switch_config, "always")
    assert customer["status"] == 200 and vendor["answered"]
    # Each side sent its RTP to the proxy, not to the other: the peers never see each other's addresses.
    assert port_of(customer["remote_rtp"]) in PROXY_PORTS
    assert port_of(vendor["remote_rtp"]) in PROXY_PORTS
    assert customer["rtp_rx_packets"] > 50 and vendor["rtp_rx_packets"] > 50
    # Each heard the other's tone.
    assert audio.analyse(tmp_path / "customer-heard.wav", VENDOR_HZ).tone
    assert audio.analyse(tmp_path / "call-0.wav", CALLER_HZ).tone
    [record] = wait_for_cdrs(live_redis, 1)
    assert record["end_reason"] == "normal_clearing"
    # Deleted from the proxy at the call's end.
    deadline = time.monotonic() + 5
    while rtpengine.call_ids() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rtpengine.call_ids() == []


def test_with_the_proxy_off_media_flows_directly_and_carries_audio_both_ways(callcore, rtpengine, switch_config,
                                                                            live_redis, tmp_path):  # fmt: skip
    customer, vendor = talk_through_the_switch(tmp_path, switch_config, "off")
    assert customer["status"] == 200 and vendor["answered"]
    assert port_of(customer["remote_rtp"]) not in PROXY_PORTS
    assert port_of(vendor["remote_rtp"]) not in PROXY_PORTS
    assert audio.analyse(tmp_path / "customer-heard.wav", VENDOR_HZ).tone
    assert audio.analyse(tmp_path / "call-0.wav", CALLER_HZ).tone


def test_a_vendor_that_answers_without_audio_is_heard_as_no_audio(callcore, rtpengine, switch_config, live_redis,
                                                                 tmp_path):  # fmt: skip
    switch_config.route_a.media_proxy = "always"
    switch_config.route_a.save()
    switch_config.publish()
    vendor = vendor_agent(tmp_path, "silent")
    customer = customer_call(tmp_path)
    vendor_results(vendor)
    assert customer["status"] == 200, customer
    heard = audio.analyse(tmp_path / "customer-heard.wav", VENDOR_HZ)
    assert heard.verdict == "no audio"
    # While the vendor heard the customer: one-way audio, told apart.
    assert audio.analyse(tmp_path / "call-0.wav", CALLER_HZ).tone


def test_a_call_without_media_is_ended_by_the_media_timeout(callcore, rtpengine, switch_config, sipp, live_redis):
    switch_config.set_parameter("SS_MEDIA_TIMEOUT_SECONDS", 3)
    switch_config.route_a.media_proxy = "always"
    switch_config.route_a.save()
    switch_config.publish()
    try:
        # SIPp's customer and vendor send no RTP: the call is up and silent both ways.
        sipp.vendor("uas_answer.xml", VENDOR_A)
        result = sipp.customer("uac_wait_bye.xml", "12125550100", timeout=30)
        assert result.returncode == 0, result.stderr.decode()[-2000:]
        assert sipp.wait_vendors() == [0]  # each side got the switch's BYE
        [record] = wait_for_cdrs(live_redis, 1)
        assert (record["end_reason"], record["end_direction"]) == ("media_timeout", 2)
        assert 3000 <= record["stop_ms"] - record["answer_ms"] < 15000
    finally:
        switch_config.set_parameter("SS_MEDIA_TIMEOUT_SECONDS", 0)
        switch_config.publish()


# SIPp's customer and vendor announce media on addresses of their own, so a c= line tells who wrote it: the
# proxy's interface is 127.0.0.1 (the rtpengine fixture's).
CUSTOMER_MEDIA, VENDOR_MEDIA, PROXY_MEDIA = "127.0.0.5", "127.0.0.6", "127.0.0.1"


def sip_messages(log, direction):
    """The SIP messages a SIPp peer logged with -trace_msg, "received" or "sent", in order."""
    messages = []
    for entry in re.split(r"^-{20,}.*$", log.read_text(errors="replace"), flags=re.MULTILINE):
        head, _, message = entry.strip().partition("\n")
        if f"message {direction}" in head:
            messages.append(message.strip())
    return messages


def sdp(messages, first_line, cseq):
    """The media address, port and payload types of the SDP in the message of ``cseq`` ("2 INVITE") whose first
    line starts with ``first_line``."""
    for message in messages:
        if message.startswith(first_line) and re.search(rf"^CSeq:\s*{cseq}\s*$", message, re.MULTILINE):
            connection = re.search(r"^c=IN IP4 (\S+)", message, re.MULTILINE)
            medium = re.search(r"^m=audio (\d+) RTP/AVP ([\d ]+)$", message, re.MULTILINE)
            assert connection and medium, f"no SDP in {first_line} ({cseq}):\n{message}"
            return connection.group(1), int(medium.group(1)), medium.group(2).split()
    raise AssertionError(f"no {first_line} ({cseq}) among {[m.splitlines()[0] for m in messages]}")


def vendor_log(sipp):
    [log] = sipp.tmp_path.glob(f"vendor-{VENDOR_A}-*.log")
    return log


def assert_recorded(record, switch_config, end):
    """The CDR of an answered call on vendor A, billed to the customer's trunk, ended as ``end``."""
    assert (record["end_reason"], record["end_direction"]) == end
    assert record["billing_mode"] == BillingMode.MAPPING_GATEWAY
    assert record["account_name"] == "E2E Customer"
    assert record["vendors_tried"] == [
        {"gateway_id": switch_config.route_a.id, "gateway": "Vendor A", "ip": "127.0.0.1", "status": 200}
    ]
    assert record["answer_ms"] is not None and record["hold_time_ms"] > 0
    assert record["rate_prefix"] == "1"


def wait_until_deleted(rtpengine):
    deadline = time.monotonic() + 5
    while rtpengine.call_ids() and time.monotonic() < deadline:
        time.sleep(0.1)
    return rtpengine.call_ids()


@pytest.mark.parametrize("mode", ["always", "off"])
def test_a_customer_re_invite_keeps_both_sides_on_the_proxy(callcore, rtpengine, switch_config, sipp, live_redis,
                                                             mode):  # fmt: skip
    """The re-INVITE (new SDP version, PCMA) is relayed natively (kamailio.cfg.tmpl's IN_DIALOG): proxied, the
    vendor must get the proxy's address in it and the customer the proxy's in its 200, as in the first offer and
    answer; not proxied, each gets the other's own SDP as before."""
    switch_config.gateway.conversation_limit = 3
    switch_config.gateway.save()
    switch_config.route_a.media_proxy = mode
    switch_config.route_a.save()
    switch_config.publish()
    sipp.vendor("uas_reinvite.xml", VENDOR_A, REINVITE_EXPECT=r"CSeq: 2 INVITE", extra=("-mi", VENDOR_MEDIA))
    result = sipp.customer("uac_reinvite.xml", "12125550100", timeout=20, REINVITE_MS=1000,
                           extra=("-mi", CUSTOMER_MEDIA))  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert sipp.wait_vendors() == [0]

    to_vendor, to_customer = sip_messages(vendor_log(sipp), "received"), sip_messages(result.log, "received")
    customer_sent, vendor_sent = sip_messages(result.log, "sent"), sip_messages(vendor_log(sipp), "sent")
    _, customer_port, _ = sdp(customer_sent, "INVITE", "2 INVITE")
    _, vendor_port, _ = sdp(vendor_sent, "SIP/2.0 200", "2 INVITE")
    offer, first_offer = sdp(to_vendor, "INVITE", "2 INVITE"), sdp(to_vendor, "INVITE", "1 INVITE")
    answer, first_answer = sdp(to_customer, "SIP/2.0 200", "2 INVITE"), sdp(to_customer, "SIP/2.0 200", "1 INVITE")
    assert offer[2] == answer[2] == ["8"]  # the new SDP (PCMA) went each way
    if mode == "always":
        # The proxy's address and its port for each side, the same as the call's first offer and answer got:
        # rtpengine took the re-INVITE as this call's, not as a new one with ports of its own.
        assert (offer[0], answer[0]) == (PROXY_MEDIA, PROXY_MEDIA)
        assert offer[1] in PROXY_PORTS and answer[1] in PROXY_PORTS
        assert (offer[1], answer[1]) == (first_offer[1], first_answer[1])
    else:
        assert offer[:2] == (CUSTOMER_MEDIA, customer_port)
        assert answer[:2] == (VENDOR_MEDIA, vendor_port)

    # The call ends and is recorded as without a re-INVITE: answered on vendor A, cut at its limit.
    [record] = wait_for_cdrs(live_redis, 1)
    assert_recorded(record, switch_config, ("max_duration", EndDirection.SERVER))
    assert wait_until_deleted(rtpengine) == []


def test_a_vendor_re_invite_and_a_late_offer_keep_both_sides_on_the_proxy(callcore, rtpengine, switch_config, sipp,
                                                                         live_redis):  # fmt: skip
    """The vendor's re-INVITE carries the dialog's tags the other way round, and a re-INVITE without SDP has its
    offer in the 200 and its answer in the ACK: rtpengine must still find the call and each side's ports."""
    switch_config.route_a.media_proxy = "always"
    switch_config.route_a.save()
    switch_config.publish()
    sipp.vendor("uas_reoffers.xml", VENDOR_A, REINVITE_MS=500, extra=("-mi", VENDOR_MEDIA))
    result = sipp.customer("uac_reoffers.xml", "12125550100", timeout=20, HANGUP_MS=500,
                           extra=("-mi", CUSTOMER_MEDIA))  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert sipp.wait_vendors() == [0]

    to_vendor, to_customer = sip_messages(vendor_log(sipp), "received"), sip_messages(result.log, "received")
    toward_vendor = sdp(to_vendor, "INVITE", "1 INVITE")[:2]  # the proxy's port for the vendor, from the start
    toward_customer = sdp(to_customer, "SIP/2.0 200", "1 INVITE")[:2]
    assert toward_vendor[0] == toward_customer[0] == PROXY_MEDIA
    # The vendor's re-INVITE (PCMA) reaches the customer from the proxy, and the customer's answer the vendor.
    vendor_offer = sdp(to_customer, "INVITE", "1 INVITE")
    customer_answer = sdp(to_vendor, "SIP/2.0 200", "1 INVITE")
    assert (vendor_offer[:2], vendor_offer[2]) == (toward_customer, ["8"])
    assert (customer_answer[:2], customer_answer[2]) == (toward_vendor, ["8"])
    # The late offer: the vendor's 200 reaches the customer from the proxy, and the answer in the ACK the vendor.
    late_offer = sdp(to_customer, "SIP/2.0 200", "2 INVITE")
    late_answer = sdp(to_vendor, "ACK", "2 ACK")
    assert (late_offer[:2], late_offer[2]) == (toward_customer, ["0", "8"])
    assert (late_answer[:2], late_answer[2]) == (toward_vendor, ["0"])

    [record] = wait_for_cdrs(live_redis, 1)
    assert_recorded(record, switch_config, ("normal_clearing", EndDirection.CALLER))
    assert wait_until_deleted(rtpengine) == []


@pytest.mark.parametrize("mode", ["always", "off"])
def test_a_late_offer_call_is_relayed_through_the_proxy(callcore, rtpengine, switch_config, sipp, live_redis, mode):
    """An INVITE without SDP: the vendor's 200 carries the offer and the caller's ACK the answer. Proxied, each
    side gets the proxy's address; not proxied, the other side's own, as before."""
    switch_config.route_a.media_proxy = mode
    switch_config.route_a.save()
    switch_config.publish()
    sipp.vendor("uas_answer.xml", VENDOR_A, extra=("-mi", VENDOR_MEDIA))
    result = sipp.customer("uac_late_offer.xml", "12125550100", hold_ms=500, extra=("-mi", CUSTOMER_MEDIA))
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert sipp.wait_vendors() == [0]

    to_vendor, to_customer = sip_messages(vendor_log(sipp), "received"), sip_messages(result.log, "received")
    offer, answer = sdp(to_customer, "SIP/2.0 200", "1 INVITE"), sdp(to_vendor, "ACK", "1 ACK")
    if mode == "always":
        assert (offer[0], answer[0]) == (PROXY_MEDIA, PROXY_MEDIA)
        assert offer[1] in PROXY_PORTS and answer[1] in PROXY_PORTS
    else:
        assert (offer[0], answer[0]) == (VENDOR_MEDIA, CUSTOMER_MEDIA)
    [record] = wait_for_cdrs(live_redis, 1)
    assert_recorded(record, switch_config, ("normal_clearing", EndDirection.CALLER))
    assert wait_until_deleted(rtpengine) == []
