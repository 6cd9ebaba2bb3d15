"""The CDR's decision trace goes through the ingest as the call core wrote it, cut at its column's width."""

import time

import pytest

from billing import ingest
from billing.models import CDR
from tests.billing.streams import call_record, push

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_decision_trace_is_stored_with_its_cdr(prefix, redis_client):
    now = int(time.time() * 1000)
    trace = "policy=priority;routes=3,5;skip=7:schedule,9:margin;busy=3;max=3600:route"
    push(redis_client, call_record("traced@x", now, decision_trace=trace), call_record("older@x", now + 1))
    ingester = ingest.Ingester("test", batch_size=100, block_ms=0, claim_idle_ms=60_000)
    ingester.run(drain=True)
    ingester.client.close()
    stored = dict(CDR.objects.values_list("caller_call_id", "decision_trace"))
    assert stored == {"traced@x": trace, "older@x": ""}
