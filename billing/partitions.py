"""Daily range partitions of the CDR table.

Retention is a DROP of a day's partition and the CDR portal's time filters
prune partitions. A DEFAULT partition catches any record whose day has no
partition yet, so an insert never fails for want of one; when that day's
partition is created later, its rows are moved out of the default first
(PostgreSQL refuses to attach a range the default already holds rows for).
"""

import datetime as dt

from django.db import connection, transaction

# Matches billing.models.CDR column for column (account_id comes from 0001's
# state; the other gateway ids are added by 0002's AddField, callee_number_routed
# by 0009's ALTER TABLE).
CREATE_CDR_TABLE = """
CREATE TABLE billing_cdr (
    id bigserial NOT NULL,
    call_uuid varchar(64) NOT NULL,
    start_time timestamp with time zone NOT NULL,
    answer_time timestamp with time zone NULL,
    stop_time timestamp with time zone NULL,
    hold_time_ms bigint NOT NULL DEFAULT 0,
    fee_time integer NOT NULL DEFAULT 0,
    pdd_ms integer NULL,
    caller_number varchar(64) NOT NULL DEFAULT '',
    callee_number varchar(64) NOT NULL DEFAULT '',
    caller_number_out varchar(64) NOT NULL DEFAULT '',
    callee_number_out varchar(64) NOT NULL DEFAULT '',
    caller_ip inet NULL,
    caller_port integer NULL,
    caller_user_agent varchar(200) NOT NULL DEFAULT '',
    vendor_ip inet NULL,
    account_name varchar(100) NOT NULL DEFAULT '',
    mapping_gateway_name varchar(100) NOT NULL DEFAULT '',
    routing_gateway_name varchar(100) NOT NULL DEFAULT '',
    fee numeric(18, 4) NOT NULL DEFAULT 0,
    vendor_cost numeric(18, 4) NOT NULL DEFAULT 0,
    rate_prefix varchar(32) NOT NULL DEFAULT '',
    rate_area varchar(100) NOT NULL DEFAULT '',
    vendor_rate_prefix varchar(32) NOT NULL DEFAULT '',
    vendor_rate_area varchar(100) NOT NULL DEFAULT '',
    caller_call_id varchar(200) NOT NULL DEFAULT '',
    callee_call_id varchar(200) NOT NULL DEFAULT '',
    end_direction smallint NULL,
    end_reason varchar(40) NOT NULL DEFAULT '',
    sip_status smallint NULL,
    billing_mode smallint NOT NULL,
    vendors_tried jsonb NOT NULL DEFAULT '[]'::jsonb,
    node varchar(64) NOT NULL DEFAULT '',
    snapshot_version bigint NULL,
    ingested timestamp with time zone NOT NULL DEFAULT now(),
    account_id bigint NULL,
    -- A partitioned table's keys must include the partition column.
    PRIMARY KEY (id, start_time),
    CONSTRAINT billing_cdr_call_uuid_start_uniq UNIQUE (call_uuid, start_time)
) PARTITION BY RANGE (start_time);
CREATE TABLE billing_cdr_default PARTITION OF billing_cdr DEFAULT;
"""

DROP_CDR_TABLE = "DROP TABLE billing_cdr CASCADE;"

DAYS_AHEAD = 7
DAYS_BEHIND = 2


def partition_name(day):
    return f"billing_cdr_p{day:%Y%m%d}"


def existing_partitions(cursor):
    cursor.execute(
        """
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname = 'billing_cdr'
        """
    )
    return {row[0] for row in cursor.fetchall()}


def create_partition(cursor, day):
    """Create the partition for one UTC day, moving its rows out of the default partition."""
    name = partition_name(day)
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    cursor.execute(f"CREATE TABLE {name} (LIKE billing_cdr INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    cursor.execute(
        f"""
        WITH moved AS (
            DELETE FROM billing_cdr_default WHERE start_time >= %s AND start_time < %s RETURNING *
        )
        INSERT INTO {name} SELECT * FROM moved
        """,
        [start, end],
    )
    cursor.execute(f"ALTER TABLE billing_cdr ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)", [start, end])
    return name


def ensure_partitions(today=None, days_behind=DAYS_BEHIND, days_ahead=DAYS_AHEAD, using_cursor=None):
    """Make sure a partition exists for each day in the window; return the names created."""
    today = today or dt.datetime.now(dt.UTC).date()
    created = []

    def run(cursor):
        have = existing_partitions(cursor)
        for offset in range(-days_behind, days_ahead + 1):
            day = today + dt.timedelta(days=offset)
            if partition_name(day) not in have:
                created.append(create_partition(cursor, day))

    if using_cursor is not None:
        run(using_cursor)
    else:
        with transaction.atomic(), connection.cursor() as cursor:
            # One creator at a time: two workers racing would both try to attach.
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('billing_cdr_partitions'))")
            run(cursor)
    return created


def ensure_partitions_migration(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        ensure_partitions(using_cursor=cursor)
