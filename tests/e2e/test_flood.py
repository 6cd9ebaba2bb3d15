"""Flood defence: a source over the request rate is banned; everyone else is still served."""

import time

import pytest

from .conftest import needs_sip, options_flood, options_ping

pytestmark = [pytest.mark.sip, needs_sip]


def test_a_flooding_source_is_banned_and_others_are_still_answered(callcore):
    flooder = "127.0.0.9"
    assert options_ping(source=flooder) is not None  # not banned before
    # The session's switch allows 1000 requests per 2 s (SS_FLOOD_REQUESTS_PER_2S); pike blocks somewhere
    # between that and three times it: send 5000 in well under 2 s.
    sent_in = options_flood(flooder)
    assert sent_in < 2, "the flood was too slow to trip the limit on this machine"
    time.sleep(0.5)
    assert options_ping(source=flooder, timeout=1) is None
    assert options_ping(source="127.0.0.1") is not None
