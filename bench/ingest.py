"""Benchmark of the CDR ingest: records read from the stream, rated, stored and charged per second.

Run: .venv/bin/python bench/ingest.py [--records N] [--batch-sizes 100,1000] [--runs R] [--against CHECKOUT]
     .venv/bin/python bench/ingest.py --fraud-rules   (post-call fraud rules on against off, in one run)

Fills a scratch database (softswitch_bench_ingest, created and migrated if
missing; the switch's own database is not touched) with 4 rate tables of
2,500 rates, 200 customers and 20 vendor clearing accounts, then for each
batch size appends N realistic records (60% answered, hold times up to an
hour, a few illegal calls) to a stream under the "ssbench-ingest" prefix and
times ``billing.ingest.Ingester`` draining it in this process: decode,
validate, rate both ways, one transaction per batch with the ``ON CONFLICT``
insert and the balance updates, the live-balance refresh, XACK and XDEL.

Beside it, in the same run and at the same batch size, two baselines so the
figures read as ratios: the Redis part alone (XREADGROUP + XACK + XDEL of the
same entries, nothing else), and a plain INSERT of the same rows, already
parsed and rated, one transaction per batch the way the ingest writes them
(COPY into a temporary table, INSERT ... SELECT) but with no conflict check,
no RETURNING and no money. The ingest's own time is also split by stage.

The best of R runs is printed (the machine is shared; the best is the least
disturbed), and, run by run, the one-worker ingest's throughput as a ratio of
the plain INSERT's measured right after it, which another load on the machine
skews less than bests taken minutes apart. Keys under the prefix and the CDR
rows are deleted at the end.

Before and after a change: ``git worktree add /tmp/before HEAD~1`` (or any
copy of the old tree), then ``--against /tmp/before``. That checkout's
billing/ingest.py (from before the ingest became a package) is timed on the
same records in this process, alternating with this tree's run by run, each
followed by its own plain INSERT: two
invocations of the benchmark minutes apart differ by more than most changes
on a machine others are using.
"""

import argparse
import hashlib
import importlib.util
import os
import random
import resource
import statistics
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import scratch  # bench/ is the script's folder, first on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BENCH_DB = os.environ.get("BENCH_INGEST_DB_NAME", "softswitch_bench_ingest")
PREFIX = "ssbench-ingest"
# Settings read these at import: the scratch database and prefix must be in place before django.setup().
os.environ["DB_NAME"] = BENCH_DB
os.environ["REDIS_PREFIX"] = PREFIX
os.environ.setdefault("LOG_LEVEL", "WARNING")
# As in production: DEBUG's cursor wrapper records every query, which is no part of the ingest's cost.
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "softswitch_portal.settings")

RATE_TABLES = 4
RATES_PER_TABLE = 2_500
CUSTOMERS = 200
VENDORS = 20


def ensure_database():
    scratch.ensure_database(BENCH_DB, say=print)


def populate(rng):
    """The rate tables and accounts; kept from a previous run when the counts match."""
    from django.db import connection, transaction

    from billing.models import Account, Rate, RateTable

    if (
        Rate.objects.count() == RATE_TABLES * RATES_PER_TABLE
        and Account.objects.count() == CUSTOMERS + VENDORS
        and RateTable.objects.count() == RATE_TABLES
    ):
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE billing_payment, billing_account, billing_rate, billing_ratetable CASCADE")
        tables = RateTable.objects.bulk_create(RateTable(name=f"table {i}") for i in range(RATE_TABLES))
        rates = []
        for table in tables:
            prefixes = set()
            while len(prefixes) < RATES_PER_TABLE:
                prefixes.add(str(rng.randint(1, 99)) + "".join(rng.choices("0123456789", k=rng.randint(0, 4))))
            rates += [
                Rate(
                    rate_table=table,
                    prefix=prefix,
                    area=f"area {prefix}",
                    price_per_minute=f"0.{rng.randint(10, 9999):04d}",
                    first_period=rng.choice((1, 6, 30, 60)),
                    next_period=rng.choice((1, 6, 60)),
                    connect_fee=rng.choice(("0", "0", "0.01")),
                )
                for prefix in sorted(prefixes)
            ]
        Rate.objects.bulk_create(rates, batch_size=2000)
        Account.objects.bulk_create(
            Account(name=f"customer {i}", rate_table=tables[i % RATE_TABLES], credit_limit=100)
            for i in range(CUSTOMERS)
        )
        Account.objects.bulk_create(
            Account(name=f"vendor {i}", account_type="vendor", rate_table=tables[(i + 1) % RATE_TABLES])
            for i in range(VENDORS)
        )


