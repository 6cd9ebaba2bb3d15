"""The CDR stream's consumer: read, claim and acknowledge batches, and never give up on one.

The call core appends one record per call attempt to ``Keys.cdr_stream``
(field ``cdr``: a ``CdrRecord``). An ``Ingester`` reads it with one consumer
group, in batches, and for each batch:

1. decodes each record (``records``); one that cannot be stored goes to the
   dead letters (``dead_letters``) with the reason and never holds up the rest;
2. rates each record against the customer's and the vendor clearing
   account's rate tables, kept in memory (``billing.catalogue``);
3. stores the batch in one transaction (``store``), money moved only for the
   rows actually inserted;
4. after the commit, in one MULTI (one round trip to Redis): writes the dead
   letters, refreshes the live balances the call core reads, adds the batch's
   vendor attempts to the Best ASR route policy's per-minute counts
   (``billing.route_stats``; only from a batch that inserted every record it
   stored, so a batch read again is never counted twice), XACKs the batch,
   XDELs it and reads the next one.

A crash anywhere before step 4 leaves the entries pending, so they are read
again (by this consumer's own pending list on restart, or by another
consumer's XAUTOCLAIM once they have been idle long enough); the insert then
finds them already there and charges nothing twice. A crash after it has
nothing left to do.

Acknowledged entries are deleted (XDEL), not trimmed by length: the stream is
a hand-over, not an archive (the rows are in PostgreSQL), and a MAXLEN trim
could drop entries nobody has read yet. This is right while the ingest group
is the stream's only reader; a second group would need XTRIM MINID up to the
oldest entry any group still has pending instead.

Why a long-running consumer (``manage.py ingest_cdrs``) rather than a Celery
beat task: a blocking XREADGROUP picks a record up within milliseconds of
the call's end, while beat wakes on a schedule of seconds (the call core's
live balance, and so anti-overdraft, is only as fresh as the ingest); a
consumer group wants a stable consumer name that owns its pending entries
across reads, while Celery tasks are anonymous and may run concurrently on
one stream, racing each other's claims; and the loop keeps its rate tables,
Redis and database connections warm between batches. It still runs under the
one run command (the Procfile's ``ingest`` line).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import time
from collections.abc import Callable
from decimal import Decimal

import psycopg
import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from callcore.contract import RELEASE_PENDING_LUA, Keys, pending_debit_field, to_units
from softswitch_portal.core.redis import Waiter, redis_client

from .. import balances, route_stats
from ..catalogue import Catalog
from . import dead_letters, records, store
from .records import as_text

log = logging.getLogger("billing.ingest")

GROUP = "ingest"

# A database that went away: retry the batch once it is back.
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)


@dataclasses.dataclass
class BatchResult:
    read: int = 0
    inserted: int = 0
    duplicates: int = 0
    dead: int = 0


class Ingester:
    """One consumer of the CDR stream's ingest group. ``poll()`` handles one batch; ``run()`` loops with retries.

    Entries this consumer has read but not acknowledged are the truth about
    what is unfinished: after any error the consumer re-reads its own pending
    entries (XREADGROUP from id 0) before taking new ones, and every
    ``claim_every`` seconds it XAUTOCLAIMs entries that any consumer (a dead
    one, usually) has left pending for ``claim_idle_ms``.

    The next batch is read in the same MULTI that acknowledges this one (a
    round trip less per batch), unless a claim is due or the consumer is
    recovering; entries read ahead are pending like any others, so an error
    or a crash before they are handled loses nothing either.
    """

    def __init__(
        self,
        consumer: str | None = None,
        *,
        prefix: str | None = None,
        batch_size: int = 500,
        block_ms: int = 1000,
        claim_idle_ms: int = 60_000,
        claim_every: float = 15.0,
        refresh_every: float = 60.0,
        recheck: float = 1.0,
        client: redis.Redis | None = None,
    ):
        self.prefix = prefix or settings.REDIS_PREFIX
        self.consumer = consumer or socket.gethostname()
        self.keys = Keys(self.prefix)
        self.stream = self.keys.cdr_stream
        self.dead_stream = self.keys.cdr_dead_letters
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.claim_every = claim_every
        self.refresh_every = refresh_every
        self.client = client or redis_client(
            Waiter.JOB, name=f"ss-ingest:{self.consumer}", reply_timeout=block_ms / 1000 + 10
        )
        self._release_pending = self.client.register_script(RELEASE_PENDING_LUA)
        self.catalog = Catalog(recheck)
        self.recovering = True  # start with whatever a previous life of this consumer left pending
        self._group_ready = False
        self._claim_cursor = "0-0"
        self._next_claim = 0.0
        self._next_refresh = 0.0
        self._read_ahead: list[tuple[str, dict | None]] | None = None
        self.totals = BatchResult()

    # -- Redis side

    def ensure_group(self) -> None:
        try:
            # From the stream's beginning: records the call core wrote before the first ingest ran count too.
            self.client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _entries(self, reply) -> list[tuple[str, dict | None]]:
        entries = []
        # RESP2 answers [[stream, entries]], RESP3 {stream: entries}.
        for _stream, items in reply.items() if isinstance(reply, dict) else reply or ():
            for entry_id, fields in items:
                entries.append((as_text(entry_id), fields))
        return entries

    def read(self) -> list[tuple[str, dict | None]]:
        """The next entries to handle: own pending first when recovering, then those read ahead with the last
        acknowledgement, then claims when due, then new ones."""
        if not self._group_ready:
            self.ensure_group()
        if self._read_ahead and not self.recovering:
            entries, self._read_ahead = self._read_ahead, None
            return entries
        self._read_ahead = None
        if self.recovering:
            entries = self._entries(
                self.client.xreadgroup(GROUP, self.consumer, {self.stream: "0"}, count=self.batch_size)
            )
            if entries:
                return entries
            self.recovering = False
        if time.monotonic() >= self._next_claim:
            cursor, claimed, *_deleted = self.client.xautoclaim(
                self.stream, GROUP, self.consumer, self.claim_idle_ms, self._claim_cursor, count=self.batch_size
            )
            self._claim_cursor = as_text(cursor)
            if self._claim_cursor == "0-0":
                self._next_claim = time.monotonic() + self.claim_every
            if claimed:
                log.info("claimed %d CDR entries left pending by another consumer", len(claimed))
                return [(as_text(entry_id), fields) for entry_id, fields in claimed]
        return self._entries(
            self.client.xreadgroup(
                GROUP, self.consumer, {self.stream: ">"}, count=self.batch_size, block=self.block_ms or None
            )
        )

    # -- one batch

    def process(self, entries: list[tuple[str, dict | None]], *, read_ahead: bool = True) -> BatchResult:
        """Rate, store and acknowledge a batch; raises on Redis or database trouble, leaving it pending.

        With ``read_ahead``, the acknowledgement also reads the next new entries (``read()`` returns them).
        """
        result = BatchResult(read=len(entries))
        if not entries:
            return result
        unique: dict[tuple[str, int], records.Record] = {}
        dead: list[tuple[str, str, str]] = []  # entry id, raw record, reason
        for entry_id, fields in entries:
            if not fields:
                continue  # deleted from the stream after it was read: already finished
            raw = fields.get(b"cdr", fields.get("cdr"))
            try:
                record = records.parse(entry_id, raw)
            except records.InvalidRecord as exc:
                kept = (
                    as_text(raw) if raw is not None else json.dumps({as_text(k): as_text(v) for k, v in fields.items()})
                )
                dead.append((entry_id, kept, str(exc)))
                continue
            # The same call twice in one batch: once is enough (the insert would skip it anyway).
            unique.setdefault(record.key, record)

        current: dict[int, Decimal] = {}
        pending: dict[int, list[str]] = {}  # account -> pending debits its stored CDRs settle (contract.pending)
        route_counts = None
        if unique:
            good = list(unique.values())
            with connection.cursor() as cursor:
                self.catalog.prepare(
                    cursor, {v for r in good for v in (r.values["account_id"], r.values["vendor_account_id"])}
                )
            unrated = records.rate_records(good, self.catalog)
            if unrated:
                left_out = {id(r) for r, _ in unrated}
                good = [r for r in good if id(r) not in left_out]
            stored, refused = store.store_batch(good, self.catalog.low_balance_alarm)
            result.inserted, result.duplicates = stored.inserted, stored.duplicates
            dead += [(r.entry_id, r.raw, reason) for r, reason in unrated + refused]
            current = stored.balances
            pending = self._settled_debits(good, refused, current)
            # The route statistics count only rows this batch inserted, and the insert says how many, not which.
            # Without duplicates that is every record stored, less those PostgreSQL refused. With any (a batch
            # read again after a crash, whose counts may already be in Redis) the batch counts nothing: these
            # figures rank vendors, they move no money, and an undercount after a crash beats a double count.
            if stored.duplicates == 0:
                if refused:
                    left_out = {id(r) for r, _ in refused}
                    good = [r for r in good if id(r) not in left_out]
                route_counts = route_stats.count_records(good)
        result.dead = len(dead)

        ids = [entry_id for entry_id, _ in entries]
        pipe = self.client.pipeline(transaction=True)
        now_ms = int(time.time() * 1000)
        for entry_id, raw, reason in dead:
            dead_letters.set_aside(pipe, self.keys, entry_id, raw, reason, self.consumer, now_ms)
        if current:
            pipe.mset({self.keys.balance(i): to_units(balance) for i, balance in current.items()})
        # In the same transaction as the balances: a call's money is held as its reservation until its debit shows.
        for account_id, fields in pending.items():
            self._release_pending(keys=[self.keys.reservations(account_id)], args=fields, client=pipe)
        if route_counts:
            route_stats.add_counts(pipe, self.keys, route_counts, now_ms)
        pipe.xack(self.stream, GROUP, *ids)
        pipe.xdel(self.stream, *ids)
        # Not when recovering or when a claim is due: those come first, and entries read ahead would wait.
        read_ahead = read_ahead and not self.recovering and time.monotonic() < self._next_claim
        if read_ahead:
            # Without BLOCK (MULTI never blocks anyway): an empty answer sends read() to a blocking read.
            pipe.xreadgroup(GROUP, self.consumer, {self.stream: ">"}, count=self.batch_size)
        replies = pipe.execute()
        if read_ahead:
            self._read_ahead = self._entries(replies[-1])
        for reason in {reason for _, _, reason in dead}:
            log.warning("CDR set aside in %s: %s", self.dead_stream, reason)
        return result

    def _settled_debits(self, good, refused, current: dict[int, Decimal]) -> dict[int, list[str]]:
        """The pending debits (contract.pending) of the calls now in the database, by customer account.

        Stored now or before (a batch read again after a crash): either way the debit is in the balance. An
        account none of this batch's inserts moved gets its balance read here, so that the live balance
        set beside the release is one that holds the debit.
        """
        left_out = {id(r) for r, _ in refused}
        pending: dict[int, list[str]] = {}
        for record in good:
            values = record.values
            if id(record) not in left_out and values.get("answer_ms") is not None and values.get("account_id"):
                pending.setdefault(values["account_id"], []).append(pending_debit_field(values["call_uuid"]))
        missing = [a for a in pending if a not in current]
        if missing:
            with connection.cursor() as cursor:
                cursor.execute("SELECT id, balance FROM billing_account WHERE id = ANY(%s)", [missing])
                current.update(dict(cursor.fetchall()))
        return pending

    def refresh_all_balances(self) -> int:
        """Rewrite every account's live balance (``balances.refresh_all_live_balances``)."""
        return balances.refresh_all_live_balances(self.client, self.prefix)

    def poll(self) -> BatchResult:
        if self.refresh_every and time.monotonic() >= self._next_refresh:
            self.refresh_all_balances()
            self._next_refresh = time.monotonic() + self.refresh_every
        return self._count(self.process(self.read()))

    def _count(self, result: BatchResult) -> BatchResult:
        for field in dataclasses.fields(BatchResult):
            setattr(self.totals, field.name, getattr(self.totals, field.name) + getattr(result, field.name))
        return result

    # -- the loop

    def run(self, should_stop: Callable[[], bool] = lambda: False, *, drain: bool = False) -> BatchResult:
        """Poll until ``should_stop()``; with ``drain``, also stop once nothing is left to read.

        Redis or PostgreSQL going away is waited out with a capped exponential
        backoff; the batch in hand stays pending and is re-read afterwards.
        """
        delay = 0.0
        while not should_stop():
            try:
                result = self.poll()
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc):
                    log.warning("the CDR stream or its group vanished; creating it again")
                    self._group_ready = False
                    self._read_ahead = None
                    continue
                log.exception("Redis refused a command")
                delay = self._pause(delay, should_stop)
            except redis.RedisError as exc:
                log.warning("Redis unavailable (%s); retrying", exc)
                delay = self._pause(delay, should_stop)
            except TRANSIENT_DB_ERRORS as exc:
                log.warning("PostgreSQL unavailable (%s); retrying", str(exc).strip())
                _close_db()
                delay = self._pause(delay, should_stop)
            except Exception:
                # Never die: under honcho one process exiting stops the whole switch.
                log.exception("CDR batch failed; retrying")
                _close_db()
                delay = self._pause(delay, should_stop)
            else:
                delay = 0.0
                if result.read:
                    log.debug(
                        "CDR batch: %d read, %d inserted, %d duplicates, %d dead",
                        result.read,
                        result.inserted,
                        result.duplicates,
                        result.dead,
                    )
                elif drain and not self.recovering and self._claim_cursor == "0-0":
                    break
        if self._read_ahead and not self.recovering:
            # Finish what the last acknowledgement read ahead rather than leave it pending until this
            # consumer's next start or another's claim.
            try:
                self._count(self.process(self.read(), read_ahead=False))
            except Exception as exc:  # stopping anyway: the entries stay pending, nothing is lost
                log.warning("CDR entries read ahead left pending at stop: %s", exc)
        return self.totals

    def _pause(self, delay: float, should_stop: Callable[[], bool]) -> float:
        self.recovering = True
        self._read_ahead = None  # pending: recovering reads them again
        delay = min(max(delay * 2, 0.1), 5.0)
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and not should_stop():
            time.sleep(0.05)
        return delay


def _close_db():
    try:
        connection.close()
    except Exception:
        # A dead connection may fail to close; Django drops it either way.
        log.debug("closing the broken database connection failed", exc_info=True)
