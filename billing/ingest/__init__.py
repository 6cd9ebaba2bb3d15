"""CDR ingest: from the call core's Redis stream to rated rows in PostgreSQL and debited balances.

``consumer`` reads the stream (``Ingester``), ``records`` decodes and rates
each record, ``store`` writes a batch and moves the money in one transaction,
``dead_letters`` keeps what could not be stored. The consumer, the stream
names and the dead letters' API are here for the rest of the tree.
"""

from callcore.contract import Keys
from softswitch_portal.core.redis import prefix

from .consumer import GROUP, BatchResult, Ingester
from .dead_letters import DeadLetter, dead_letter_count, dead_letters, discard_dead_letter, requeue_dead_letter

__all__ = [
    "GROUP",
    "BatchResult",
    "Ingester",
    "DeadLetter",
    "dead_letter_count",
    "dead_letters",
    "discard_dead_letter",
    "requeue_dead_letter",
    "stream_key",
    "dead_stream_key",
]


def stream_key(key_prefix: str | None = None) -> str:
    return Keys(key_prefix or prefix()).cdr_stream


def dead_stream_key(key_prefix: str | None = None) -> str:
    return Keys(key_prefix or prefix()).cdr_dead_letters