def records(rng, count, run_tag):
    """Records as the call core writes them (contract.CdrRecord), today, for random customers, vendors and
    destinations."""
    from billing.models import Account
    from callcore.contract import BillingMode, CdrRecord, VendorAttempt, encode_cdr

    customers = list(Account.objects.filter(account_type="customer").values_list("id", "name"))
    vendors = list(Account.objects.filter(account_type="vendor").values_list("id", flat=True))
    now_ms = int(time.time() * 1000)
    lines = []
    for n in range(count):
        start = now_ms - rng.randint(60_000, 3_600_000)
        call_id, node = f"{run_tag}-{n}@10.0.{n % 250}.{n % 199}", f"node-{n % 3}"
        call = {
            "call_uuid": hashlib.sha256(f"{node}\n{call_id}\n{start}".encode()).hexdigest()[:32],
            "caller_call_id": call_id,
            "start_ms": start,
            "stop_ms": start,
            "node": node,
            "snapshot_version": 42,
        }
        callee = str(rng.randint(1, 99)) + "".join(rng.choices("0123456789", k=9))
        if rng.random() < 0.03:  # an illegal call: no account, no vendor
            lines.append(encode_cdr(CdrRecord(**call, callee_number=callee, caller_ip="203.0.113.9",
                                              billing_mode=BillingMode.ILLEGAL, end_direction=2,
                                              end_reason="illegal_source", sip_status=403)))  # fmt: skip
            continue
        account_id, name = rng.choice(customers)
        answered = rng.random() < 0.6
        hold = rng.randint(1_000, 3_600_000) if answered else 0
        answer = start + rng.randint(1_000, 8_000)
        call.update(
            caller_number="1" + "".join(rng.choices("0123456789", k=10)),
            callee_number=callee,
            caller_number_out="1" + "".join(rng.choices("0123456789", k=10)),
            callee_number_out=callee,
            caller_ip=f"192.0.2.{n % 250 + 1}",
            caller_port=5060,
            caller_user_agent="Sonus SBC",
            vendor_ip=f"198.51.100.{n % 20 + 1}",
            account_id=account_id,
            account_name=name,
            vendor_account_id=rng.choice(vendors),
            routing_gateway_id=n % 20 + 1,
            routing_gateway_name=f"vendor gw {n % 20}",
            mapping_gateway_id=account_id,
            mapping_gateway_name=f"trunk {account_id}",
            answer_ms=answer if answered else None,
            stop_ms=answer + hold if answered else answer,
            hold_time_ms=hold,
            pdd_ms=rng.randint(100, 4000),
            end_direction=rng.choice((0, 1)),
            end_reason="normal_clearing" if answered else "vendor_failed",
            sip_status=200 if answered else rng.choice((486, 503, 404)),
            billing_mode=1,
            callee_call_id=f"b-{run_tag}-{n}",
            vendors_tried=[VendorAttempt(n % 20 + 1, f"vendor gw {n % 20}", f"198.51.100.{n % 20 + 1}",
                                         200 if answered else 503)],
        )  # fmt: skip
        lines.append(encode_cdr(CdrRecord(**call)))
    return lines


def fill_stream(client, stream, lines):
    for start in range(0, len(lines), 5000):
        pipe = client.pipeline(transaction=False)
        for line in lines[start : start + 5000]:
            pipe.xadd(stream, {"cdr": line})
        pipe.execute()


def reset(client):
    from django.db import connection

    for key in client.scan_iter(f"{PREFIX}:*", count=1000):
        client.delete(key)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE billing_cdr")
        cursor.execute("UPDATE billing_account SET balance = 0")
        # Every batch leaves a dead version of each account it charged; without a vacuum between runs
        # (autovacuum may be off, or not due yet) each run would pay for the bloat the previous ones left.
        cursor.execute("VACUUM billing_account")


