"""CDR ingest: from the call core's Redis stream to rated rows in PostgreSQL and debited balances.

The call core appends one JSON record per call attempt to ``{prefix}:cdr``
(field ``cdr``; built in ``callcore.cdr``). This module reads that stream with
one consumer group, in batches, and for each batch:

1. parses and validates each record; one that cannot be stored goes to the
   dead-letter stream ``{prefix}:cdr:dead`` with the reason and never holds up
   the rest;
2. rates each record (``billing.rating``) against the customer's and the
   vendor clearing account's rate tables, kept in memory per table and
   reloaded only when the table changed (``Catalog`` says how that is told);
3. in ONE transaction inserts the rows with ``ON CONFLICT (call_uuid,
   start_time) DO NOTHING RETURNING``, and moves money only for the rows
   that came back: customers debited by the fee, vendor clearing accounts
   credited by the vendor cost, one UPDATE for all accounts after locking
   them in id order (two workers never wait on each other in a cycle). That
   is four round trips to PostgreSQL: BEGIN, COPY into the session's staging
   table (two), and one prepared statement doing the insert and the money,
   sent with its COMMIT (``STORE_SQL``);
4. after the commit, in one MULTI (one round trip to Redis): writes the dead
   letters, refreshes the live balances the call core reads
   (``{prefix}:live:balance:{id}``, in ten-thousandths), adds the batch's
   vendor attempts to the Best ASR route policy's per-minute counts
   (``billing.route_stats``; only from a batch that inserted every record it
   stored, so a batch read again is never counted twice), XACKs the batch,
   XDELs it and reads the next one. A customer whose balance the batch took
   below its alarm threshold gets the low-balance e-mail (a Celery task
   queued after the commit): once per crossing, since a batch that starts
   below the threshold does not cross it.

A crash anywhere before step 4 leaves the entries pending, so they are read
again (by this consumer's own pending list on restart, or by another
consumer's XAUTOCLAIM once they have been idle long enough); the insert then
finds them already there and charges nothing twice. A crash after it has
nothing left to do.

Acknowledged entries are deleted (XDEL), not trimmed by length: the stream is
a hand-over, not an archive (the rows are in PostgreSQL), and a MAXLEN trim
could drop entries nobody has read yet. This is right while the ingest group
is the stream's only reader; a second group would need XTRIM MINID up to the
oldest entry any group still has pending instead. The dead-letter stream is
not trimmed either: each letter is a call, kept until an operator puts it
back (``requeue_dead_letter``) or discards it (``discard_dead_letter``).

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
import hashlib
import json
import logging
import operator
import socket
import time
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal
from functools import partial

import orjson
import psycopg
import redis
from django.conf import settings
from django.db import DataError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from redis.backoff import NoBackoff
from redis.retry import Retry

from callcore.contract import PARAMETERS_BY_NAME, BillingMode, EndDirection, Keys, to_units

from . import rating, route_stats

log = logging.getLogger("billing.ingest")

GROUP = "ingest"
CDR_SCHEMA = 1  # the record version this ingest understands (callcore.cdr writes "cdr_schema")

# A database that went away: retry the batch once it is back.
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
# A value PostgreSQL refused: find the record that did it and set it aside.
RECORD_DB_ERRORS = (DataError, IntegrityError, psycopg.DataError, psycopg.IntegrityError)


def stream_key(prefix: str | None = None) -> str:
    return Keys(prefix or settings.REDIS_PREFIX).cdr_stream


def dead_stream_key(prefix: str | None = None) -> str:
    return f"{prefix or settings.REDIS_PREFIX}:cdr:dead"


def redis_client(
    client_name: str | None = None, socket_timeout: float = 10.0, connect_timeout: float = 5.0
) -> redis.Redis:
    # Retries are ours (``Ingester.run``): a command retried silently inside
    # redis-py hides a lost XREADGROUP reply, whose entries would then wait for
    # a claim instead of being re-read from this consumer's pending list at once.
    return redis.Redis.from_url(
        settings.REDIS_URL,
        client_name=client_name,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 0),
    )


# ---------------------------------------------------------------------------
# Records: parse and validate


class InvalidRecord(ValueError):
    """A record that cannot be stored as it is; the message is the dead letter's reason."""


CALL_UUID_LENGTH = 64  # billing_cdr.call_uuid

# Epoch ms from 2000 to 2100: anything outside is a corrupt clock or a corrupt record.
MIN_MS, MAX_MS = 946_684_800_000, 4_102_444_800_000

