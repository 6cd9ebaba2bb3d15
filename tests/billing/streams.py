"""Putting CDR records on the call core's stream, as the call core would, for the ingest tests."""

import json

from billing import ingest


def push(client, *records):
    pipe = client.pipeline()
    for record in records:
        pipe.xadd(ingest.stream_key(), {"cdr": record if isinstance(record, str) else json.dumps(record)})
    pipe.execute()