class StageTimer:
    """Adds up the wall time spent in chosen functions, given as (module, name) pairs."""

    def __init__(self, stages):
        self.stages = stages
        self.spent = defaultdict(float)
        self.originals = {}

    def __enter__(self):
        for module, name in self.stages:
            original = getattr(module, name)
            self.originals[module, name] = original

            def timed(*args, _original=original, _name=name, **kwargs):
                started = time.perf_counter()
                try:
                    return _original(*args, **kwargs)
                finally:
                    self.spent[_name] += time.perf_counter() - started

            setattr(module, name, timed)
        return self

    def __exit__(self, *exc):
        for (module, name), original in self.originals.items():
            setattr(module, name, original)


def stages_of(ingest):
    """The decode, rate and store functions of an ingest, where its consumer looks them up."""
    if hasattr(ingest, "store_batch"):  # the single module of before
        return [(ingest, "parse"), (ingest, "rate_records"), (ingest, "store_batch")]
    from billing.ingest import records, store

    stages = [(records, "parse"), (records, "rate_records"), (store, "store_batch")]
    if hasattr(store, "judge"):
        stages.append((store, "judge"))  # the post-call fraud rules, inside store_batch's time
    return stages


def process_cpu(pid=None):
    """CPU seconds (user + system) used so far by this process, or by another one (a PostgreSQL backend)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_ingest(client, lines, batch_size, workers=1, ingest=None):
    """Drain the stream with ``workers`` consumers of the group, each in its own thread and database session.

    ``ingest``: the module to time, this tree's billing.ingest unless told (``load_ingest``).
    """
    from django.db import connection

    from billing.models import CDR

    if ingest is None:
        from billing import ingest

    reset(client)
    fill_stream(client, ingest.stream_key(), lines)
    ingesters = [
        ingest.Ingester(f"bench-{n}", batch_size=batch_size, block_ms=0, refresh_every=0) for n in range(workers)
    ]
    ingesters[0].ensure_group()
    errors = []

    def work(ingester):
        try:
            ingester.run(drain=True)
        except Exception as exc:  # the benchmark reports it below
            errors.append(exc)
        finally:
            connection.close()

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    cpu_before = process_cpu(), process_cpu(backend)
    with StageTimer(stages_of(ingest)) as stages:
        started = time.perf_counter()
        if workers == 1:
            ingesters[0].run(drain=True)
        else:
            threads = [threading.Thread(target=work, args=(ingester,)) for ingester in ingesters]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        elapsed = time.perf_counter() - started
    stored = CDR.objects.count()
    inserted = sum(ingester.totals.inserted for ingester in ingesters)
    if errors or stored != len(lines) or inserted != len(lines):
        raise SystemExit(f"ingest stored {stored} of {len(lines)} records ({inserted} inserted, errors {errors})")
    for ingester in ingesters:
        ingester.client.close()
    cpu = process_cpu() - cpu_before[0], process_cpu(backend) - cpu_before[1]
    # With several threads the stages overlap: their shares are of the summed thread time, roughly.
    return elapsed, {name: spent / workers for name, spent in stages.spent.items()}, cpu


def load_ingest(checkout):
    """billing/ingest.py of another checkout, loaded beside this tree's as ``billing.ingest_against``.

    Only that file comes from there: what it imports (rating, models, callcore) is this tree's.
    """
    from callcore import contract

    if not hasattr(contract, "SharedLiveKeys"):
        contract.SharedLiveKeys = contract.Keys  # that file's name for the keys this tree's Keys holds
    path = Path(checkout).resolve() / "billing" / "ingest.py"
    spec = importlib.util.spec_from_file_location("billing.ingest_against", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def time_against(client, lines, batch_size, module, into):
    """One run of the --against checkout's ingest on ``lines``, and the plain INSERT right after it."""
    elapsed, _stages, cpu = time_ingest(client, lines, batch_size, ingest=module)
    into["ingest"].append(elapsed)
    into["cpu"].append(cpu)
    into["ratios"].append(time_plain_insert(lines, batch_size) / elapsed)


def time_redis_only(client, lines, batch_size):
    """XREADGROUP + XACK + XDEL of the same entries: the floor the stream sets."""
    from billing import ingest

    reset(client)
    stream = ingest.stream_key()
    fill_stream(client, stream, lines)
    client.xgroup_create(stream, ingest.GROUP, id="0")
    started = time.perf_counter()
    while True:
        reply = client.xreadgroup(ingest.GROUP, "bench", {stream: ">"}, count=batch_size)
        if not reply:
            break
        ids = [entry_id for entry_id, _ in reply[0][1]]
        pipe = client.pipeline(transaction=True)
        pipe.xack(stream, ingest.GROUP, *ids)
        pipe.xdel(stream, *ids)
        pipe.execute()
    return time.perf_counter() - started