# Column widths of billing_cdr: a longer text is cut to fit (a CDR is evidence,
# and a 300-digit number from a scanner is no reason to lose the record).
TEXT_FIELDS = {
    "caller_number": 64,
    "callee_number": 64,
    "caller_number_out": 64,
    "callee_number_out": 64,
    "caller_user_agent": 200,
    "account_name": 100,
    "mapping_gateway_name": 100,
    "routing_gateway_name": 100,
    "rate_prefix": 32,
    "rate_area": 100,
    "vendor_rate_prefix": 32,
    "vendor_rate_area": 100,
    "caller_call_id": 200,
    "callee_call_id": 200,
    "end_reason": 40,
    "node": 64,
}
INT_RANGES = {
    "start_ms": (MIN_MS, MAX_MS),
    "answer_ms": (MIN_MS, MAX_MS),
    "stop_ms": (MIN_MS, MAX_MS),
    "hold_time_ms": (0, 2**63 - 1),
    "pdd_ms": (-(2**31), 2**31 - 1),
    "caller_port": (0, 65535),
    "sip_status": (0, 32767),
    "snapshot_version": (-(2**63), 2**63 - 1),
    "account_id": (1, 2**63 - 1),
    "vendor_account_id": (1, 2**63 - 1),
    "mapping_gateway_id": (1, 2**63 - 1),
    "routing_gateway_id": (1, 2**63 - 1),
    "phone_id": (1, 2**63 - 1),
}
BILLING_MODES = frozenset(int(m) for m in BillingMode)
END_DIRECTIONS = frozenset(int(d) for d in EndDirection)


@dataclasses.dataclass(slots=True)
class Record:
    """A validated CDR record, its times still in epoch ms, waiting to be rated."""

    entry_id: str
    raw: bytes | str  # as read from the stream, for a dead letter
    values: dict
    vendors_tried: list | tuple = ()  # parsed, for the route statistics; ``values`` holds it as stored

    @property
    def key(self) -> tuple[str, int]:
        return self.values["call_uuid"], self.values["start_ms"]


def _int_problem(name: str, value: object, low: int, high: int) -> str:
    if value.__class__ is not int:  # bool is an int to Python, not to a CDR
        return f"{name} must be an integer, got {value!r}"[:300]
    return f"{name} {value} is out of range {low}..{high}"


def _ip(value: object, name: str, strict: bool) -> str | None:
    if value is None or value == "":
        return None
    if value.__class__ is str:
        text = value.strip()
        family = socket.AF_INET
        if ":" in text:
            family = socket.AF_INET6
            text = text.strip("[]").split("%", 1)[0]  # PostgreSQL's inet has no IPv6 zone id
        try:
            # inet_pton, not ipaddress: the same answer at a hundredth of the cost, and this runs twice a record.
            socket.inet_pton(family, text)
            return text
        except OSError:
            pass
    if strict:
        raise InvalidRecord(f"{name} {value!r} is not an IP address"[:300])
    return None


def fit_call_uuid(call_uuid: str) -> str:
    """The call's key as stored: as it is when it fits the column, else its start and a digest of the whole.

    The call core builds it from the node, the SIP Call-ID and the start time,
    and a Call-ID has no length limit. Cutting it could make two calls one;
    the digest keeps it unique and the same on every redelivery, so the
    ``ON CONFLICT`` check still sees a repeat. The full Call-ID stays in
    ``caller_call_id``.
    """
    if len(call_uuid) <= CALL_UUID_LENGTH:
        return call_uuid
    digest = hashlib.sha256(call_uuid.encode()).hexdigest()[:40]
    return f"{call_uuid[: CALL_UUID_LENGTH - len(digest) - 1]}~{digest}"


