"""Media through the switch: two pjsua2 agents talk through the call core, with the media proxy (rtpengine) and
without, and each hears the other's tone; a vendor that answers and sends only silence is heard as no audio; a
call that carries no RTP at all is ended by the media timeout, BYE both ways."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from callcore import media
from softswitch_portal.switching.testcalls import audio

from .conftest import ROOT, RTPENGINE_NG_PORT, SWITCH_PORT, VENDOR_A, needs_sip, wait_for_cdrs

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
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.audio_agent", str(VENDOR_A), mode, str(tmp_path), "--tone", str(VENDOR_HZ),
         "--calls", str(calls), "--timeout", str(timeout)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    # Its SIP transport bound before the call is placed: a fixed pause alone was too short on a loaded machine,
    # and the switch's INVITE then met a closed port (500).
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and process.poll() is None:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind(("127.0.0.1", VENDOR_A))
        except OSError:
            break
        finally:
            probe.close()
        time.sleep(0.05)
    time.sleep(1.0)  # bound is not yet answering: its account and call handler come after the transport
    return process


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


# Known flake (issue 20, open): in the whole suite's run, not alone, the first proxied call of the module went
# direct once (its SDP not rewritten) and the no-audio call got a 500 at set-up once; under investigation.
MEDIA_FLAKE = pytest.mark.xfail(strict=False, reason="seen flaky in the whole suite only: the proxy not used, or 500")


@MEDIA_FLAKE
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


@MEDIA_FLAKE
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
