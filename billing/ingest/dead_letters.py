"""The dead letters: CDR records the ingest could not store, with why, kept until an operator acts.

The ingest sets a record aside (``set_aside``) in the MULTI that acknowledges
its batch; the portal lists them, puts one back on the CDR stream once
corrected (``requeue_dead_letter``) or discards it (``discard_dead_letter``).
The stream is not trimmed: each letter is a call.
"""

from __future__ import annotations

import contextlib
import dataclasses

import redis

from callcore.contract import Keys
from softswitch_portal.core.redis import Waiter, prefix, redis_client

from .records import as_text


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """A CDR record the ingest could not store, with why."""

    id: str
    entry_id: str
    reason: str
    record: str
    consumer: str
    at_ms: int


def set_aside(pipe, keys: Keys, entry_id: str, record: str, reason: str, consumer: str, at_ms: int) -> None:
    """Add a dead letter to ``pipe`` (the MULTI that acknowledges its entry)."""
    pipe.xadd(
        keys.cdr_dead_letters,
        {"entry_id": entry_id, "reason": reason, "cdr": record, "consumer": consumer, "at_ms": at_ms},
    )


@contextlib.contextmanager
def _connected(client: redis.Redis | None):
    if client is not None:
        yield client
        return
    # The portal's pages call these: a dead Redis must not hang the request.
    own = redis_client(Waiter.PAGE)
    try:
        yield own
    finally:
        own.close()


def dead_letters(limit: int = 100, client: redis.Redis | None = None) -> list[DeadLetter]:
    """The newest ``limit`` dead letters, newest first."""
    with _connected(client) as connected:
        found = connected.xrevrange(Keys(prefix()).cdr_dead_letters, count=limit)
    letters = []
    for letter_id, fields in found:
        f = {as_text(k): as_text(v) for k, v in fields.items()}
        letters.append(
            DeadLetter(
                id=as_text(letter_id),
                entry_id=f.get("entry_id", ""),
                reason=f.get("reason", ""),
                record=f.get("cdr", ""),
                consumer=f.get("consumer", ""),
                at_ms=int(f.get("at_ms") or 0),
            )
        )
    return letters


def dead_letter_count(client: redis.Redis | None = None) -> int:
    with _connected(client) as connected:
        return connected.xlen(Keys(prefix()).cdr_dead_letters)


def requeue_dead_letter(letter_id: str, record: str | None = None, client: redis.Redis | None = None) -> str:
    """Put a dead letter's record (or a corrected one) back on the CDR stream and drop the letter."""
    keys = Keys(prefix())
    with _connected(client) as connected:
        if record is None:
            found = connected.xrange(keys.cdr_dead_letters, min=letter_id, max=letter_id)
            if not found:
                raise KeyError(letter_id)
            record = as_text(found[0][1].get(b"cdr", b""))
        pipe = connected.pipeline(transaction=True)
        pipe.xadd(keys.cdr_stream, {"cdr": record})
        pipe.xdel(keys.cdr_dead_letters, letter_id)
        new_id, _ = pipe.execute()
    return as_text(new_id)


def discard_dead_letter(letter_id: str, client: redis.Redis | None = None) -> bool:
    """Drop a dead letter for good (the operator has seen it); False if it was not there."""
    with _connected(client) as connected:
        return bool(connected.xdel(Keys(prefix()).cdr_dead_letters, letter_id))