def parse(entry_id: str, raw: bytes | str | None) -> Record:
    """Validate one stream entry's ``cdr`` field into a Record, or raise InvalidRecord with the reason."""
    if raw is None:
        raise InvalidRecord("the entry has no 'cdr' field")
    try:
        # orjson: a third of the json module's time, and it refuses what PostgreSQL would (a lone
        # surrogate such as \udcff, NaN), where json.loads let such a record jam the batch it came in.
        record = orjson.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRecord(f"not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise InvalidRecord(f"not a JSON object but {type(record).__name__}")
    schema = record.get("cdr_schema", CDR_SCHEMA)
    if schema != CDR_SCHEMA:
        raise InvalidRecord(f"cdr_schema {schema!r} is not the {CDR_SCHEMA} this ingest understands")

    call_uuid = record.get("call_uuid")
    if not isinstance(call_uuid, str) or not call_uuid.strip() or "\x00" in call_uuid:
        raise InvalidRecord(f"call_uuid must be a non-empty string, got {call_uuid!r}"[:300])
    values = {"call_uuid": fit_call_uuid(call_uuid)}
    get = record.get
    for name, (low, high) in INT_RANGES.items():
        value = get(name)
        if value is not None and (value.__class__ is not int or not low <= value <= high):
            raise InvalidRecord(_int_problem(name, value, low, high))
        values[name] = value
    if values["start_ms"] is None:
        raise InvalidRecord("start_ms is missing")
    if values["hold_time_ms"] is None:
        values["hold_time_ms"] = 0
    # JSON spells a NUL \u0000: without one in the line, no string needs cleaning.
    has_nul = ("\\u0000" if isinstance(raw, str) else b"\\u0000") in raw
    for name, width in TEXT_FIELDS.items():
        value = get(name)
        if value is None:
            value = ""
        elif value.__class__ is not str:
            raise InvalidRecord(f"{name} must be a string, got {type(value).__name__}")
        elif has_nul:
            value = value.replace("\x00", "")
        values[name] = value if len(value) <= width else value[:width]
    values["caller_ip"] = _ip(record.get("caller_ip"), "caller_ip", strict=True)
    # The call core writes the routing gateway's host here, which may be a DNS
    # name; the column is inet, and the gateway's id and name are in the record.
    values["vendor_ip"] = _ip(record.get("vendor_ip"), "vendor_ip", strict=False)

    billing_mode = record.get("billing_mode")
    if isinstance(billing_mode, bool) or billing_mode not in BILLING_MODES:
        raise InvalidRecord(f"billing_mode {billing_mode!r} is not one of {sorted(BILLING_MODES)}")
    values["billing_mode"] = billing_mode
    end_direction = record.get("end_direction")
    if end_direction is not None and (isinstance(end_direction, bool) or end_direction not in END_DIRECTIONS):
        raise InvalidRecord(f"end_direction {end_direction!r} is not one of {sorted(END_DIRECTIONS)}")
    values["end_direction"] = end_direction

    tried = record.get("vendors_tried") or []
    if not isinstance(tried, list):
        raise InvalidRecord(f"vendors_tried must be a list, got {type(tried).__name__}")
    encoded = orjson.dumps(tried).decode() if tried else "[]"
    if has_nul and "\\u0000" in encoded:
        raise InvalidRecord("vendors_tried contains a NUL character, which PostgreSQL's jsonb refuses")
    values["vendors_tried"] = encoded
    return Record(entry_id, raw, values, tried)


# ---------------------------------------------------------------------------
# What rating needs from the database, cached


def _epoch_ms(value) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


class Catalog:
    """The system parameters, each account's rate table and each rate table as a ``RateIndex``, in memory.

    Looking them up per record would cost a query each; per batch, a few
    queries and a scan of every rate. So they are kept, and checked again
    at most every ``recheck`` seconds: parameters and accounts are re-read,
    and each cached rate table is fingerprinted (row count, highest id, sum of
    the rows' xmin: any committed insert, delete or update of a rate changes
    it) and reloaded only if it changed. An account or rate table a batch
    needs and the cache has never seen is loaded at once.

    So a price edited in place applies to the records ingested from at most
    ``recheck`` seconds later, which is no different from the ingest running
    that much behind. A call is rated at the price in force when it is
    ingested unless validity dates say otherwise: a price change meant for
    calls from a given moment belongs in a new rate with ``valid_from``.
    """

    def __init__(self, recheck: float = 1.0):
        self.recheck = recheck
        self.params = rating.RatingParameters()
        self.low_balance_alarm = 0
        self.accounts: dict[int, int | None] = {}  # account id -> rate table id; None: none, or no such account
        self.missing: set[int] = set()
        self._rates: dict[int, tuple[tuple, rating.RateIndex]] = {}
        self._next_check = 0.0
        self.loads = 0  # rate tables (re)loaded, for the tests and the benchmark

    def prepare(self, cursor, account_ids: Iterable[int]) -> None:
        """Make sure everything the accounts ``account_ids`` need for rating is loaded and fresh enough."""
        due = time.monotonic() >= self._next_check
        wanted = {a for a in account_ids if a is not None}
        if due:
            self.params, self.low_balance_alarm = load_parameters(cursor)
            # Every account seen so far is looked up again with this batch's, in one query: forgetting
            # them instead cost a query in each of the next batches that named one (a dozen a second).
            lookup = sorted(wanted | self.accounts.keys())
        else:
            lookup = sorted(wanted - self.accounts.keys())
        if lookup:
            cursor.execute("SELECT id, rate_table_id FROM billing_account WHERE id = ANY(%s)", [lookup])
            found = dict(cursor.fetchall())
            self.accounts.update({a: found.get(a) for a in lookup})
            self.missing.difference_update(found)
            self.missing.update(a for a in lookup if a not in found)
        needed = {t for t in self.accounts.values() if t is not None}
        check = needed | self._rates.keys() if due else needed - self._rates.keys()
        if check:
            self._load_rates(cursor, sorted(check))
        if due:
            self._next_check = time.monotonic() + self.recheck

    def _load_rates(self, cursor, table_ids: list[int]) -> None:
        cursor.execute(
            """
            SELECT rate_table_id, count(*), max(id), sum(xmin::text::bigint)
            FROM billing_rate WHERE rate_table_id = ANY(%s) GROUP BY rate_table_id
            """,
            [table_ids],
        )
        prints = {row[0]: tuple(row[1:]) for row in cursor.fetchall()}
        stale = [t for t in table_ids if t not in self._rates or self._rates[t][0] != prints.get(t)]
        if not stale:
            return
        cursor.execute(
            """
            SELECT rate_table_id, prefix, area, price_per_minute, first_period, next_period, connect_fee,
                   valid_from, valid_to
            FROM billing_rate WHERE rate_table_id = ANY(%s)
            """,
            [stale],
        )
        rates = defaultdict(list)
        for table_id, prefix, area, per_minute, first, nxt, connect_fee, valid_from, valid_to in cursor.fetchall():
            rates[table_id].append(
                rating.Rate(
                    prefix, area, per_minute, first, nxt, connect_fee, _epoch_ms(valid_from), _epoch_ms(valid_to)
                )
            )
        for table_id in stale:
            self._rates[table_id] = (prints.get(table_id), rating.RateIndex(rates.get(table_id, ())))
        self.loads += len(stale)

    def rates_of(self, account_id: int | None) -> rating.RateIndex | None:
        table_id = self.accounts.get(account_id) if account_id is not None else None
        return self._rates[table_id][1] if table_id is not None else None

    def expire(self) -> None:
        """Check everything again before the next batch."""
        self._next_check = 0.0


def load_parameters(cursor) -> tuple[rating.RatingParameters, int]:
    """The rating parameters and SS_CLIENT_LOW_BALANCE_ALARM, as stored now (a missing row is the default)."""
    cursor.execute("SELECT name, value FROM switching_systemparameter")
    stored = dict(cursor.fetchall())
    params = rating.RatingParameters.from_values(stored)
    try:
        alarm = int(PARAMETERS_BY_NAME["SS_CLIENT_LOW_BALANCE_ALARM"].parse(stored["SS_CLIENT_LOW_BALANCE_ALARM"]))
    except (KeyError, ValueError):
        alarm = 0
    return params, alarm


def rate_records(records: list[Record], catalog: Catalog) -> list[tuple[Record, str]]:
    """Fill each record's fee_time, fee, vendor_cost and rate prefixes/areas in place.

    A customer fee is charged only for the billing modes that bill an
    account (0-3); the vendor cost accrues whatever the mode, since the vendor
    carried the call. An account that does not exist (deleted since) rates at
    nothing: the record is kept for a re-rate. Returns the records that could
    not be rated at all, with why, so that one of them never holds up the rest.
    """
    named = {v for r in records for v in (r.values["account_id"], r.values["vendor_account_id"])}
    missing = named & catalog.missing
    if missing:
        log.warning("CDRs name accounts that do not exist (%s): stored unrated", sorted(missing)[:10])
    params = catalog.params
    failed = []
    for record in records:
        v = record.values
        try:
            rated = rating.rate_call(
                callee_number=v["callee_number"],
                callee_number_out=v["callee_number_out"],
                start_ms=v["start_ms"],
                hold_time_ms=v["hold_time_ms"],
                customer_rates=catalog.rates_of(v["account_id"]) if v["billing_mode"] >= 0 else None,
                vendor_rates=catalog.rates_of(v["vendor_account_id"]),
                params=params,
            )
        except Exception as exc:
            log.exception("CDR %s could not be rated", v["call_uuid"])
            failed.append((record, f"rating failed: {exc!r}"[:500]))
            continue
        v["fee_time"] = rated.customer.fee_time
        v["fee"] = rated.fee
        v["vendor_cost"] = rated.vendor_cost
        v["rate_prefix"], v["rate_area"] = rated.customer.prefix, rated.customer.area[:100]
        v["vendor_rate_prefix"], v["vendor_rate_area"] = rated.vendor.prefix, rated.vendor.area[:100]
    return failed


# ---------------------------------------------------------------------------
# Storing a batch


# The staging table's columns, in the records' terms (times as epoch ms).
COLUMNS = [
    ("call_uuid", "varchar(64)"),
    ("start_ms", "bigint"),
    ("answer_ms", "bigint"),
    ("stop_ms", "bigint"),
    ("hold_time_ms", "bigint"),
    ("fee_time", "integer"),
    ("pdd_ms", "integer"),
    ("caller_number", "text"),
    ("callee_number", "text"),
    ("caller_number_out", "text"),
    ("callee_number_out", "text"),
    ("caller_ip", "inet"),
    ("caller_port", "integer"),
    ("caller_user_agent", "text"),
    ("vendor_ip", "inet"),
    ("account_id", "bigint"),
    ("account_name", "text"),
    ("vendor_account_id", "bigint"),
    ("mapping_gateway_id", "bigint"),
    ("mapping_gateway_name", "text"),
    ("routing_gateway_id", "bigint"),
    ("routing_gateway_name", "text"),
    ("phone_id", "bigint"),
    ("fee", "numeric"),
    ("vendor_cost", "numeric"),
    ("rate_prefix", "text"),
    ("rate_area", "text"),
    ("vendor_rate_prefix", "text"),
    ("vendor_rate_area", "text"),
    ("caller_call_id", "text"),
    ("callee_call_id", "text"),
    ("end_direction", "smallint"),
    ("end_reason", "text"),
    ("sip_status", "smallint"),
    ("billing_mode", "smallint"),
    ("vendors_tried", "jsonb"),
    ("node", "text"),
    ("snapshot_version", "bigint"),
]
COLUMN_NAMES = [name for name, _ in COLUMNS]
_TIMES = {"start_ms": "start_time", "answer_ms": "answer_time", "stop_ms": "stop_time"}

# COPY into a session's temporary table, then ONE statement does the rest: COPY
# is the cheapest way in for a thousand wide rows (a multi-row VALUES or
# unnest() of arrays spent more time building and parsing parameters than
# inserting, and json_to_recordset() of a single parameter, which would save
# COPY's two round trips, cost the server more per row than they cost).
STAGE = "billing_cdr_ingest_stage"
# Created once per database session, emptied by every commit.
CREATE_STAGE_SQL = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE} ({', '.join(f'{n} {k}' for n, k in COLUMNS)}) ON COMMIT DELETE ROWS"
)
COPY_SQL = f"COPY {STAGE} ({', '.join(COLUMN_NAMES)}) FROM STDIN"
INSERT_SQL = """
INSERT INTO billing_cdr ({targets})
SELECT {expressions} FROM {stage} AS r
ORDER BY r.call_uuid, r.start_ms
ON CONFLICT (call_uuid, start_time) DO NOTHING
RETURNING account_id, fee, vendor_account_id, vendor_cost
""".format(
    targets=", ".join(_TIMES.get(name, name) for name in COLUMN_NAMES),
    # Epoch ms to timestamp in integer arithmetic: the unique key must come out the same on every redelivery.
    expressions=", ".join(
        f"'epoch'::timestamptz + r.{name} * interval '1 millisecond'" if name in _TIMES else f"r.{name}"
        for name in COLUMN_NAMES
    ),
    stage=STAGE,
)
# The insert, the money and the answer in one statement (one round trip, one
# plan, prepared once per session: Django leaves psycopg's automatic prepared
# statements off for the sake of connection poolers, and this session keeps a
# temporary table anyway): customers debited by the fee and vendor
# clearing accounts credited by the cost of the rows that came back from the
# insert only, summed per account. ``locked`` takes the row locks in id order
# before any row is updated (ORDER BY is applied before FOR UPDATE locks, and
# the UPDATE reaches a row only through ``locked``): UPDATE ... FROM alone
# would lock in join order, which differs between batches, and two workers
# could wait on each other in a cycle. A balance another transaction changed
# meanwhile is re-read at the lock (READ COMMITTED re-checks the newest row
# version), so no concurrent debit or payment is overwritten. Always one row
# at least: the insert count, with the moved accounts, if any, beside it.
STORE_SQL = f"""
WITH inserted AS ({INSERT_SQL}),
moves AS (
    SELECT id, sum(amount) AS amount
    FROM (
        SELECT account_id, -fee FROM inserted WHERE account_id IS NOT NULL AND fee <> 0
        UNION ALL
        SELECT vendor_account_id, vendor_cost FROM inserted WHERE vendor_account_id IS NOT NULL AND vendor_cost <> 0
    ) AS m (id, amount)
    GROUP BY id
    HAVING sum(amount) <> 0
),
locked AS MATERIALIZED (
    SELECT a.id, m.amount FROM billing_account AS a JOIN moves AS m ON m.id = a.id ORDER BY a.id FOR UPDATE OF a
),
moved AS (
    UPDATE billing_account AS a SET balance = a.balance + l.amount
    FROM locked AS l WHERE a.id = l.id
    RETURNING a.id, a.balance, l.amount, a.account_type, a.low_balance_threshold, a.alarm_email
)
SELECT c.inserted, m.id, m.balance, m.amount, m.account_type, m.low_balance_threshold, m.alarm_email
FROM (SELECT count(*) AS inserted FROM inserted) AS c LEFT JOIN moved AS m ON true
"""
STORE_STATEMENT = "billing_ingest_store"
EXECUTE_STORE_SQL = f"EXECUTE {STORE_STATEMENT}"

