"""Operator test calls: the test-call account and phone, queueing a call, and running it (the worker's task).

Each call runs the agent in a process of its own (pjsua2 wants one endpoint per process and holds at most 4
calls), from the test-call phone, which names the chosen gateway in X-Test-Gateway so the switch tries only it.
The call is billed to the test-call account like any other.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.models import Account
from softswitch_portal.core import publisher

from ..choices import TestCallStatus
from ..models import Phone, RoutingGateway, TestCall
from . import audio

TEST_ACCOUNT_NAME = "Test calls"
TEST_PHONE_USERNAME = "999000999"
RUN_TASK = "softswitch_portal.switching.tasks.run_test_call"
RESULT_FIELDS = ("answered", "pdd_ms", "ringing_ms", "talk_ms", "rtp_tx_packets", "rtp_rx_packets", "rtp_tx_loss",
                 "rtp_rx_loss", "jitter_tx_ms", "jitter_rx_ms")  # fmt: skip


def test_phone(gateway: RoutingGateway | None = None) -> Phone:
    """The test-call phone, created with its account on first use. The account pays for its calls at its rate
    table: on creation the vendor's own (a test call then costs what the vendor charges), which the operator
    may change. Like any account it needs balance or credit to call: it starts with TEST_CALL_CREDIT_LIMIT of
    credit, so the first tests wait for no payment, and what they cost shows as its balance going negative."""
    phone = Phone.objects.filter(test_phone=True).select_related("account").first()
    if phone is not None:
        return phone
    vendor = gateway.clearing_account if gateway is not None else None
    account, _ = Account.objects.get_or_create(
        name=TEST_ACCOUNT_NAME,
        defaults={"rate_table": vendor.rate_table if vendor else None, "credit_limit": settings.TEST_CALL_CREDIT_LIMIT,
                  "description": "Operators' test calls through one vendor (switching.TestCall)."},
    )  # fmt: skip
    phone = Phone(username=TEST_PHONE_USERNAME, account=account, test_phone=True,
                  description="Places the operators' test calls; its password was never shown to anyone.")  # fmt: skip
    phone.password = secrets.token_urlsafe(24)  # only its HA1 is kept, which is all the agent needs
    phone.save()
    transaction.on_commit(lambda: publisher.publish(force=True))  # the switch must know the phone before it calls
    return phone


def start(gateway: RoutingGateway, number: str, user=None) -> TestCall:
    """Record a test call and queue it for the test-call worker once committed."""
    test_phone(gateway)
    requested_by = user if user is not None and user.is_authenticated else None
    call = TestCall.objects.create(gateway=gateway, gateway_name=gateway.name, number=number, requested_by=requested_by)
    # By name: the task module imports this one.
    transaction.on_commit(lambda: current_app.send_task(RUN_TASK, (call.pk,), queue=settings.TEST_CALL_QUEUE))
    return call


def run(test_call_id: int) -> None:
    """Place the call and store what it measured; a call that could not be placed at all is marked failed."""
    claimed = TestCall.objects.filter(pk=test_call_id, status=TestCallStatus.QUEUED).update(
        status=TestCallStatus.RUNNING
    )
    if not claimed:
        return  # another worker has it, or it was done
    call = TestCall.objects.get(pk=test_call_id)
    try:
        with tempfile.TemporaryDirectory(prefix="testcall-") as work:
            _place(call, Path(work))
        call.status = TestCallStatus.FINISHED
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        call.status, call.error = TestCallStatus.FAILED, str(exc)[:2000]
    call.finished = timezone.now()
    call.save()


def _place(call: TestCall, work: Path) -> None:
    phone = test_phone(call.gateway)
    if call.gateway_id is None:
        raise ValueError("The routing gateway was deleted before the call could be placed.")
    play = audio.write_tone(work / "tone.wav", seconds=2)
    record = work / "heard.wav"
    host = settings.TEST_CALL_SWITCH
    talk = settings.TEST_CALL_TALK_SECONDS
    env = {**os.environ, "SS_TEST_CALL_AUTH": f"{phone.username}:{phone.digest_realm}:{phone.ha1}"}
    done = subprocess.run(
        [sys.executable, "-m", "softswitch_portal.switching.testcalls.agent", f"sip:{call.number}@{host}", str(play),
         str(record), "--talk", str(talk), "--ring-timeout", "30", "--from", f"sip:{phone.username}@{host}",
         "--bind", settings.TEST_CALL_BIND, "--header", f"X-Test-Gateway: {call.gateway_id}"],
        cwd=settings.BASE_DIR, env=env, capture_output=True, timeout=talk + 60,
    )  # fmt: skip
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    if not lines:
        raise ValueError(f"The test-call agent gave no result: {done.stderr.decode(errors='replace')[-500:]}")
    result = json.loads(lines[-1])
    call.sip_status, call.sip_reason = result["status"] or None, result["reason"][:100]
    for name in RESULT_FIELDS:
        setattr(call, name, result[name])
    call.sip_trace = "\n\n".join(result["sip_trace"])
    heard = audio.analyse(record)
    if call.answered:
        call.audio_heard, call.audio_verdict = heard.heard, heard.verdict
    if record.exists() and record.stat().st_size > 44:
        call.recording = record.read_bytes()
        call.waveform_svg = audio.waveform_svg(record)


def as_json(call: TestCall) -> dict:
    """What the shell command prints (the API answers with switching.api.serializers.TestCallDetailSerializer)."""
    return {
        "id": call.pk,
        "status": call.status,
        "gateway": call.gateway_name,
        "number": call.number,
        "sip_status": call.sip_status,
        "sip_reason": call.sip_reason,
        **{name: getattr(call, name) for name in RESULT_FIELDS},
        "audio_heard": call.audio_heard,
        "audio_verdict": call.audio_verdict,
        "error": call.error,
    }
