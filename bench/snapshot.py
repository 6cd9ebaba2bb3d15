"""Benchmark of the configuration snapshot, portal -> Redis -> call core.

Run: .venv/bin/python bench/snapshot.py [--runs N] [--against REF [--rounds R]]

Fills a scratch database (softswitch_bench, created and migrated if missing;
the switch's own database is not touched) with 10,000 rates, 250 mapping and
250 routing gateways, 100,000 black/white list entries and 1,000 phones, then
times each step of a publish and of a load, as the median of N runs, beside a
baseline measured in the same run: what the same bytes cost through a plain
Redis SET/GET, json.dumps/json.loads and zlib alone. Redis keys go under the
"ssbench" prefix and are deleted at the end.

With --against REF (a commit, branch or tag), the code of REF is extracted
into a temporary folder and the publish (build + encode) and the load (decode
+ index) are timed in a subprocess for each tree, old and new alternating,
R rounds; each side fills its own scratch database (REF's gets the suffix
"_against"), and each decodes the other's blob once as a compatibility check.
"""

import argparse
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import scratch  # bench/ is the script's folder, first on sys.path
from scratch import timed

ROOT = Path(__file__).resolve().parents[1]
# A --worker times the tree it is given, not this one; its path must come first before anything is imported.
if "--worker" in sys.argv:
    sys.path.insert(0, sys.argv[sys.argv.index("--worker") + 1])
else:
    sys.path.insert(0, str(ROOT))

BENCH_DB = os.environ.get("BENCH_DB_NAME", "softswitch_bench")
PREFIX = "ssbench"
# Settings read these at import: the scratch database and prefix must be in place before django.setup().
os.environ["DB_NAME"] = BENCH_DB
os.environ["REDIS_PREFIX"] = PREFIX
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "softswitch_portal.settings")

RATES = 10_000
RATE_TABLES = 4
MAPPING_GATEWAYS = 250
ROUTING_GATEWAYS = 250
LIST_GROUPS = 50
LIST_ENTRIES = 100_000
PHONES = 1_000


def ensure_database():
    scratch.ensure_database(BENCH_DB, say=print)


