"""Benchmark of the CDR portal's queries on a large, realistic CDR table.

Run: .venv/bin/python bench/cdr_query.py [--rows N | --quick] [--runs 20] [--regenerate] [--explain] [--only TEXT]

Fills a scratch database (softswitch_bench_cdr, or softswitch_bench_cdr_<rows>
for another size; created and migrated if missing, the switch's own database
is not touched) with 10 million CDRs over the last 30 days, written with
COPY in start-time order as the ingester would write them: a few hundred
customer accounts and gateways with skewed traffic, 5% illegal calls from a
few hundred source IPs, 40% connected. A later run reuses the rows when
their count matches (generating 10 million took 17 minutes on the 2-core
dev machine, --quick 200,000 twenty seconds). Then VACUUM ANALYZE: the state
autovacuum reaches minutes after such a load, done now so it does not run
during the timings.

Each case calls the portal's own view (RequestFactory, a superuser) with the
query string an operator's click produces, so the SQL is the portal's (the
filterset, the keyset page, the totals aggregate, the report queries) and the
time includes rendering the page. "db" is the time inside PostgreSQL calls
(a connection execute wrapper). p50/p95 over --runs runs after a warm-up,
beside baselines measured in the same run, and beside what the list's old
OFFSET paging costs to reach the same deep row. --explain prints EXPLAIN
(ANALYZE, BUFFERS) of every query a case runs.
"""

import argparse
import bisect
import datetime as dt
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path

import scratch  # bench/ is the script's folder, first on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FULL_ROWS = 10_000_000
QUICK_ROWS = 200_000
DAYS = 30
CUSTOMERS = 300
VENDORS = 40
ROUTING_GATEWAYS = 200
ATTACKER_IPS = 300
ILLEGAL_SHARE = 0.05
CONNECTED_SHARE = 0.40


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=FULL_ROWS, help="CDRs to generate (default 10 million)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} CDRs instead")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per case (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per case first (default 3)")
    parser.add_argument("--regenerate", action="store_true", help="throw the rows away and generate them again")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of each case's SQL")
    parser.add_argument("--only", default="", help="time only the cases whose name contains this (and the baselines)")
    args = parser.parse_args()
    if args.quick:
        args.rows = QUICK_ROWS
    return args


ARGS = parse_args() if __name__ == "__main__" else None
ROWS = ARGS.rows if ARGS else FULL_ROWS
BENCH_DB = os.environ.get("BENCH_DB_NAME") or (
    "softswitch_bench_cdr" if ROWS == FULL_ROWS else f"softswitch_bench_cdr_{ROWS}"
)
# Settings read these at import: the scratch database must be in place before django.setup().
os.environ["DB_NAME"] = BENCH_DB
os.environ["REDIS_PREFIX"] = "ssbench-cdr"
os.environ.setdefault("LOG_LEVEL", "WARNING")
# Timings as in production: DEBUG off (no query log, no debug template annotations).
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "softswitch_portal.settings")


def ensure_database():
    scratch.ensure_database(BENCH_DB, say=print)


# The switch's configuration the CDRs refer to.


def ensure_entities():
    """Customers with a mapping gateway each, vendor clearing accounts and routing gateways (made once)."""
    from django.db import transaction

    from billing.models import Account, RateTable
    from softswitch_portal.switching.models import MappingGateway, RoutingGateway

    if (
        MappingGateway.objects.filter(name__startswith="bench-in-").count() == CUSTOMERS
        and RoutingGateway.objects.filter(name__startswith="bench-out-").count() == ROUTING_GATEWAYS
    ):
        return load_entities()
    with transaction.atomic():
        table, _ = RateTable.objects.get_or_create(name="bench retail")
        customers = Account.objects.bulk_create(
            Account(name=f"bench customer {i:03d}", rate_table=table, credit_limit=50) for i in range(CUSTOMERS)
        )
        vendors = Account.objects.bulk_create(
            Account(name=f"bench vendor {i:02d}", account_type="vendor") for i in range(VENDORS)
        )
        MappingGateway.objects.bulk_create(
            MappingGateway(name=f"bench-in-{i:03d}", account=account, remote_ips=[f"10.1.{i // 250}.{i % 250 + 1}"])
            for i, account in enumerate(customers)
        )
        RoutingGateway.objects.bulk_create(
            RoutingGateway(
                name=f"bench-out-{i:03d}",
                host=f"10.2.{i // 250}.{i % 250 + 1}",
                prefixes=[str(1 + i % 9)],
                clearing_account=vendors[i % VENDORS],
            )
            for i in range(ROUTING_GATEWAYS)
        )
    return load_entities()


