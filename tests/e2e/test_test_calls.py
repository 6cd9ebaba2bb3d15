"""Operator test calls end to end: the test-call worker (a real Celery worker on its own queue) runs the pjsua2
agent from the test-call phone through the switch to the one vendor asked for, a fake vendor playing a tone; the
result holds the SIP answer, PDD, packets both ways and the audio heard, its CDR is the test account's, and
``manage.py test_call`` prints it as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from .conftest import ROOT, SWITCH_PORT, VENDOR_B, audio_vendor, needs_sip, wait_for_cdrs

pytestmark = [pytest.mark.sip, needs_sip, pytest.mark.django_db(transaction=True)]

# Not 127.0.0.1, which the e2e customer's mapping gateway claims: from there the call would be the gateway's.
TEST_CALL_BIND = "127.0.0.3"


@pytest.fixture
def test_call_worker(tmp_path):
    """A Celery worker serving a queue of this test's own, against the test database, as the Procfile runs it."""
    queue = f"testcalls-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DB_NAME": connection.settings_dict["NAME"], "TEST_CALL_QUEUE": queue,
           "TEST_CALL_SWITCH": f"127.0.0.1:{SWITCH_PORT}", "TEST_CALL_BIND": TEST_CALL_BIND,
           "TEST_CALL_TALK_SECONDS": "3", "DB_CONN_MAX_AGE": "0"}  # fmt: skip
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - the worker holds it
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "softswitch_portal", "worker", "-Q", queue, "--concurrency", "1",
         "--pool", "solo", "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    with override_settings(TEST_CALL_QUEUE=queue, TEST_CALL_SWITCH=f"127.0.0.1:{SWITCH_PORT}",
                           TEST_CALL_BIND=TEST_CALL_BIND):  # fmt: skip
        yield queue
    process.terminate()
    process.wait(timeout=20)
    log.close()


def tone_vendor(tmp_path, port=VENDOR_B, hz=700):
    return audio_vendor(tmp_path, port, "tone", hz, timeout=60)


def ready_test_phone(switch_config, gateway):
    from softswitch_portal.switching.testcalls import service

    phone = service.test_phone(gateway)
    switch_config.publish()  # the switch knows the phone before the call
    return phone


def test_a_test_call_through_the_chosen_vendor_hears_its_tone_and_counts_packets_both_ways(
    callcore, switch_config, live_redis, test_call_worker, tmp_path, capsys
):
    # Vendor B, behind vendor A in priority: only the test call's choice sends the call there.
    phone = ready_test_phone(switch_config, switch_config.route_b)
    vendor = tone_vendor(tmp_path)
    call_command("test_call", "Vendor B", "12125550100", "--timeout", "120")
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["status"] == "finished" and printed["sip_status"] == 200 and printed["answered"], printed
    vendor.kill()
    vendor.wait()
    assert printed["gateway"] == "Vendor B"
    assert printed["audio_heard"] is True and printed["audio_verdict"] in ("tone", "audio")
    assert printed["rtp_tx_packets"] > 50 and printed["rtp_rx_packets"] > 50
    assert printed["pdd_ms"] is not None and printed["talk_ms"] > 0

    from softswitch_portal.switching.models import TestCall

    call = TestCall.objects.get(pk=printed["id"])
    assert call.recording[:4] == b"RIFF" and "<svg" in call.waveform_svg
    assert "INVITE sip:12125550100@" in call.sip_trace and "X-Test-Gateway" in call.sip_trace
    [record] = wait_for_cdrs(live_redis, 1)
    assert record["routing_gateway_id"] == switch_config.route_b.id
    assert (record["account_id"], record["phone_id"]) == (phone.account_id, phone.id)
    assert record["end_reason"] == "normal_clearing"


def test_a_test_call_to_a_number_the_vendor_cannot_take_is_refused_not_sent_elsewhere(
    callcore, switch_config, live_redis, test_call_worker, capsys
):
    switch_config.route_b.prefixes = ["44"]
    switch_config.route_b.save()
    ready_test_phone(switch_config, switch_config.route_b)
    # Vendor A would take a 1 number; the test call names B only.
    call_command("test_call", "Vendor B", "12125550100", "--timeout", "120")
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["status"] == "finished" and not printed["answered"]
    assert printed["sip_status"] >= 400 and printed["audio_heard"] is None
    [record] = wait_for_cdrs(live_redis, 1)
    assert record["end_reason"] == "no_route" and record["routing_gateway_id"] is None
