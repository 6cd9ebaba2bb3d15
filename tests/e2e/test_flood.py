"""Flood defence: a source over the request rate is banned; everyone else is still served."""

import socket
import time
import uuid

import pytest

from .conftest import SWITCH_PORT, needs_sip, options_ping

pytestmark = [pytest.mark.sip, needs_sip]


def test_a_flooding_source_is_banned_and_others_are_still_answered(callcore):
    flooder = "127.0.0.9"
    assert options_ping(source=flooder) is not None  # not banned before
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((flooder, 0))
    port = sock.getsockname()[1]
    # The session's switch allows 1000 requests per 2 s (SS_FLOOD_REQUESTS_PER_2S); pike blocks somewhere
    # between that and three times it: send 5000 in well under 2 s.
    started = time.monotonic()
    for n in range(5000):
        call_id = uuid.uuid4().hex
        message = (
            f"OPTIONS sip:127.0.0.1:{SWITCH_PORT} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {flooder}:{port};branch=z9hG4bK{n}{call_id}\r\n"
            f"From: <sip:f@{flooder}>;tag={n}\r\nTo: <sip:127.0.0.1>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        sock.sendto(message.encode(), ("127.0.0.1", SWITCH_PORT))
        if n % 200 == 199:
            time.sleep(0.04)  # paced, so the socket buffers do not drop what pike should count
    sent_in = time.monotonic() - started
    sock.close()
    assert sent_in < 2, "the flood was too slow to trip the limit on this machine"
    time.sleep(0.5)
    assert options_ping(source=flooder, timeout=1) is None
    assert options_ping(source="127.0.0.1") is not None
