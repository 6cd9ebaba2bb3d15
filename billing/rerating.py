"""Re-rating: rate a period's CDRs again with the current rates, and move balances by the difference once.

A job (``RerateJob``) names a period and either one account or one rate
table. Its scope is per side of a call:

* an account: the customer fee of its calls as a customer, and the vendor
  cost of the calls it carried as a vendor clearing account;
* a rate table: the customer fee of calls by accounts now on that table, and
  the vendor cost of calls carried by vendor accounts now on it.

A side out of scope keeps its figures, so a job for one customer never moves
a vendor's balance. Rating is ``billing.catalogue``'s ``Catalog.rate``, as
the ingest's (same parameters, same rate lookup, same "customer fee only for
billing modes >= 0" rule), so a CDR re-rated with unchanged rates comes out as
the ingest stored it.

The period is cut into chunks (UTC days, the CDR table's partitions). Each
chunk is one transaction that, with the job row locked:

1. skips the chunk if its key is already in ``job.chunks_done`` (a Celery
   redelivery, or a second worker on the same job);
2. locks the chunk's CDRs in scope (FOR UPDATE, in (start_time, id) order),
   re-rates them, UPDATEs the changed ones and records them as
   ``RerateChange`` rows (the difference report);
3. locks the accounts whose balance moves in id order (as the ingest does)
   and moves each by the sum of its differences: a customer by minus the fee
   difference, a vendor clearing account by plus the cost difference;
4. adds the chunk's key to ``chunks_done`` and its rows to ``done``.

A crash in the middle rolls the chunk back whole; the next run does it again.

The number rated is the ingest's too (``rating.rated_number``): in
SERVER_BILLING_GATEWAY_ROUTE_PREFIX mode 0 the callee as routed, so re-rating
a period corrects calls the ingest once rated on the callee as received. Rows
stored before the CDR carried the routed callee have it empty: for them the
routed number is unknown and the callee as received is rated, as before; in
mode 1 the callee as sent is rated either way.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from decimal import Decimal
from functools import partial

import redis
from django.db import connection, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from softswitch_portal.core.redis import Waiter, redis_client

from . import balances
from .catalogue import Catalog, load_parameters
from .models import Account, RerateChange, RerateJob, RerateJobStatus

log = logging.getLogger("billing.rerating")

CHUNK = dt.timedelta(days=1)


def chunks(start: dt.datetime, end: dt.datetime, size: dt.timedelta = CHUNK) -> list[tuple[dt.datetime, dt.datetime]]:
    """[start, end) cut at UTC day boundaries (the CDR partitions), so each chunk prunes to one partition."""
    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    cut = dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC)
    out = []
    while cut < end:
        upper = cut + size
        low, high = max(cut, start), min(upper, end)
        if low < high:
            out.append((low, high))
        cut = upper
    return out


def chunk_key(low: dt.datetime) -> str:
    return low.astimezone(dt.UTC).isoformat()


def _scope(job: RerateJob) -> tuple[list[int], list[int]]:
    """The account ids whose customer fee, and whose vendor cost, the job re-rates."""
    if job.account_id:
        return [job.account_id], [job.account_id]
    ids = list(Account.objects.filter(rate_table_id=job.rate_table_id).values_list("id", flat=True))
    return ids, ids


# The CDRs of a chunk in scope, locked, with their rating inputs; start_ms exactly (extract gives numeric).
_SELECT_SQL = """
SELECT id, start_time, (extract(epoch FROM start_time) * 1000)::bigint AS start_ms,
       call_uuid, callee_number, callee_number_routed, callee_number_out, hold_time_ms, billing_mode,
       account_id, vendor_account_id, fee, vendor_cost, fee_time,
       rate_prefix, rate_area, vendor_rate_prefix, vendor_rate_area
FROM billing_cdr
WHERE start_time >= %s AND start_time < %s AND (account_id = ANY(%s) OR vendor_account_id = ANY(%s))
ORDER BY start_time, id
FOR UPDATE
"""

_COUNT_SQL = """
SELECT count(*) FROM billing_cdr
WHERE start_time >= %s AND start_time < %s AND (account_id = ANY(%s) OR vendor_account_id = ANY(%s))
"""

_UPDATE_SQL = """
UPDATE billing_cdr AS c
SET fee = d.fee, fee_time = d.fee_time, rate_prefix = d.rate_prefix, rate_area = d.rate_area,
    vendor_cost = d.vendor_cost, vendor_rate_prefix = d.vendor_rate_prefix, vendor_rate_area = d.vendor_rate_area