def time_plain_insert(lines, batch_size):
    """The same rows, parsed and rated beforehand, COPYed and INSERTed per batch with no conflict check or money."""
    from django.db import connection, transaction

    from billing.catalogue import Catalog
    from billing.ingest import records, store

    rows = [records.parse(str(n), line) for n, line in enumerate(lines)]
    catalog = Catalog()
    with connection.cursor() as cursor:
        catalog.prepare(cursor, {r.values["account_id"] for r in rows} | {r.values["vendor_account_id"] for r in rows})
        cursor.execute("TRUNCATE billing_cdr")
    records.rate_records(rows, catalog)
    plain = store.INSERT_SQL.split("ON CONFLICT")[0]
    started = time.perf_counter()
    for start in range(0, len(rows), batch_size):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(store.CREATE_STAGE_SQL)
            with cursor.cursor.copy(store.COPY_SQL) as copy:
                for row in rows[start : start + batch_size]:
                    copy.write_row([row.values[name] for name in store.COLUMN_NAMES])
            cursor.execute(plain)
    return time.perf_counter() - started


def set_post_call_rules(on: bool) -> None:
    """Every post-call fraud rule switched on or off (their _ENABLED system parameters), read afresh."""
    from django.db import connection

    from billing import fraud
    from callcore.contract import POST_CALL_RULES, rule_params

    with connection.cursor() as cursor:
        for rule in POST_CALL_RULES:
            cursor.execute(
                "INSERT INTO switching_systemparameter (name, value, updated) VALUES (%s, %s, now())"
                " ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                [rule_params(rule).enabled, "1" if on else "0"],
            )
    fraud.rules.reset()


