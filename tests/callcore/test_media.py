"""The media proxy's decisions (which calls go through rtpengine, when a call's media has stopped) and its control
protocol against a real rtpengine."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from callcore import media

from ..e2e.conftest import free_port

# (mapping gateway's mode, routing gateway's mode, the caller's SDP address, its source address, proxied)
PROXY_ROWS = [
    ("off", "off", "192.168.1.20", "203.0.113.5", False),
    ("always", "off", "203.0.113.5", "203.0.113.5", True),
    ("off", "always", "203.0.113.5", "203.0.113.5", True),
    ("nat", "off", "192.168.1.20", "203.0.113.5", True),
    ("off", "nat", "198.51.100.7", "203.0.113.5", True),
    ("nat", "nat", "203.0.113.5", "203.0.113.5", False),
    ("nat", "off", "", "203.0.113.5", False),
    ("nat", "off", "0.0.0.0", "203.0.113.5", False),
    ("nat", "off", "media.example.net", "203.0.113.5", True),
]


@pytest.mark.parametrize(("mapping", "routing", "sdp_ip", "source_ip", "proxied"), PROXY_ROWS)
def test_media_goes_through_the_switch_by_either_gateways_setting(mapping, routing, sdp_ip, source_ip, proxied):
    assert media.proxy_media(mapping, routing, sdp_ip, source_ip) is proxied


def test_the_sdp_connection_address_is_read_from_the_session_or_first_medium():
    body = b"v=0\r\no=- 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    assert media.sdp_address(body) == "10.0.0.9"
    assert media.sdp_address("v=0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP6 2001:db8::1\r\n") == "2001:db8::1"
    assert media.sdp_address(b"") == ""


def test_bencode_round_trips_what_rtpengine_speaks():
    value = {"command": "query", "call-id": "abc@host", "flags": ["a", "b"], "n": 3, "nested": {"x": 1}}
    assert media.bdecode(media.bencode(value)) == value
    with pytest.raises(ValueError):
        media.bdecode(b"5:ab")


def test_a_call_is_silent_after_the_timeout_from_its_last_packet_or_answer():
    answer_ms = 1_000_000
    assert not media.is_silent(0, answer_ms, answer_ms + 9_999, 10)  # no packet yet: counted from the answer
    assert media.is_silent(0, answer_ms, answer_ms + 10_000, 10)
    assert not media.is_silent(1005, answer_ms, 1_014_000, 10)  # a packet at 1005 s: silent from 1015 s
    assert media.is_silent(1005, answer_ms, 1_015_000, 10)
    assert not media.is_silent(0, answer_ms, answer_ms + 10**9, 0)  # 0: off


def test_the_last_packet_and_packet_counts_are_read_from_a_query():
    query = {
        "created": 100,
        "tags": {
            "a": {"medias": [{"streams": [{"last packet": 130, "stats": {"packets": 50}, "flags": ["RTP"]},
                                          {"last packet": 131, "stats": {"packets": 5}, "flags": ["RTCP"]}]}]},
            "b": {"medias": [{"streams": [{"last packet": 0, "stats": {"packets": 0}}]}]},
        },
    }  # fmt: skip
    assert media.last_media_s(query) == 131
    assert media.packets(query) == {"a": 50, "b": 0}


@pytest.fixture
def rtpengine(tmp_path):
    if not shutil.which("rtpengine"):
        pytest.skip("rtpengine is installed by scripts/setup.sh")
    port = free_port()
    process = subprocess.Popen(
        ["rtpengine", "--config-file=none", "--foreground", "--log-stderr", "--table=-1", "--interface=127.0.0.1",
         f"--listen-ng=127.0.0.1:{port}", "--port-min=41000", "--port-max=41999", f"--pidfile={tmp_path}/pid"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = media.NgClient(f"127.0.0.1:{port}", timeout=0.2)
    for _ in range(50):
        try:
            client.command("ping")
            break
        except media.MediaProxyError:
            time.sleep(0.1)
    yield client
    client.close()
    process.terminate()
    process.wait(timeout=10)


SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"


def test_an_offer_is_rewritten_listed_queried_and_deleted_by_call_id(rtpengine):
    answer = rtpengine.command("offer", **{"call-id": "c1@test", "from-tag": "f1", "sdp": SDP})
    assert "m=audio 41" in answer["sdp"]  # the proxy's own port in the rewritten SDP
    assert rtpengine.call_ids() == ["c1@test"]
    assert media.last_media_s(rtpengine.query("c1@test")) > 0  # its creation, no packet yet
    rtpengine.delete("c1@test")
    deadline = time.monotonic() + 5
    while rtpengine.call_ids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rtpengine.call_ids() == []
    with pytest.raises(media.MediaProxyError, match="refused query"):
        rtpengine.query("c1@test")


def test_a_proxy_that_is_not_there_is_an_error_not_a_hang():
    client = media.NgClient(f"127.0.0.1:{free_port()}", timeout=0.2)
    with pytest.raises(media.MediaProxyError):
        client.call_ids()
    client.close()