_row = operator.itemgetter(*COLUMN_NAMES)  # a record's values in COPY's column order


@dataclasses.dataclass
class Stored:
    """What one transaction did: rows inserted, balances after the money moved, alarms crossed."""

    inserted: int = 0
    duplicates: int = 0
    balances: dict[int, Decimal] = dataclasses.field(default_factory=dict)
    alarms: list[tuple[int, Decimal, Decimal]] = dataclasses.field(default_factory=list)


def store(conn: psycopg.Connection, records: list[Record], low_balance_alarm: int, *, commit: bool) -> Stored:
    """Insert rated records and move money for the rows actually inserted, in the transaction ``conn`` has open.

    With ``commit``, the COMMIT goes in the same round trip as the statement
    (a pipeline): when the statement fails PostgreSQL skips the COMMIT, and
    the caller rolls back.
    """
    result = Stored()
    if not records:
        return result
    cursor = conn.cursor()
    with cursor.copy(COPY_SQL) as copy:
        # Sorted by key here too, so COPY and the INSERT's ORDER BY (the same lock order in every worker) agree.
        for record in sorted(records, key=Record.key.fget):
            copy.write_row(_row(record.values))
    if commit:
        with conn.pipeline():
            cursor.execute(EXECUTE_STORE_SQL)
            conn.execute("COMMIT")
    else:
        cursor.execute(EXECUTE_STORE_SQL)
    rows = cursor.fetchall()
    result.inserted = rows[0][0]
    result.duplicates = len(records) - result.inserted
    for _inserted, account_id, balance, delta, account_type, threshold, alarm_email in rows:
        if account_id is None:
            continue  # no money moved: the row only carries the insert count
        result.balances[account_id] = balance
        limit = alarm_crossed(account_type, alarm_email, threshold, low_balance_alarm, balance - delta, balance)
        if limit is not None:
            result.alarms.append((account_id, balance, limit))
    return result