def populate(refill=False):
    """Fill the scratch database, or keep what a previous run left if the counts match (unless ``refill``)."""
    from django.db import connection, transaction

    from billing.models import Account, Rate, RateTable
    from security.models import BlackWhiteListGroup, ListEntry
    from softswitch_portal.switching.models import (
        CallerNumberPool,
        MappingGateway,
        NumberTransformRule,
        Phone,
        RoutingGateway,
        RoutingSchedule,
    )

    if (
        not refill
        and Rate.objects.count() == RATES
        and ListEntry.objects.count() == LIST_ENTRIES
        and MappingGateway.objects.count() == MAPPING_GATEWAYS
        and RoutingGateway.objects.count() == ROUTING_GATEWAYS
        and Phone.objects.count() == PHONES
    ):
        return False
    rng = random.Random(42)
    tables = [m._meta.db_table for m in (Account, RateTable, BlackWhiteListGroup, NumberTransformRule)]
    tables += [m._meta.db_table for m in (RoutingSchedule, CallerNumberPool, MappingGateway, RoutingGateway, Phone)]
    # bulk_create sends no signals, so nothing is published while filling; the benchmark publishes itself.
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")

        rate_tables = RateTable.objects.bulk_create(RateTable(name=f"table {i}") for i in range(RATE_TABLES))
        rates, table_prefixes = [], []
        for table in rate_tables:
            prefixes = set()
            while len(prefixes) < RATES // RATE_TABLES:
                prefixes.add(str(rng.randint(1, 999)) + "".join(rng.choices("0123456789", k=rng.randint(0, 5))))
            table_prefixes.append(sorted(prefixes))
            rates += [
                Rate(
                    rate_table=table,
                    prefix=prefix,
                    area=f"area {prefix}",
                    price_per_minute=f"0.{rng.randint(10, 9999):04d}",
                    first_period=rng.choice((1, 6, 30, 60)),
                    next_period=rng.choice((1, 6, 60)),
                )
                for prefix in sorted(prefixes)  # the same rows in the same order whatever the hash seed
            ]
        Rate.objects.bulk_create(rates, batch_size=2000)

        customers = Account.objects.bulk_create(
            Account(name=f"customer {i}", rate_table=rate_tables[i % RATE_TABLES], credit_limit=10)
            for i in range(MAPPING_GATEWAYS)
        )
        vendors = Account.objects.bulk_create(
            Account(name=f"vendor {i}", account_type="vendor", rate_table=rate_tables[i % RATE_TABLES])
            for i in range(25)
        )
        rules = NumberTransformRule.objects.bulk_create(
            NumberTransformRule(name=f"rule {i}", priority=i % 7, match_prefix=str(i % 10), strip_digits=i % 3)
            for i in range(50)
        )
        groups = BlackWhiteListGroup.objects.bulk_create(
            BlackWhiteListGroup(name=f"list {i}", kind="black" if i % 5 else "white") for i in range(LIST_GROUPS)
        )
        entries = {}
        while len(entries) < LIST_ENTRIES:
            i = len(entries)
            match = "prefix" if i % 10 == 0 else "exact"
            number = str(rng.randint(1, 99)) + "".join(rng.choices("0123456789", k=4 if match == "prefix" else 9))
            entries.setdefault((i % LIST_GROUPS, number, match), None)
        ListEntry.objects.bulk_create(
            (ListEntry(group=groups[g], number=number, match=match) for g, number, match in entries), batch_size=5000
        )
        schedules = RoutingSchedule.objects.bulk_create(
            RoutingSchedule(name=f"schedule {i}", weekdays=[i % 7], start_time=f"{i:02d}:00", end_time="23:30")
            for i in range(10)
        )
        pools = CallerNumberPool.objects.bulk_create(
            CallerNumberPool(name=f"pool {i}", numbers=[f"4420{i:02d}{n:05d}" for n in range(10)]) for i in range(20)
        )

        mapping = MappingGateway.objects.bulk_create(
            MappingGateway(
                name=f"mapping {i}",
                account=customers[i],
                remote_ips=[f"10.{i // 250}.{i % 250}.1"] + ([f"172.16.{i % 250}.0/28"] if i % 5 == 0 else []),
                auth_mode="ip_port" if i % 10 == 0 else "ip",
                remote_port=5060 if i % 10 == 0 else None,
                capacity=100,
                cps_limit=10,
                prefix_forbid=["900", "1900"],
            )
            for i in range(MAPPING_GATEWAYS)
        )
        routing = RoutingGateway.objects.bulk_create(
            RoutingGateway(
                name=f"routing {i}",
                host=f"192.168.{i // 250}.{i % 250 + 1}",
                prefixes=rng.sample(table_prefixes[i % RATE_TABLES], 5),
                priority=rng.randint(1, 100),
                clearing_account=vendors[i % len(vendors)],
                caller_number_pool=pools[i % len(pools)] if i % 3 == 0 else None,
                failover_codes=[486] if i % 4 == 0 else [],
            )
            for i in range(ROUTING_GATEWAYS)
        )
        Phone.objects.bulk_create(
            Phone(username=f"{100000 + i}", password=f"secret-{i:06d}", account=customers[i % len(customers)])
            for i in range(PHONES)
        )

        def link(model, field, pairs):
            through = model._meta.get_field(field).remote_field.through
            f = model._meta.get_field(field)
            through.objects.bulk_create(
                through(**{f"{f.m2m_field_name()}_id": a, f"{f.m2m_reverse_field_name()}_id": b}) for a, b in pairs
            )

        link(MappingGateway, "callee_transforms", [(g.id, rules[(g.id + k) % 50].id) for g in mapping for k in (0, 1)])
        link(MappingGateway, "caller_transforms", [(g.id, rules[g.id % 50].id) for g in mapping])
        link(MappingGateway, "caller_list_groups", [(g.id, groups[g.id % LIST_GROUPS].id) for g in mapping])
        link(MappingGateway, "callee_list_groups", [(g.id, groups[(g.id + 1) % LIST_GROUPS].id) for g in mapping])
        link(RoutingGateway, "callee_transforms", [(g.id, rules[g.id % 50].id) for g in routing])
        link(RoutingGateway, "schedules", [(g.id, schedules[g.id % 10].id) for g in routing if g.id % 5 == 0])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # the planner's statistics, as autovacuum would leave them
    return True


