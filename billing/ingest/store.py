"""Storing a batch of rated records: the rows inserted once, and money moved only for the rows inserted.

One transaction per batch, four round trips to PostgreSQL: BEGIN, COPY into
the session's staging table (two), and one prepared statement doing the
insert and the money, sent with its COMMIT (``STORE_SQL``). Customers are
debited by the fee, vendor clearing accounts credited by the vendor cost,
after locking the accounts in id order (two workers never wait on each other
in a cycle). A customer whose balance the batch took below its alarm
threshold gets the low-balance e-mail, queued after the commit.
"""

from __future__ import annotations

import dataclasses
import logging
import operator
import weakref
from decimal import Decimal
from functools import partial

import psycopg
from django.db import DataError, IntegrityError, connection, transaction

from softswitch_portal.core.redis import prefix

from .. import balances, fraud
from .records import Record

log = logging.getLogger("billing.ingest")

# A value PostgreSQL refused: find the record that did it and set it aside.
RECORD_DB_ERRORS = (DataError, IntegrityError, psycopg.DataError, psycopg.IntegrityError)

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
    ("callee_number_routed", "text"),
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
    ("estimated", "boolean"),
    ("decision_trace", "text"),
    ("disconnected_by", "text"),
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
RETURNING call_uuid, account_id, fee, vendor_account_id, vendor_cost
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
SELECT c.inserted, c.keys, m.id, m.balance, m.amount, m.account_type, m.low_balance_threshold, m.alarm_email
FROM (
    -- Which rows were inserted, for the post-call fraud rules, only when not all of them were.
    SELECT count(*) AS inserted, CASE WHEN count(*) < (SELECT count(*) FROM {STAGE}) THEN array_agg(call_uuid) END
    FROM inserted
) AS c (inserted, keys) LEFT JOIN moved AS m ON true
"""
STORE_STATEMENT = "billing_ingest_store"
EXECUTE_STORE_SQL = f"EXECUTE {STORE_STATEMENT}"

_row = operator.itemgetter(*COLUMN_NAMES)  # a record's values in COPY's column order


@dataclasses.dataclass
class Stored:
    """What one transaction did: rows inserted, balances after the money moved, alarms crossed."""

    inserted: int = 0
    duplicates: int = 0
    inserted_records: list[Record] = dataclasses.field(default_factory=list)
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
    result.inserted, keys = rows[0][0], rows[0][1]
    result.duplicates = len(records) - result.inserted
    if keys is None:
        result.inserted_records = records if result.inserted else []
    else:
        inserted = set(keys)
        result.inserted_records = [r for r in records if r.values["call_uuid"] in inserted]
    for _inserted, _keys, account_id, balance, delta, account_type, threshold, alarm_email in rows:
        if account_id is None:
            continue  # no money moved: the row only carries the insert count
        result.balances[account_id] = balance
        limit = balances.alarm_crossed(
            account_type, alarm_email, threshold, low_balance_alarm, balance - delta, balance
        )
        if limit is not None:
            result.alarms.append((account_id, balance, limit))
    return result


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
                transaction.on_commit(partial(balances.queue_alarm, *alarm), robust=True)
            transaction.on_commit(partial(judge, stored), robust=True)
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
            balances.queue_alarm(*alarm)
        except Exception:
            # As transaction.on_commit(robust=True) would: the CDRs are stored, and an e-mail
            # that could not be queued is no reason to store them again.
            log.exception("low-balance alarm of account %s not queued", alarm[0])
    judge(stored)
    return stored


def judge(stored: Stored) -> None:
    """The post-call fraud rules on the rows the committed batch inserted (billing.fraud), never twice on one row.

    A failure is logged, not raised: the rows are stored, and storing them again would count nothing.
    """
    try:
        fraud.rules.after_store([r.values for r in stored.inserted_records], prefix())
    except Exception:
        log.exception("post-call fraud rules not evaluated on a batch of %d", len(stored.inserted_records))


def _rollback(conn: psycopg.Connection) -> None:
    if conn.closed or conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        return
    try:
        conn.execute("ROLLBACK")
    except psycopg.Error:
        # A connection that died mid-batch cannot roll back; the caller's error closes it.
        log.debug("rolling back the failed batch failed", exc_info=True)