def alarm_crossed(account_type, alarm_email, threshold, system_threshold, before, after) -> Decimal | None:
    """The threshold a balance move from ``before`` to ``after`` crossed downwards, if the account is alarmed.

    Once per crossing: a move that starts already below the threshold stays quiet. The account's own
    threshold, else the system-wide SS_CLIENT_LOW_BALANCE_ALARM; only customers with an alarm address.
    """
    limit = Decimal(system_threshold) if threshold is None else threshold
    if account_type == "customer" and alarm_email and before >= limit > after:
        return limit
    return None


_ready = weakref.WeakSet()  # the database sessions that have the staging table and the prepared statement


def _ensure_session(conn: psycopg.Connection) -> None:
    """Make the session's staging table and prepare STORE_SQL in it, once per session."""
    if conn in _ready:
        return
    conn.execute(CREATE_STAGE_SQL)
    # A PREPARE outlives the transaction it was made in, even one rolled back (the table may not: see below).
    if conn.execute("SELECT 1 FROM pg_prepared_statements WHERE name = %s", [STORE_STATEMENT]).fetchone() is None:
        conn.execute(f"PREPARE {STORE_STATEMENT} AS {STORE_SQL}")
    # A table made inside a transaction goes if that transaction rolls back: remember the session only once
    # it is sure to stay (a statement prepared meanwhile finds the table made again by name).
    if conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        _ready.add(conn)
    else:
        transaction.on_commit(partial(_ready.add, conn))


