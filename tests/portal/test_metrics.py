"""The portal's /metrics: Prometheus's text format without a login from the allowed networks, 403 from elsewhere,
with the ingest's figures and the open alarms as they are."""

import time

import pytest
from django.utils import timezone

from callcore.contract import Keys
from security.models import Alarm

pytestmark = pytest.mark.django_db


def samples(text: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


@pytest.fixture
def stream(settings, redis_client, unique):
    settings.REDIS_PREFIX = f"sstest-metrics-{unique}"
    keys = Keys(settings.REDIS_PREFIX)
    yield keys
    for key in redis_client.scan_iter(f"{settings.REDIS_PREFIX}:*"):
        redis_client.delete(key)


def test_it_answers_loopback_without_a_login_with_the_ingest_and_the_open_alarms(client, redis_client, stream):
    old_ms = int(time.time() * 1000) - 42_000
    redis_client.xadd(stream.cdr_stream, {"cdr": "{}"}, id=f"{old_ms}-0")
    redis_client.xadd(stream.cdr_stream, {"cdr": "{}"})
    for n in range(3):
        redis_client.xadd(stream.cdr_dead_letters, {"reason": f"bad {n}"})
    Alarm.objects.create(
        kind="asr_drop", severity="warning", subject_kind="routing_gateway", subject="7", dedupe_key="a"
    )
    Alarm.objects.create(
        kind="asr_drop", severity="warning", subject_kind="routing_gateway", subject="8", dedupe_key="b"
    )
    Alarm.objects.create(kind="ingest_lag", severity="critical", subject_kind="switch", subject="ingest",
                         dedupe_key="c", resolved_at=timezone.now())  # fmt: skip
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/plain; version=")
    figures = samples(answer.content.decode())
    assert figures["ss_redis_up"] == 1
    assert figures["ss_cdr_stream_length"] == 2
    assert figures["ss_cdr_dead_letters"] == 3
    assert 41 <= figures["ss_cdr_ingest_lag_seconds"] < 600
    assert figures['ss_alarms_open{kind="asr_drop",severity="warning"}'] == 2
    assert not any(name.startswith('ss_alarms_open{kind="ingest_lag"') for name in figures)
    assert figures["ss_cdr_ingest_records_per_second"] == 0


def test_it_refuses_other_addresses_unless_their_network_is_allowed(client, settings, stream):
    refused = client.get("/metrics", REMOTE_ADDR="198.51.100.7")
    assert refused.status_code == 403
    assert b"198.51.100.7 is not in METRICS_ALLOWED_NETWORKS" in refused.content
    settings.METRICS_ALLOWED_NETWORKS = ["198.51.100.0/24"]
    assert client.get("/metrics", REMOTE_ADDR="198.51.100.7").status_code == 200
    assert client.get("/metrics").status_code == 403  # loopback is no longer in the list
