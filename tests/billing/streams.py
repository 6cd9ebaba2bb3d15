"""CDR records as the call core writes them, and putting them on its stream, for the ingest tests."""

import hashlib
import json

import msgspec

from billing import ingest
from callcore.contract import BillingMode, CdrRecord


def call_record(call_id, start_ms, node="node-a", **fields) -> dict:
    """A call's record (not billed, ended at its start, snapshot 3 unless told), as a dict a test may still edit."""
    values = {
        # Bounded and unique per attempt, as the call core makes it.
        "call_uuid": hashlib.sha256(f"{node}\n{call_id}\n{start_ms}".encode()).hexdigest()[:32],
        "caller_call_id": call_id,
        "start_ms": start_ms,
        "stop_ms": start_ms,
        "node": node,
        "snapshot_version": 3,
        "billing_mode": BillingMode.NOT_BILLED,
        **fields,
    }
    return msgspec.to_builtins(CdrRecord(**values))


def push(client, *records):
    pipe = client.pipeline()
    for record in records:
        pipe.xadd(ingest.stream_key(), {"cdr": record if isinstance(record, str) else json.dumps(record)})
    pipe.execute()