FROM unnest(%s::bigint[], %s::timestamptz[], %s::numeric[], %s::integer[], %s::text[], %s::text[],
            %s::numeric[], %s::text[], %s::text[])
     AS d(id, start_time, fee, fee_time, rate_prefix, rate_area, vendor_cost, vendor_rate_prefix, vendor_rate_area)
WHERE c.id = d.id AND c.start_time = d.start_time
"""


def count_in_scope(job: RerateJob) -> int:
    customers, vendors = _scope(job)
    with connection.cursor() as cursor:
        cursor.execute(_COUNT_SQL, [job.start, job.end, customers, vendors])
        return cursor.fetchone()[0]


def run_chunk(job_id: int, low: dt.datetime, high: dt.datetime) -> bool:
    """Re-rate one chunk of a job in one transaction; False if it had been applied already."""
    key = chunk_key(low)
    moved: list[int] = []
    with transaction.atomic():
        job = RerateJob.objects.select_for_update().get(pk=job_id)
        if key in job.chunks_done:
            return False
        customers, vendors = _scope(job)
        with connection.cursor() as cursor:
            cursor.execute(_SELECT_SQL, [low, high, customers, vendors])
            columns = [c.name for c in cursor.description]
            rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
            changes, deltas = _rerate_rows(cursor, rows, set(customers), set(vendors))
            if changes:
                cursor.execute(
                    _UPDATE_SQL,
                    [
                        [c["id"] for c in changes],
                        [c["start_time"] for c in changes],
                        *([c["new"][name] for c in changes] for name in _RATED),
                    ],
                )
                RerateChange.objects.bulk_create(
                    RerateChange(
                        job_id=job.pk,
                        cdr_id=c["id"],
                        start_time=c["start_time"],
                        call_uuid=c["call_uuid"],
                        callee_number=c["callee_number"],
                        account_id=c["account_id"],
                        vendor_account_id=c["vendor_account_id"],
                        old_fee=c["fee"],
                        new_fee=c["new"]["fee"],
                        old_vendor_cost=c["vendor_cost"],
                        new_vendor_cost=c["new"]["vendor_cost"],
                        old_rate_prefix=c["rate_prefix"],
                        new_rate_prefix=c["new"]["rate_prefix"],
                    )
                    for c in changes
                )
            deltas = {account_id: delta for account_id, delta in deltas.items() if delta}
            if deltas:
                moved = sorted(deltas)
                # Locks first, in id order, like the ingest: no lock cycle with it or with payments.
                cursor.execute("SELECT id FROM billing_account WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [moved])
                _params, system_threshold = load_parameters(cursor)
                cursor.execute(
                    "UPDATE billing_account AS a SET balance = a.balance + d.delta "
                    "FROM unnest(%s::bigint[], %s::numeric[]) AS d(id, delta) WHERE a.id = d.id "
                    "RETURNING a.id, a.balance, a.account_type, a.low_balance_threshold, a.alarm_email",
                    [moved, [deltas[i] for i in moved]],
                )
                # A correction that charges more can take an account under its threshold: the same
                # alarm as the ingest's, sent once the chunk is committed.
                for account_id, after, account_type, threshold, email in cursor.fetchall():
                    before = after - deltas[account_id]
                    limit = balances.alarm_crossed(account_type, email, threshold, system_threshold, before, after)
                    if limit is not None:
                        transaction.on_commit(partial(balances.queue_alarm, account_id, after, limit), robust=True)
        RerateJob.objects.filter(pk=job.pk).update(
            chunks_done=[*job.chunks_done, key], done=F("done") + len(rows), changed=F("changed") + len(changes)
        )
        if moved:
            transaction.on_commit(partial(_refresh_live, moved), robust=True)
    return True


# The figures rating fills, in _UPDATE_SQL's order after id and start_time.
_RATED = ("fee", "fee_time", "rate_prefix", "rate_area", "vendor_cost", "vendor_rate_prefix", "vendor_rate_area")


def _rerate_rows(cursor, rows, customers: set[int], vendors: set[int]):
    """Rate rows again as the ingest rates; returns (changed rows with "new", balance delta per account)."""
    catalog = Catalog(recheck=0)
    catalog.prepare(cursor, {r[side] for r in rows for side in ("account_id", "vendor_account_id")})
    rated, failed = [], []
    for r in rows:
        try:
            rated.append(catalog.rate_row(r).columns())
        except Exception as exc:
            log.exception("CDR %s could not be rated", r["call_uuid"])
            failed.append(f"rating failed: {exc!r}"[:500])
    if failed:
        raise RuntimeError(f"{len(failed)} CDRs could not be rated: {failed[0]}")
    changes = []
    deltas: dict[int, Decimal] = defaultdict(Decimal)
    for row, v in zip(rows, rated, strict=True):
        new = {name: row[name] for name in _RATED}
        if row["account_id"] in customers:
            new.update(fee=v["fee"], fee_time=v["fee_time"], rate_prefix=v["rate_prefix"], rate_area=v["rate_area"])
        if row["vendor_account_id"] in vendors:
            new.update(
                vendor_cost=v["vendor_cost"],
                vendor_rate_prefix=v["vendor_rate_prefix"],
                vendor_rate_area=v["vendor_rate_area"],
            )
        if all(new[name] == row[name] for name in _RATED):
            continue
        row["new"] = new
        changes.append(row)
        if row["account_id"] is not None:
            deltas[row["account_id"]] -= new["fee"] - row["fee"]
        if row["vendor_account_id"] is not None:
            deltas[row["vendor_account_id"]] += new["vendor_cost"] - row["vendor_cost"]
    return changes, deltas


def _refresh_live(account_ids):
    client = redis_client(Waiter.JOB)
    try:
        balances.refresh_live_balances(client, account_ids)
    except redis.RedisError as exc:
        log.warning("live balances of %s not refreshed after re-rating: %s", account_ids, exc)
    finally:
        client.close()


def run_job(job_id: int) -> RerateJob:
    """Run (or resume) a job: every chunk not done yet, then mark it done. Safe to call again at any point."""
    job = RerateJob.objects.get(pk=job_id)
    if job.status == RerateJobStatus.DONE:
        return job
    updates = {"status": RerateJobStatus.RUNNING, "error": ""}
    if job.started is None:
        updates.update(started=timezone.now(), total=count_in_scope(job))
    RerateJob.objects.filter(pk=job_id).update(**updates)
    try:
        for low, high in chunks(job.start, job.end):
            run_chunk(job_id, low, high)
    except Exception as exc:
        RerateJob.objects.filter(pk=job_id).update(status=RerateJobStatus.FAILED, error=repr(exc)[:2000])
        raise
    RerateJob.objects.filter(pk=job_id).update(status=RerateJobStatus.DONE, finished=timezone.now())
    return RerateJob.objects.get(pk=job_id)


def account_totals(job: RerateJob) -> list[dict]:
    """Per account: the fee and vendor-cost differences and the balance move, by SQL aggregates."""
    changes = RerateChange.objects.filter(job=job)
    fee = dict(
        changes.filter(account_id__isnull=False)
        .values_list("account_id")
        .annotate(d=Sum(F("new_fee") - F("old_fee")))
        .values_list("account_id", "d")
    )
    cost = dict(
        changes.filter(vendor_account_id__isnull=False)
        .values_list("vendor_account_id")
        .annotate(d=Sum(F("new_vendor_cost") - F("old_vendor_cost")))
        .values_list("vendor_account_id", "d")
    )
    names = dict(Account.objects.filter(Q(pk__in=fee.keys()) | Q(pk__in=cost.keys())).values_list("pk", "name"))
    totals = []
    zero = Decimal(0)
    for account_id in sorted(fee.keys() | cost.keys(), key=lambda i: names.get(i, "")):
        fee_delta, cost_delta = fee.get(account_id) or zero, cost.get(account_id) or zero
        if not fee_delta and not cost_delta:
            continue
        totals.append(
            {
                "account_id": account_id,
                "account": names.get(account_id, f"#{account_id}"),
                "fee_difference": fee_delta,
                "cost_difference": cost_delta,
                "balance_change": cost_delta - fee_delta,
            }
        )
    return totals


def report_totals(job: RerateJob) -> dict:
    return RerateChange.objects.filter(job=job).aggregate(
        old_fee=Sum("old_fee"),
        new_fee=Sum("new_fee"),
        old_vendor_cost=Sum("old_vendor_cost"),
        new_vendor_cost=Sum("new_vendor_cost"),
    )