def load_entities():
    from softswitch_portal.switching.models import MappingGateway, RoutingGateway

    mapping = list(
        MappingGateway.objects.filter(name__startswith="bench-in-").select_related("account").order_by("name")
    )
    routing = list(RoutingGateway.objects.filter(name__startswith="bench-out-").order_by("name"))
    return mapping, routing


# Generation


COLUMNS = (
    "call_uuid", "start_time", "answer_time", "stop_time", "hold_time_ms", "fee_time", "pdd_ms",
    "caller_number", "callee_number", "caller_number_out", "callee_number_out", "caller_ip", "caller_port",
    "caller_user_agent", "vendor_ip", "account_id", "account_name", "vendor_account_id", "mapping_gateway_id",
    "mapping_gateway_name", "routing_gateway_id", "routing_gateway_name", "fee", "vendor_cost", "rate_prefix",
    "rate_area", "caller_call_id", "callee_call_id", "end_direction", "end_reason", "sip_status", "billing_mode",
    "vendors_tried", "node",
)  # fmt: skip
# Calls per hour of the day, relative: quiet nights, busy office hours.
HOURLY = (2, 1, 1, 1, 1, 2, 4, 7, 10, 12, 12, 12, 11, 12, 12, 12, 11, 10, 8, 7, 6, 5, 4, 3)
# (callee prefix, area, price per minute in 1/10000)
DESTINATIONS = (
    ("1", "USA", 100),
    ("44", "UK", 200),
    ("447", "UK mobile", 600),
    ("49", "Germany", 150),
    ("86", "China", 150),
    ("91", "India", 250),
    ("234", "Nigeria", 1200),
    ("52", "Mexico", 180),
)
SCANNERS = ("friendly-scanner", "sipvicious", "sipcli/v1.8", "VaxSIPUserAgent", "pplsip")
# (end reason, SIP status, end direction, share of the failed legitimate calls, vendors tried?)
FAILURES = (
    ("vendor_failed", 503, 2, 0.35, True),
    ("caller_cancel", 487, 0, 0.30, True),
    ("vendor_rejected", 486, 1, 0.15, True),
    ("vendor_timeout", 408, 2, 0.08, True),
    ("no_route", 404, 2, 0.08, False),
    ("balance_insufficient", 402, 2, 0.04, False),
)


def ts(moment):
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f+00")


def hour_slots(rows, now):
    """(start, end, calls) for every hour of the DAYS days before ``now``, calls following HOURLY."""
    window_start = now - dt.timedelta(days=DAYS)
    slot = window_start.replace(minute=0, second=0, microsecond=0)
    slots = []
    while slot < now:
        low, high = max(slot, window_start), min(slot + dt.timedelta(hours=1), now)
        slots.append([low, high, HOURLY[slot.hour] * (high - low).total_seconds() / 3600])
        slot += dt.timedelta(hours=1)
    weight = sum(s[2] for s in slots)
    for s in slots:
        s[2] = int(rows * s[2] / weight)
    for s in slots[: rows - sum(s[2] for s in slots)]:
        s[2] += 1
    return slots


