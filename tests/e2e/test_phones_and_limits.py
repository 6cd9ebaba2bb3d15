"""Registered phones (digest authentication) and the live limits: capacity and CPS."""

import pytest

from callcore.contract import BillingMode

from .conftest import VENDOR_A, keys, needs_sip, wait_for_cdrs

pytestmark = [pytest.mark.sip, needs_sip, pytest.mark.django_db]

HANG_UP = """<pause/>
  <send retrans="500"><![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: <sip:[caller]@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 3 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>
  <recv response="200"/>"""


@pytest.fixture
def phone(switch_config):
    from softswitch_portal.switching.models import Phone

    return Phone.objects.create(username="2001", password="correct-horse-9", account=switch_config.customer)


def test_a_phone_registers_with_the_right_password(callcore, switch_config, phone, sipp):
    switch_config.publish()
    result = sipp.customer("uac_register.xml", "2001", source="127.0.0.2", CODE=200,
                           extra=("-au", "2001", "-ap", "correct-horse-9"))  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-2000:]


def test_a_phone_that_sends_its_username_with_the_realm_registers_by_ha1b(callcore, switch_config, phone, sipp):
    from django.conf import settings

    from callcore.contract import SIP_REALM

    switch_config.publish()
    realm = getattr(settings, "SIP_REALM", SIP_REALM)
    result = sipp.customer("uac_register.xml", "2001", source="127.0.0.2", CODE=200,
                           extra=("-au", f"2001@{realm}", "-ap", "correct-horse-9"))  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-2000:]


def test_a_phone_with_a_wrong_password_is_challenged_again(callcore, switch_config, phone, sipp):
    switch_config.publish()
    result = sipp.customer("uac_register.xml", "2001", source="127.0.0.2", CODE=401,
                           extra=("-au", "2001", "-ap", "wrong-password"))  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-2000:]


def test_an_unknown_user_cannot_register(callcore, switch_config, phone, sipp):
    switch_config.publish()
    result = sipp.customer("uac_register.xml", "2999", source="127.0.0.2", CODE=401,
                           extra=("-au", "2999", "-ap", "correct-horse-9"))  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-2000:]


def test_a_phone_call_is_challenged_then_billed_to_the_phones_account(callcore, switch_config, phone, sipp, live_redis):
    switch_config.publish()
    sipp.vendor("uas_answer.xml", VENDOR_A)
    result = sipp.customer("uac_phone_call.xml", "12125550100", caller="2001", source="127.0.0.2", CODE=200,
                           AFTER=HANG_UP, hold_ms=300, extra=("-au", "2001", "-ap", "correct-horse-9"))  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    [record] = wait_for_cdrs(live_redis, 1)
    assert record["billing_mode"] == BillingMode.PHONE
    assert record["phone_id"] == phone.id
    assert record["account_name"] == "E2E Customer"
    assert record["end_reason"] == "normal_clearing"


def test_a_phone_call_with_a_wrong_password_is_refused(callcore, switch_config, phone, sipp, live_redis):
    switch_config.publish()
    # Challenged again, as an unknown user would be: a guesser cannot tell the two apart.
    result = sipp.customer("uac_phone_call.xml", "12125550100", caller="2001", source="127.0.0.2", CODE=407,
                           AFTER="", extra=("-au", "2001", "-ap", "not-the-password"))  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    [record] = wait_for_cdrs(live_redis, 1)
    assert record["end_reason"] == "auth_failed"


def test_the_mapping_gateway_capacity_refuses_the_call_over_it(callcore, switch_config, sipp, live_redis):
    switch_config.gateway.capacity = 1
    switch_config.gateway.save()
    switch_config.publish()
    sipp.vendor("uas_answer.xml", VENDOR_A)
    held = sipp.customer("uac_call.xml", "12125550100", hold_ms=3000, background=True)
    records = []
    for _ in range(30):  # until the first call is up (its slot taken)
        if live_redis.hlen(keys().live_calls):
            break
        import time

        time.sleep(0.1)
    refused = sipp.customer("uac_reject.xml", "12125550101", CODE=486)
    assert refused.returncode == 0, refused.stderr.decode()[-2000:]
    assert held.wait(timeout=20) == 0
    records = wait_for_cdrs(live_redis, 2)
    assert sorted(r["end_reason"] for r in records) == ["mapping_capacity", "normal_clearing"], [
        (r["caller_call_id"], r["end_reason"], r["start_ms"]) for r in records
    ]


def test_the_mapping_gateway_cps_limit_refuses_the_excess(callcore, switch_config, sipp, live_redis):
    switch_config.gateway.cps_limit = 1
    switch_config.gateway.save()
    switch_config.publish()
    sipp.vendor("uas_fail.xml", VENDOR_A, CODE=404, calls=3)
    # Six attempts within ~60 ms fall in at most two one-second windows: at most two get through.
    sipp.customer("uac_reject.xml", "12125550100", CODE=503, calls=6, rate=100)
    records = wait_for_cdrs(live_redis, 6)
    reasons = [r["end_reason"] for r in records]
    assert len(records) == 6, [(r["caller_call_id"], r["end_reason"], r["start_ms"]) for r in records][:40]
    assert reasons.count("mapping_cps") >= 4
    assert all(r in ("mapping_cps", "vendor_rejected") for r in reasons)