def import_publisher():
    """The snapshot publisher, wherever the tree under test keeps it."""
    try:
        from softswitch_portal.core import publisher
    except ImportError:
        from softswitch_portal.switching import publisher
    return publisher


def fresh_timed(fn, runs):
    """Like scratch.timed, each run after a full collection: a run does not pay for the previous one's garbage."""

    def run():
        gc.collect()
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
        return result

    times = []
    result = None
    for _ in range(runs):
        result = run()
    return statistics.median(times), result


# The figures --against compares, in the order printed.
COMPARED = [
    ("build", "build_snapshot() (queries)"),
    ("encode", "encode_snapshot()"),
    ("publish", "publish = build + encode"),
    ("decode", "decode_snapshot()"),
    ("index", "IndexedSnapshot()"),
    ("load", "load = decode + index"),
]


def worker(runs, blob_out, peer_blob, refill):
    """Fill this tree's scratch database if needed, time the publish and load steps, print them as JSON."""
    import django

    ensure_database()
    django.setup()
    from django.core.management import call_command

    from callcore import contract
    from callcore.snapshot import IndexedSnapshot

    publisher = import_publisher()
    call_command("migrate", verbosity=0)
    populate(refill)

    figures = {}
    figures["build"], snapshot = fresh_timed(publisher._build_consistent, runs)
    figures["encode"], blob = fresh_timed(lambda: contract.encode_snapshot(snapshot), runs)
    figures["publish"], _ = fresh_timed(lambda: contract.encode_snapshot(publisher._build_consistent()), runs)
    figures["decode"], decoded = fresh_timed(lambda: contract.decode_snapshot(blob), runs)
    figures["index"], _ = fresh_timed(lambda: IndexedSnapshot(decoded, 1), runs)
    figures["load"], _ = fresh_timed(lambda: IndexedSnapshot(contract.decode_snapshot(blob), 1), runs)
    Path(blob_out).write_bytes(blob)
    peer = None
    if peer_blob and Path(peer_blob).exists():
        try:
            peer = "same snapshot" if contract.decode_snapshot(Path(peer_blob).read_bytes()) == decoded else "differs"
        except Exception as exc:
            peer = f"refused: {exc}"
    print(json.dumps({"figures": figures, "blob_bytes": len(blob), "peer": peer}))


def against(ref, runs, rounds):
    """Time this tree and ``ref`` alternately in subprocesses; print both medians and their ratio."""
    ref_name = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", ref], check=True, capture_output=True, text=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bench-snapshot-") as tmp:
        old_root = Path(tmp) / "tree"
        old_root.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old_root)], input=archive, check=True)
        sides = {
            "old": (old_root, f"{BENCH_DB}_against", Path(tmp) / "old.blob"),
            "new": (ROOT, BENCH_DB, Path(tmp) / "new.blob"),
        }
        results = {"old": [], "new": []}
        for round_no in range(rounds):
            for side in ("old", "new") if round_no % 2 == 0 else ("new", "old"):
                root, db, blob = sides[side]
                peer = sides["new" if side == "old" else "old"][2]
                done = subprocess.run(
                    [sys.executable, __file__, "--worker", str(root), "--runs", str(runs)]
                    + ["--blob-out", str(blob), "--peer-blob", str(peer)]
                    + (["--refill"] if round_no == 0 else []),  # both sides from the same rows
                    env={**os.environ, "BENCH_DB_NAME": db},
                    cwd=root,
                    capture_output=True,
                    text=True,
                )
                if done.returncode != 0:
                    sys.exit(f"the {side} tree's run failed:\n{done.stderr[-3000:]}")
                results[side].append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(f"round {round_no + 1}/{rounds}: {side} done", file=sys.stderr)

    def median(side, key):
        return statistics.median(r["figures"][key] for r in results[side])

    print()
    print(f"{runs} runs per figure in each of {rounds} rounds, old and new alternating; medians of the rounds' medians")
    print(f"old = {ref} ({ref_name}), new = the working tree")
    print(f"blob: old {results['old'][-1]['blob_bytes']:,} B, new {results['new'][-1]['blob_bytes']:,} B")
    print(f"new decodes the old blob: {results['new'][-1]['peer']}; old decodes the new: {results['old'][-1]['peer']}")
    print()
    print(f"{'step':<32} {'old ms':>9} {'new ms':>9}  new/old")
    print("-" * 62)
    for key, label in COMPARED:
        old, new = median("old", key), median("new", key)
        print(f"{label:<32} {old:>9.2f} {new:>9.2f}  {new / old:.2f}x")