def generate(rows, mapping, routing, now):
    """COPY ``rows`` CDRs over the DAYS days before ``now``, in start-time order, one COPY per day."""
    from django.db import connection

    rng = random.Random(20261126)
    customers = [
        (str(g.account_id), g.account.name, str(g.id), g.name, g.remote_ips[0], f"4{i % 9 + 1}{i:03d}")
        for i, g in enumerate(mapping)
    ]
    vendors = [(str(g.id), g.name, g.host, str(g.clearing_account_id)) for g in routing]
    pools = {
        # Skewed: a few big customers, vendors and attackers carry most of the traffic.
        "customers": (customers, cumulative([1 / (i + 1) ** 0.8 for i in range(len(customers))])),
        "vendors": (vendors, cumulative([1 / (i + 1) ** 0.6 for i in range(len(vendors))])),
        "attackers": (
            [f"198.18.{i // 200}.{i % 200 + 1}" for i in range(ATTACKER_IPS)],
            cumulative([1 / (i + 1) for i in range(ATTACKER_IPS)]),
        ),
        "failures": (FAILURES, cumulative([f[3] for f in FAILURES])),
    }
    copy_sql = f"COPY billing_cdr ({', '.join(COLUMNS)}) FROM STDIN"
    written = 0
    started = time.perf_counter()
    days = {}
    for slot in hour_slots(rows, now):
        days.setdefault(slot[0].date(), []).append(slot)
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
    for day, slots in days.items():
        # One COPY per day, written an hour at a time: PostgreSQL files one hour while Python makes the next.
        with connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
            for low, high, calls in slots:
                span = (high - low).total_seconds()
                lines = []
                for offset in sorted(rng.random() * span for _ in range(calls)):
                    written += 1
                    lines.append(cdr_line(rng, written, low + dt.timedelta(seconds=offset), pools))
                copy.write("".join(lines))
        rate = written / (time.perf_counter() - started)
        print(f"  {day}: {sum(s[2] for s in slots):>9,} CDRs   total {written:>11,}   {rate:>8,.0f}/s", flush=True)
    return written


def cumulative(weights):
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def pick(rng, pool):
    items, cum = pool
    return items[bisect.bisect(cum, rng.random() * cum[-1])]