def store_batch(records: list[Record], low_balance_alarm: int) -> tuple[Stored, list[tuple[Record, str]]]:
    """Store a batch in one transaction; if PostgreSQL refuses a value, store record by record instead.

    Returns what was stored and the records PostgreSQL refused, with its message.
    """
    try:
        return _store_atomically(records, low_balance_alarm), []
    except RECORD_DB_ERRORS as exc:
        log.warning("batch of %d refused (%s); storing record by record to find the bad one", len(records), exc)
    total, refused = Stored(), []
    for record in records:
        try:
            one = _store_atomically([record], low_balance_alarm)
        except RECORD_DB_ERRORS as exc:
            refused.append((record, f"PostgreSQL refused it: {str(exc).strip()}"[:500]))
            continue
        total.inserted += one.inserted
        total.duplicates += one.duplicates
        total.balances.update(one.balances)
        total.alarms += one.alarms
    return total, refused


def _store_atomically(records, low_balance_alarm) -> Stored:
    """``store`` in a transaction of its own: BEGIN, COPY, then the statement with the COMMIT (four round trips)."""
    connection.ensure_connection()
    conn = connection.connection
    if connection.in_atomic_block or not connection.get_autocommit():
        # Called inside someone else's transaction: stay inside it (a savepoint) and leave the commit to them.
        with transaction.atomic():
            _ensure_session(conn)
            stored = store(conn, records, low_balance_alarm, commit=False)
            for alarm in stored.alarms:
                transaction.on_commit(partial(_queue_alarm, *alarm), robust=True)
        return stored
    # Django's connection is in autocommit: the transaction is ours, opened and closed by hand so that
    # its COMMIT can share the statement's round trip (transaction.atomic() would spend one on each).
    _ensure_session(conn)
    try:
        conn.execute("BEGIN")
        stored = store(conn, records, low_balance_alarm, commit=True)
    except BaseException:
        _rollback(conn)
        raise
    for alarm in stored.alarms:
        try:
            _queue_alarm(*alarm)
        except Exception:
            # As transaction.on_commit(robust=True) would: the CDRs are stored, and an e-mail
            # that could not be queued is no reason to store them again.
            log.exception("low-balance alarm of account %s not queued", alarm[0])
    return stored


