"""A phone's allowed countries through the real switch: the IP-country table places 127.0.0.0/8 in NL."""

import time

import pytest
import redis
from django.conf import settings

from callcore.contract import IP_COUNTRY_POLL_S, IpCountryKeys
from security import ip_countries

from .conftest import VENDOR_A, needs_sip, wait_for_cdrs
from .test_phones_and_limits import HANG_UP

pytestmark = [pytest.mark.sip, needs_sip, pytest.mark.django_db]

# 127.0.0.1 is the e2e customer's mapping gateway: the phone calls from another loopback address.
PHONE_SOURCE = "127.0.0.2"
CREDENTIALS = ("-au", "2001", "-ap", "correct-horse-9")


@pytest.fixture(scope="module")
def loopback_in_nl(callcore, tmp_path_factory):
    """The table in Redis as the portal publishes it, read by every call-core process; its keys removed after."""
    path = tmp_path_factory.mktemp("geo") / "delegated-e2e.txt"
    path.write_text(
        "2|e2e|20240101|2|19830101|20240101|+0000\n"
        "e2e|NL|ipv4|127.0.0.0|16777216|20000101|allocated\n"
        "e2e|US|ipv4|192.0.2.0|256|20000101|allocated\n"
    )
    table = ip_countries.build([str(path)])
    keys = IpCountryKeys(settings.REDIS_PREFIX)
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.set(keys.blob, table.blob)
    client.set(keys.version, table.version)
    time.sleep(IP_COUNTRY_POLL_S + 0.5)  # every process reads the version again on its next request
    yield table
    client.delete(keys.version, keys.blob)
    client.close()


@pytest.fixture
def make_phone(switch_config):
    from softswitch_portal.switching.models import Phone

    def make(countries):
        phone = Phone.objects.create(username="2001", password="correct-horse-9", account=switch_config.customer,
                                     allowed_countries=countries)  # fmt: skip
        switch_config.publish()
        return phone

    return make


def test_a_phone_allowed_its_sources_country_registers_and_calls(loopback_in_nl, make_phone, sipp, live_redis):
    phone = make_phone(["NL"])
    registered = sipp.customer("uac_register.xml", "2001", source=PHONE_SOURCE, CODE=200, extra=CREDENTIALS)
    assert registered.returncode == 0, registered.stderr.decode()[-2000:]

    sipp.vendor("uas_answer.xml", VENDOR_A)
    called = sipp.customer("uac_phone_call.xml", "12125550100", caller="2001", source=PHONE_SOURCE, CODE=200,
                           AFTER=HANG_UP, hold_ms=300, extra=CREDENTIALS)  # fmt: skip
    assert called.returncode == 0, called.stderr.decode()[-2000:]
    [record] = wait_for_cdrs(live_redis, 1)
    assert (record["phone_id"], record["end_reason"]) == (phone.id, "normal_clearing")


def test_a_phone_allowed_another_country_is_refused_on_register_and_invite(loopback_in_nl, make_phone, sipp,
                                                                           live_redis):  # fmt: skip
    make_phone(["US"])
    registered = sipp.customer("uac_register.xml", "2001", source=PHONE_SOURCE, CODE=403, extra=CREDENTIALS)
    assert registered.returncode == 0, registered.stderr.decode()[-2000:]

    called = sipp.customer("uac_phone_call.xml", "12125550100", caller="2001", source=PHONE_SOURCE, CODE=403,
                           AFTER="", extra=CREDENTIALS)  # fmt: skip
    assert called.returncode == 0, called.stderr.decode()[-2000:]
    [record] = wait_for_cdrs(live_redis, 1)
    assert record["end_reason"] == "auth_failed"