def cdr_line(rng, n, start, pools):
    """One CDR as a line of COPY text (tab-separated, \\N for NULL)."""
    N = "\\N"
    uuid = f"bench-{n:09d}"
    callee_prefix, area, price = DESTINATIONS[n * 7919 % len(DESTINATIONS)]
    callee = f"{callee_prefix}{rng.randrange(10**8, 10**9)}"
    if rng.random() < ILLEGAL_SHARE:
        ip = pick(rng, pools["attackers"])
        stop = start + dt.timedelta(milliseconds=rng.randrange(5, 200))
        fields = (
            uuid, ts(start), N, ts(stop), "0", "0", N, str(rng.randrange(100, 9999)), "00" + callee, "", "", ip,
            str(rng.choice((5060, 5061, 5070))), rng.choice(SCANNERS), N, N, "", N, N, "", N, "", "0", "0", "", "",
            f"{n:x}@{ip}", "", "2", "illegal_source", "403", "-2", "[]", "node-1",
        )  # fmt: skip
        return "\t".join(fields) + "\n"
    account_id, account_name, gateway_id, gateway_name, ip, caller_prefix = pick(rng, pools["customers"])
    route_id, route_name, route_ip, vendor_id = pick(rng, pools["vendors"])
    caller = f"{caller_prefix}{rng.randrange(10**6, 10**7)}"
    tried = []
    answer = N
    hold_ms = fee_time = fee = cost = 0
    pdd = rng.randrange(1500, 9000)
    if rng.random() < CONNECTED_SHARE / (1 - ILLEGAL_SHARE):
        reason, status, direction, routed = "normal_clearing", 200, rng.choice((0, 1)), True
        if rng.random() < 0.15:
            # Failed over from another vendor first.
            tried.append((*pick(rng, pools["vendors"])[:3], rng.choice((503, 408, 480))))
        tried.append((route_id, route_name, route_ip, 200))
        hold_ms = min(int(rng.lognormvariate(4.2, 1.0) * 1000), 3 * 3600 * 1000)
        answered = start + dt.timedelta(milliseconds=pdd)
        answer = ts(answered)
        stop = answered + dt.timedelta(milliseconds=hold_ms)
        fee_time = math.ceil(hold_ms / 6000) * 6
        fee = round(price * fee_time / 60 / 100)  # price in 1/10000 per minute -> fee in cents
        cost = round(fee * rng.uniform(0.72, 0.9))
    else:
        reason, status, direction, _, routed = pick(rng, pools["failures"])
        if routed:
            for _ in range(rng.choice((1, 1, 2, 3)) - 1):
                tried.append((*pick(rng, pools["vendors"])[:3], rng.choice((503, 408, 480))))
            tried.append((route_id, route_name, route_ip, status))
        stop = start + dt.timedelta(milliseconds=pdd + rng.randrange(0, 20_000))
    attempts = (f'{{"gateway_id":{g},"gateway":"{name}","ip":"{vip}","status":{s}}}' for g, name, vip, s in tried)
    vendors_json = "[" + ",".join(attempts) + "]"
    fields = (
        uuid, ts(start), answer, ts(stop), str(hold_ms), str(fee_time), str(pdd), caller, callee, caller,
        callee if routed else "", ip, "5060", "", route_ip if routed else N, account_id, account_name,
        vendor_id if routed else N, gateway_id, gateway_name, route_id if routed else N, route_name if routed else "",
        f"{fee // 100}.{fee % 100:02d}", f"{cost // 100}.{cost % 100:02d}", callee_prefix, area,
        f"{n:x}@{ip}", f"{n:x}-b2b" if routed else "", str(direction), reason, str(status), "1",
        vendors_json, "node-1" if n % 2 else "node-2",
    )  # fmt: skip
    return "\t".join(fields) + "\n"


def prepare_rows(rows, regenerate):
    """Generate the rows, or keep those of a previous run when their count matches."""
    from django.db import connection

    from billing.partitions import ensure_partitions

    mapping, routing = ensure_entities()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM billing_cdr")
        have = cursor.fetchone()[0]
    if have == rows and not regenerate:
        print(f"reusing {have:,} CDRs in {BENCH_DB}")
        return mapping, routing
    print(f"generating {rows:,} CDRs in {BENCH_DB} (found {have:,})")
    now = dt.datetime.now(dt.UTC)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE billing_cdr")
    ensure_partitions(today=now.date(), days_behind=DAYS, days_ahead=1)
    started = time.perf_counter()
    generate(rows, mapping, routing, now)
    loaded = time.perf_counter() - started
    print(f"COPY: {rows:,} CDRs in {loaded:.0f} s ({rows / loaded:,.0f}/s)")
    started = time.perf_counter()
    connection.set_autocommit(True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) billing_cdr")
    print(f"VACUUM ANALYZE: {time.perf_counter() - started:.0f} s")
    return mapping, routing


# Timing


class DatabaseTimer:
    """Sums the time spent in PostgreSQL calls (an execute wrapper around every query)."""

    def __init__(self):
        self.seconds = 0.0
        self.queries = 0
        self.sql = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.queries += 1
            self.sql.append((sql, params))


def local(moment):
    from django.utils import timezone

    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def view_case(view, path, params, user, expect="", **kwargs):
    from django.test import RequestFactory
    from django.urls import resolve

    factory = RequestFactory()
    callable_view = view.as_view()

    def run():
        request = factory.get(path, params)
        request.user = user
        request.resolver_match = resolve(path)
        response = callable_view(request, **kwargs)
        assert response.status_code == 200, (path, params, response.status_code)
        body = response.render().content if hasattr(response, "render") else response.content
        assert expect.encode() in body, (path, params, f"{expect!r} not in the page")
        return body

    return run