def _rollback(conn: psycopg.Connection) -> None:
    if conn.closed or conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        return
    try:
        conn.execute("ROLLBACK")
    except psycopg.Error:
        # A connection that died mid-batch cannot roll back; the caller's error closes it.
        log.debug("rolling back the failed batch failed", exc_info=True)


def _queue_alarm(account_id, balance, limit):
    from .tasks import send_low_balance_alarm

    send_low_balance_alarm.delay(account_id, str(balance), str(limit))


def refresh_live_balances(client: redis.Redis, account_ids: Iterable[int], prefix: str | None = None) -> None:
    """Set the call core's live balance of each account from the committed balance, in one round trip."""
    ids = sorted(set(account_ids))
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, balance FROM billing_account WHERE id = ANY(%s)", [ids])
        current = cursor.fetchall()
    if current:
        keys = Keys(prefix or settings.REDIS_PREFIX)
        client.mset({keys.balance(account_id): to_units(balance) for account_id, balance in current})


# ---------------------------------------------------------------------------
# The consumer


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
        self.stream = stream_key(self.prefix)
        self.dead_stream = dead_stream_key(self.prefix)
        self.keys = Keys(self.prefix)
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.claim_every = claim_every
        self.refresh_every = refresh_every
        self.client = client or redis_client(f"ss-ingest:{self.consumer}", socket_timeout=block_ms / 1000 + 10)
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
                entries.append((_str(entry_id), fields))
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
            self._claim_cursor = _str(cursor)
            if self._claim_cursor == "0-0":
                self._next_claim = time.monotonic() + self.claim_every
            if claimed:
                log.info("claimed %d CDR entries left pending by another consumer", len(claimed))
                return [(_str(entry_id), fields) for entry_id, fields in claimed]
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
        records: dict[tuple[str, int], Record] = {}
        dead: list[tuple[str, str, str]] = []  # entry id, raw record, reason
        for entry_id, fields in entries:
            if not fields:
                continue  # deleted from the stream after it was read: already finished
            raw = fields.get(b"cdr", fields.get("cdr"))
            try:
                record = parse(entry_id, raw)
            except InvalidRecord as exc:
                kept = _str(raw) if raw is not None else json.dumps({_str(k): _str(v) for k, v in fields.items()})
                dead.append((entry_id, kept, str(exc)))
                continue
            # The same call twice in one batch: once is enough (the insert would skip it anyway).
            records.setdefault(record.key, record)

        current: dict[int, Decimal] = {}
        route_counts = None
        if records:
            good = list(records.values())
            with connection.cursor() as cursor:
                self.catalog.prepare(
                    cursor, {v for r in good for v in (r.values["account_id"], r.values["vendor_account_id"])}
                )
            unrated = rate_records(good, self.catalog)
            if unrated:
                left_out = {id(r) for r, _ in unrated}
                good = [r for r in good if id(r) not in left_out]
            stored, refused = store_batch(good, self.catalog.low_balance_alarm)
            result.inserted, result.duplicates = stored.inserted, stored.duplicates
            dead += [(r.entry_id, r.raw, reason) for r, reason in unrated + refused]
            current = stored.balances
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
            pipe.xadd(
                self.dead_stream,
                {"entry_id": entry_id, "reason": reason, "cdr": raw, "consumer": self.consumer, "at_ms": now_ms},
            )
        if current:
            pipe.mset({self.keys.balance(i): to_units(balance) for i, balance in current.items()})
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

    def refresh_all_balances(self) -> int:
        """Rewrite every account's live balance: heals a refresh lost to a Redis outage or a race
        (a payment's refresh and a batch's, each reading the balance after its own commit, may land
        in the other order)."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, balance FROM billing_account")
            current = cursor.fetchall()
        for start in range(0, len(current), 1000):  # many small commands rather than one that holds Redis up
            chunk = current[start : start + 1000]
            self.client.mset({self.keys.balance(i): to_units(balance) for i, balance in chunk})
        return len(current)

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


def _str(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


# ---------------------------------------------------------------------------
# The dead-letter stream, for the portal


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """A CDR record the ingest could not store, with why."""

    id: str
    entry_id: str
    reason: str
    record: str
    consumer: str
    at_ms: int


def dead_letters(limit: int = 100, client: redis.Redis | None = None) -> list[DeadLetter]:
    """The newest ``limit`` dead letters, newest first."""
    client = client or redis_client()
    letters = []
    for letter_id, fields in client.xrevrange(dead_stream_key(), count=limit):
        f = {_str(k): _str(v) for k, v in fields.items()}
        letters.append(
            DeadLetter(
                id=_str(letter_id),
                entry_id=f.get("entry_id", ""),
                reason=f.get("reason", ""),
                record=f.get("cdr", ""),
                consumer=f.get("consumer", ""),
                at_ms=int(f.get("at_ms") or 0),
            )
        )
    return letters


def dead_letter_count(client: redis.Redis | None = None) -> int:
    return (client or redis_client()).xlen(dead_stream_key())


def requeue_dead_letter(letter_id: str, record: str | None = None, client: redis.Redis | None = None) -> str:
    """Put a dead letter's record (or a corrected one) back on the CDR stream and drop the letter."""
    client = client or redis_client()
    if record is None:
        found = client.xrange(dead_stream_key(), min=letter_id, max=letter_id)
        if not found:
            raise KeyError(letter_id)
        record = _str(found[0][1].get(b"cdr", b""))
    pipe = client.pipeline(transaction=True)
    pipe.xadd(stream_key(), {"cdr": record})
    pipe.xdel(dead_stream_key(), letter_id)
    new_id, _ = pipe.execute()
    return _str(new_id)


def discard_dead_letter(letter_id: str, client: redis.Redis | None = None) -> bool:
    """Drop a dead letter for good (the operator has seen it); False if it was not there."""
    return bool((client or redis_client()).xdel(dead_stream_key(), letter_id))