def time_post_call_rules(client, rng, records_per_run, runs, sizes):
    """The ingest with the post-call fraud rules on against off, on the same records, alternating run by run."""
    for size in sizes:
        best, cpu, ratios, judged = {True: float("inf"), False: float("inf")}, {}, [], []
        for run in range(runs):
            lines = records(rng, records_per_run, f"f{size}r{run}-{time.time_ns()}")
            elapsed = {}
            for on in (True, False) if run % 2 == 0 else (False, True):  # neither always goes first
                set_post_call_rules(on)
                elapsed[on], stages, used = time_ingest(client, lines, size)
                if elapsed[on] < best[on]:
                    best[on], cpu[on] = elapsed[on], used
                if on:
                    judged.append(stages["judge"] / elapsed[on])
            ratios.append(elapsed[False] / elapsed[True])
        n = records_per_run
        print(f"\nbatch size {size}")
        for on in (True, False):
            worker_us, backend_us = (seconds / n * 1e6 for seconds in cpu[on])
            print(f"  post-call rules {'on ' if on else 'off'}  {n / best[on]:>9,.0f} records/s"
                  f"   CPU per record: worker {worker_us:.0f} us + PostgreSQL backend {backend_us:.0f} us")  # fmt: skip
        # The rules' own share of the ingest's wall time (their SQL and Redis round trips included): steadier than
        # two throughputs on a machine others load.
        print(f"  time in the rules (store.judge), share of the ingest's: median {statistics.median(judged):.1%}"
              f" ({' '.join(f'{j:.1%}' for j in judged)})")  # fmt: skip
        by_run = " ".join(f"{r:.2f}" for r in ratios)
        print(f"  on / off, best against best: {best[False] / best[True]:.2f}x;"
              f" run by run: {by_run} (median {statistics.median(ratios):.2f})")  # fmt: skip
    set_post_call_rules(True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch-sizes", default="100,1000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--against",
        metavar="CHECKOUT",
        help="also time CHECKOUT's billing/ingest.py (say, a `git worktree` of the commit before a change) on the "
        "same records, alternating with this tree's run by run in this process: a before/after that another load "
        "on the machine skews far less than two invocations minutes apart",
    )
    parser.add_argument(
        "--fraud-rules",
        action="store_true",
        help="instead of the baselines: the ingest with every post-call fraud rule on (billing.fraud) against all "
        "off, on the same records, alternating which goes first run by run",
    )
    args = parser.parse_args()

    import django

    django.setup()
    ensure_database()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from softswitch_portal.core.redis import Waiter, redis_client

    rng = random.Random(7)
    populate(rng)
    client = redis_client(Waiter.JOB)
    against = load_ingest(args.against) if args.against else None
    sizes = [int(size) for size in args.batch_sizes.split(",")]
    print(f"{args.records} records per run, best of {args.runs}; rate tables: {RATE_TABLES} x {RATES_PER_TABLE}, "
          f"{CUSTOMERS} customers, {VENDORS} vendors")  # fmt: skip
    print(f"load average at the start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (other work skews figures)")
    try:
        if args.fraud_rules:
            time_post_call_rules(client, rng, args.records, args.runs, sizes)
            return
        for size in sizes:
            best = {"ingest": float("inf"), "ingest x2": float("inf"), "redis": float("inf"), "insert": float("inf")}
            best_stages, best_cpu, ratios = {}, (0, 0), []
            other = {"ingest": [], "ratios": [], "cpu": []}  # the --against checkout's, run by run
            for run in range(args.runs):
                lines = records(rng, args.records, f"b{size}r{run}-{time.time_ns()}")
                if against is not None and run % 2 == 0:  # first every other run: neither always goes first
                    time_against(client, lines, size, against, other)
                elapsed, stages, cpu = time_ingest(client, lines, size)
                if elapsed < best["ingest"]:
                    best["ingest"], best_stages, best_cpu = elapsed, stages, cpu
                # The plain INSERT right after the ingest it is compared with: both see much the same load.
                insert = time_plain_insert(lines, size)
                ratios.append(insert / elapsed)
                best["insert"] = min(best["insert"], insert)
                if against is not None and run % 2 == 1:
                    time_against(client, lines, size, against, other)
                best["ingest x2"] = min(best["ingest x2"], time_ingest(client, lines, size, workers=2)[0])
                best["redis"] = min(best["redis"], time_redis_only(client, lines, size))
            n = args.records
            print(f"\nbatch size {size}")
            print(f"  ingest, one worker (parse, rate, insert+charge, ack) {n / best['ingest']:>9,.0f} records/s")
            print(f"  ingest, two workers in one group                   {n / best['ingest x2']:>9,.0f} records/s")
            print(f"  baseline: XREADGROUP+XACK+XDEL only                {n / best['redis']:>9,.0f} records/s"
                  f"   one worker = {best['redis'] / best['ingest']:.2f}x of it")  # fmt: skip
            print(f"  baseline: plain INSERT of the rated rows           {n / best['insert']:>9,.0f} records/s"
                  f"   one worker = {best['insert'] / best['ingest']:.2f}x of it")  # fmt: skip
            # On a shared machine the best of each can come from runs minutes apart, under other loads.
            print(f"  one worker / plain INSERT, run by run: {' '.join(f'{r:.2f}' for r in ratios)}"
                  f" (median {statistics.median(ratios):.2f})")  # fmt: skip
            rest = best["ingest"] - sum(v for k, v in best_stages.items() if k != "judge")  # judge: in store_batch
            split = ", ".join(f"{name} {spent / best['ingest']:.0%}" for name, spent in best_stages.items())
            print(f"  one worker's time by stage: {split}, Redis and the rest {rest / best['ingest']:.0%}")
            client_us, server_us = (seconds / n * 1e6 for seconds in best_cpu)
            total_us = client_us + server_us
            print(f"  CPU per record: worker {client_us:.0f} us + its PostgreSQL backend {server_us:.0f} us"
                  f" = {total_us:.0f} us ({1e6 / total_us:,.0f}/s if they had the CPU to themselves)")  # fmt: skip
            if against is not None:
                fastest = other["ingest"].index(min(other["ingest"]))  # its CPU, as above: the best run's
                worker_us, backend_us = (seconds / n * 1e6 for seconds in other["cpu"][fastest])
                print(f"  against {args.against}: one worker {n / other['ingest'][fastest]:,.0f} records/s,"
                      f" / plain INSERT run by run: {' '.join(f'{r:.2f}' for r in other['ratios'])}"
                      f" (median {statistics.median(other['ratios']):.2f}); CPU per record:"
                      f" worker {worker_us:.0f} us + backend {backend_us:.0f} us")  # fmt: skip
        print(f"\nload average (1, 5, 15 min) at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        reset(client)
        client.close()


if __name__ == "__main__":
    main()