def lookup_case(kind, text, user, expect):
    from django.test import RequestFactory

    from softswitch_portal.generic.lookups import lookup_view

    factory = RequestFactory()

    def run():
        request = factory.get(f"/lookup/{kind}/", {"q": text})
        request.user = user
        response = lookup_view(request, kind)
        assert response.status_code == 200, (kind, text, response.status_code)
        assert expect.encode() in response.content, (kind, text, f"{expect!r} not in the answer")
        return response.content

    return run


def measure(run, runs, warmup):
    from django.db import connection

    for _ in range(warmup):
        run()
    totals, dbs, queries = [], [], 0
    last_sql = []
    for _ in range(runs):
        timer = DatabaseTimer()
        with connection.execute_wrapper(timer):
            started = time.perf_counter()
            run()
            totals.append((time.perf_counter() - started) * 1000)
        dbs.append(timer.seconds * 1000)
        queries = timer.queries
        last_sql = timer.sql
    return totals, dbs, queries, last_sql


def pct(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


def explain(sql_list):
    from django.db import connection

    with connection.cursor() as cursor:
        for sql, params in sql_list:
            if not sql.lstrip().upper().startswith("SELECT") or "django_session" in sql:
                continue
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            print("    " + sql[:300].replace("\n", " ") + (" ..." if len(sql) > 300 else ""))
            for (line,) in cursor.fetchall():
                print("      " + line)


def main():
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Max

    from billing.models import CDR, Account
    from billing.views import cdrs
    from billing.views import reports as report_views
    from softswitch_portal.generic.keyset import encode_key

    ensure_database()
    call_command("migrate", verbosity=0)
    mapping, routing = prepare_rows(ROWS, ARGS.regenerate)
    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_superuser": True})

    anchor = CDR.objects.aggregate(last=Max("start_time"))["last"]
    # Both bounds given, so the cases mean the same on reused rows generated days ago; whole
    # minutes (the form's precision), so a week is exactly the 7 days the list totals at most.
    end = (anchor + dt.timedelta(minutes=1)).replace(second=0, microsecond=0)
    until, hour_ago, week_ago = local(end), local(end - dt.timedelta(hours=1)), local(end - dt.timedelta(days=7))
    busiest = mapping[0]  # the customer with the most traffic (weights fall with the index)
    account = busiest.account
    day_start = (anchor - dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    day_from, day_to = local(day_start), local(day_start + dt.timedelta(days=1))
    attacker = "198.18.0.1"
    deep = CDR.objects.filter(start_time__lte=anchor - dt.timedelta(days=20)).order_by("-start_time", "-id").first()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM billing_cdr WHERE start_time > %s", [deep.start_time])
        deep_offset = cursor.fetchone()[0]
    report_day = anchor.date()

    def cdr_list(params, totals):
        # "Billed minutes" is in the totals strip: a "+totals" case that lost its totals fails loudly.
        return view_case(cdrs.CDRListView, "/billing/cdrs/", params, user, expect="Billed minutes" if totals else "")

    def report(view, path, days, **params):
        first = (report_day - dt.timedelta(days=days - 1)).isoformat()
        return view_case(view, path, {"date_from": first, "date_to": report_day.isoformat(), **params}, user)

    cases = [
        ("CDR list: first page, no filter", cdr_list({}, totals=False)),
        (
            "CDR list: last hour, billing mode 1 (+totals)",
            cdr_list({"start_time_after": hour_ago, "start_time_before": until, "billing_mode": "1"}, totals=True),
        ),
        (
            "CDR list: one account's day (+totals)",
            cdr_list({"account": account.pk, "start_time_after": day_from, "start_time_before": day_to}, totals=True),
        ),
        (
            "CDR list: one gateway's week (+totals)",
            cdr_list({"mapping_gateway": busiest.pk, "start_time_after": week_ago, "start_time_before": until}, True),
        ),
        (
            "CDR list: illegal calls by source IP, week (+totals)",
            cdr_list(
                {"billing_mode": "-2", "caller_ip": attacker, "start_time_after": week_ago, "start_time_before": until},
                totals=True,
            ),
        ),
        (
            f"CDR list: keyset page {deep_offset // 50 + 1:,} (row {deep_offset:,})",
            cdr_list({"after": encode_key(deep.start_time, deep.pk)}, totals=False),
        ),
        ("CDR detail page", view_case(cdrs.CDRView, f"/billing/cdrs/{deep.pk}/", {}, user, pk=deep.pk)),
        # What the filter form's account box asks as the operator types (generic.lookups).
        (
            "Lookup: accounts matching 'customer 01'",
            lookup_case("account", "customer 01", user, expect="bench customer 01"),
        ),
        ("Lookup: mapping gateways matching an IP", lookup_case("mapping-gateway", "10.1.0.", user, expect="bench-in")),
        (
            "Report: revenue by day, 30 days, one account",
            report(report_views.RevenueReportView, "/billing/reports/revenue/", 30, group_by="day", account=account.pk),
        ),
        (
            "Report: revenue by day, 7 days, all accounts",
            report(report_views.RevenueReportView, "/billing/reports/revenue/", 7, group_by="day"),
        ),
        (
            "Report: gateway bill, 7 days, all mapping gws",
            report(report_views.GatewayBillView, "/billing/reports/gateway-bill/", 7, group_by="total", side="mapping"),
        ),
        (
            "Report: gateway bill, 7 days, all routing gws",
            report(report_views.GatewayBillView, "/billing/reports/gateway-bill/", 7, group_by="total", side="routing"),
        ),
        (
            "Report: vendor clearing, 7 days",
            report(report_views.VendorClearingView, "/billing/reports/vendor-clearing/", 7, group_by="total"),
        ),
        (
            "Report: account balances, 7 days",
            report(report_views.AccountBalanceReportView, "/billing/reports/account-balances/", 7),
        ),
    ]

    def select_one():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    def account_by_pk():
        Account.objects.get(pk=account.pk)

    def offset_page():
        # What the list did before keyset pages: OFFSET to the same row.
        list(CDR.objects.order_by("-start_time", "-id")[deep_offset : deep_offset + 50])

    baselines = [
        ("baseline: SELECT 1 round trip", select_one),
        ("baseline: account by primary key (ORM)", account_by_pk),
    ]
    print(f"\n{ROWS:,} CDRs, last at {anchor:%Y-%m-%d %H:%M} UTC; account {account.name}, gateway {busiest.name}")
    print(f"{ARGS.runs} runs per case after {ARGS.warmup} warm-up runs; times in ms\n")
    header = f"{'case':<52} {'p50':>8} {'p95':>8} {'db p50':>8} {'db p95':>8} {'queries':>7} {'p50/SELECT 1':>12}"
    print(header)
    print("-" * len(header))
    base = None
    cases.append((f"old OFFSET paging to row {deep_offset:,} (SQL only)", offset_page))
    cases = [(name, run) for name, run in cases if ARGS.only.lower() in name.lower()]
    for name, run in baselines + cases:
        if name.startswith("baseline"):
            # Cheap and jittery on a shared machine: many runs, so the ratios stand on a steady median.
            runs, warmup = max(10 * ARGS.runs, 200), ARGS.warmup
        elif "OFFSET" in name:
            runs, warmup = max(3, ARGS.runs // 4), 1
        else:
            runs, warmup = ARGS.runs, ARGS.warmup
        totals, dbs, queries, sql = measure(run, runs, warmup)
        p50 = statistics.median(totals)
        if base is None:
            base = p50
        print(
            f"{name:<52} {p50:>8.1f} {pct(totals, 95):>8.1f} {statistics.median(dbs):>8.1f} "
            f"{pct(dbs, 95):>8.1f} {queries:>7} {p50 / base:>11.0f}x",
            flush=True,
        )
        if ARGS.explain and not name.startswith("baseline"):
            explain(sql)


if __name__ == "__main__":
    main()