def per_call_us(fn, items):
    start = time.perf_counter()
    for item in items:
        fn(item)
    return (time.perf_counter() - start) * 1e6 / len(items)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per figure (the median is printed)")
    parser.add_argument("--against", metavar="REF", help="compare publish and load with this git ref's code")
    parser.add_argument("--rounds", type=int, default=6, help="with --against: old/new rounds, alternating")
    parser.add_argument("--worker", metavar="TREE", help=argparse.SUPPRESS)
    parser.add_argument("--blob-out", help=argparse.SUPPRESS)
    parser.add_argument("--peer-blob", help=argparse.SUPPRESS)
    parser.add_argument("--refill", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    runs = args.runs
    if args.worker:
        return worker(runs, args.blob_out, args.peer_blob, args.refill)
    if args.against:
        return against(args.against, runs, args.rounds)

    import django

    ensure_database()
    django.setup()

    import json
    import zlib

    import redis
    from django.conf import settings
    from django.core.management import call_command
    from django.db import transaction

    from callcore import contract
    from callcore.snapshot import IndexedSnapshot, SnapshotLoader
    from softswitch_portal.switching.models import RoutingGateway

    publisher = import_publisher()

    call_command("migrate", verbosity=0)
    start = time.perf_counter()
    if populate():
        print(f"filled {BENCH_DB} in {time.perf_counter() - start:.1f} s")

    client = redis.Redis.from_url(settings.REDIS_URL)
    rows = []  # (step, median, min, baseline step or None)

    def row(step, figures, baseline=None):
        rows.append((step, figures[0], figures[1], baseline))
        return figures[2]

    try:
        snapshot = row("build_snapshot() (~20 queries, REPEATABLE READ)", timed(publisher._build_consistent, runs))
        as_dict = row("  snapshot_to_dict()", timed(lambda: contract.snapshot_to_dict(snapshot), runs))
        text = row(
            "  json.dumps(dict)  [baseline: stdlib json]",
            timed(lambda: json.dumps(as_dict, separators=(",", ":"), ensure_ascii=False).encode(), runs),
        )
        row(
            f"  zlib.compress(level {contract.SNAPSHOT_ZLIB_LEVEL})",
            timed(lambda: zlib.compress(text, contract.SNAPSHOT_ZLIB_LEVEL), runs),
        )
        blob = row("encode_snapshot() total", timed(lambda: contract.encode_snapshot(snapshot), runs))
        script = publisher.connection()[1]
        keys = publisher.snapshot_keys()
        row(
            "publish_blob() Lua: INCR+SET+pointer+PUBLISH",
            timed(lambda: publisher.publish_blob(client, script, keys, blob, force=True), runs),
            "redis SET same size",
        )
        row("publish(force=True) end to end", timed(lambda: publisher.publish(force=True), runs))

        def save_gateway():
            with transaction.atomic():
                gateway = RoutingGateway.objects.order_by("id").first()
                gateway.priority = gateway.priority % 100 + 1
                gateway.save()

        row("ORM save of 1 gateway + on-commit publish", timed(save_gateway, runs))

        raw = zlib.decompress(blob)
        row("  zlib.decompress", timed(lambda: zlib.decompress(blob), runs))
        parsed = row("  json.loads  [baseline: stdlib json]", timed(lambda: json.loads(raw), runs))
        row("  snapshot_from_dict() (validate)", timed(lambda: contract.snapshot_from_dict(parsed), runs), "json.loads")
        decoded = row("decode_snapshot() total", timed(lambda: contract.decode_snapshot(blob), runs), "json.loads")
        index = row("IndexedSnapshot() (indexes)", timed(lambda: IndexedSnapshot(decoded, 1), runs))

        with tempfile.TemporaryDirectory() as state_dir:
            loader = SnapshotLoader(client, PREFIX, Path(state_dir) / "snapshot.bin")

            def load_new_version():
                publisher.publish_blob(client, script, keys, blob, force=True)  # untimed below
                start = time.perf_counter()
                assert loader.refresh()
                return (time.perf_counter() - start) * 1000

            times = [load_new_version() for _ in range(runs)]
            rows.append(
                ("loader.refresh(): GET x2+decode+index+disk", statistics.median(times), min(times), "redis GET")
            )
            row("loader.refresh() unchanged (GET current)", timed(loader.refresh, runs))

        payload = os.urandom(len(blob))
        rows.append(
            ("redis SET same size  [baseline]", *timed(lambda: client.set(f"{PREFIX}:bench", payload), runs)[:2], None)
        )
        rows.append(("redis GET same size  [baseline]", *timed(lambda: client.get(f"{PREFIX}:bench"), runs)[:2], None))

        levels = {level: timed(lambda lv=level: zlib.compress(raw, lv), runs) for level in (1, 3, 6, 9)}

        rng = random.Random(7)
        prefixes = [r.prefix for t in decoded.rate_tables for r in t.rates]
        numbers = [rng.choice(prefixes) + "".join(rng.choices("0123456789", k=8)) for _ in range(100_000)]
        table_id = decoded.rate_tables[0].id
        some_group = next(iter(index.list_groups.values()))
        lookup = {number: None for number in numbers[:1000]}
        sources = [f"10.0.{i % 250}.1" for i in range(1000)] + [f"172.16.{i % 250}.5" for i in range(1000)]
        lookups = [
            ("dict.get  [baseline]", per_call_us(lookup.get, numbers)),
            ("route_candidates(callee)", per_call_us(index.route_candidates, numbers)),
            ("rate(table, callee, now)", per_call_us(lambda n: index.rate(table_id, n, 1_900_000_000_000), numbers)),
            ("list group match", per_call_us(some_group.matches, numbers)),
            ("mapping_gateway_for(ip) exact", per_call_us(index.mapping_gateway_for, sources[:1000])),
            ("mapping_gateway_for(ip) via CIDR", per_call_us(index.mapping_gateway_for, sources[1000:])),
        ]
    finally:
        for key in client.scan_iter(f"{PREFIX}:*", count=1000):
            client.delete(key)

    baselines = {
        "redis SET same size": next(r[1] for r in rows if r[0].startswith("redis SET")),
        "redis GET same size": next(r[1] for r in rows if r[0].startswith("redis GET")),
        "redis GET": next(r[1] for r in rows if r[0].startswith("redis GET")),
        "json.loads": next(r[1] for r in rows if r[0].strip().startswith("json.loads")),
    }
    print()
    print(
        f"data: {RATES} rates in {RATE_TABLES} tables, "
        f"{MAPPING_GATEWAYS} mapping + {ROUTING_GATEWAYS} routing gateways,"
    )
    print(f"      {LIST_ENTRIES} list entries in {LIST_GROUPS} groups, {PHONES} phones; {runs} runs per figure")
    print(f"blob: {len(raw):,} bytes of JSON, {len(blob):,} compressed ({len(raw) / len(blob):.1f}x)")
    print(
        "zlib: "
        + ", ".join(f"level {lv} {len(r[2]):,} B in {r[0]:.1f} ms" for lv, r in levels.items())
        + f" (the contract uses {contract.SNAPSHOT_ZLIB_LEVEL})"
    )
    print()
    print(f"{'step':<52} {'median ms':>10} {'min ms':>8}  ratio to baseline")
    print("-" * 100)
    for step, median, minimum, baseline in rows:
        ratio = f"{median / baselines[baseline]:.1f}x {baseline}" if baseline else ""
        print(f"{step:<52} {median:>10.2f} {minimum:>8.2f}  {ratio}")
    print()
    print(f"{'lookup (100k numbers, 1k IPs each)':<52} {'us/call':>10}  ratio to dict.get")
    print("-" * 100)
    for name, micros in lookups:
        print(f"{name:<52} {micros:>10.2f}  {micros / lookups[0][1]:.1f}x")


if __name__ == "__main__":
    main()
