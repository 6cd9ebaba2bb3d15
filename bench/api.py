"""Benchmark of the APIs against the portal's own CDR page and the ORM query alone, for the same CDRs.

Run: .venv/bin/python bench/api.py [--cdrs 10000] [--per-page 100] [--runs 3]

Fills a scratch database (softswitch_bench_api; created and migrated if
missing, the switch's own database is not touched) with --cdrs CDRs of one
account on one day, then walks all of them, in the same run:

- the REST API's CDR list (GET /api/billing/cdrs/?account=..., keyset pages
  of --per-page, following ``next``), authenticated by an API client's token
  and logged like any request;
- the portal's CDR page (the same filter and page size, its keyset links,
  rendered as HTML for a logged-in operator);
- the ORM query alone: the CDR page's keyset_page over the same rows, no
  serialisation, no HTTP;

and fetches them all at once through VOS's GetCdr (one request for the day)
beside the ORM query alone for the same rows. Requests go through Django's
test client in this process (no sockets), so the figures are the portal's
own cost per request. p50/p95 per page over every page of --runs walks after
a warm-up walk; ratios are against the ORM alone and against the portal's page.
"""

import argparse
import datetime as dt
import json
import os
import re
import statistics
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import scratch  # bench/ is the script's folder, first on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BENCH_DB = os.environ.get("BENCH_DB_NAME") or "softswitch_bench_api"
# Settings read these at import: the scratch database must be in place before django.setup().
os.environ["DB_NAME"] = BENCH_DB
os.environ["REDIS_PREFIX"] = "ssbench-api"
os.environ.setdefault("LOG_LEVEL", "WARNING")
# DEBUG off (it would record every query), so a key of its own and plain HTTP for the test client.
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "bench-only-" + uuid.uuid4().hex * 2)
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SESSION_COOKIE_SECURE", "0")
os.environ.setdefault("CSRF_COOKIE_SECURE", "0")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "softswitch_portal.settings")

ACCOUNT = "bench-api-customer"
# The ORM walk's first "page target": no key yet.
FIRST = "first"
NEXT_KEY = re.compile(r'[?&;]after=([^&"]+)[^"]*" rel="next"')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cdrs", type=int, default=10_000, help="CDRs of the account (default 10,000)")
    parser.add_argument("--per-page", type=int, default=100, help="rows per page (default 100)")
    parser.add_argument("--runs", type=int, default=3, help="timed walks over every page (default 3)")
    return parser.parse_args()


def fill(count):
    """The account, its CDRs on one day (yesterday, switch time), an API client and a VOS access rule."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from billing.models import CDR, Account
    from security.api_clients import APIClient
    from softswitch_portal.vos.models import VosAccessRule

    account, _ = Account.objects.get_or_create(name=ACCOUNT)
    day = (timezone.localtime() - dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    if CDR.objects.filter(account=account).count() != count:
        CDR.objects.filter(account=account).delete()
        step = 86_000_000 // count  # ms: spread over the day
        rows = [
            CDR(
                call_uuid=f"bench-{i}",
                start_time=day + dt.timedelta(milliseconds=i * step),
                billing_mode=1,
                account=account,
                account_name=ACCOUNT,
                caller_number=f"4930{i % 10_000:04d}",
                callee_number="00447911123456",
                callee_number_routed="447911123456",
                callee_number_out="447911123456",
                mapping_gateway_name="bench-sbc",
                routing_gateway_name="Vendor A",
                caller_ip="192.0.2.10",
                vendor_ip="198.51.100.5",
                hold_time_ms=61_400 if i % 3 else 0,
                fee_time=66 if i % 3 else 0,
                fee=Decimal("0.0220") if i % 3 else Decimal(0),
                vendor_cost=Decimal("0.0100") if i % 3 else Decimal(0),
                rate_prefix="44",
                end_direction=0,
                sip_status=200 if i % 3 else 486,
                end_reason="normal_clearing" if i % 3 else "vendor_rejected",
                stop_time=day + dt.timedelta(milliseconds=i * step + 70_000),
            )  # fmt: skip
            for i in range(count)
        ]
        CDR.objects.bulk_create(rows, batch_size=2000)
    defaults = {"is_superuser": True, "is_staff": True}
    user, _ = get_user_model().objects.get_or_create(username="bench-api", defaults=defaults)
    APIClient.objects.filter(name="bench-api").delete()
    client = APIClient(name="bench-api", owner=user, scopes=["read"], allowed_networks=["127.0.0.1"],
                       throttle_per_minute=0, vos_api=True)  # fmt: skip
    token = client.issue_token()
    client.save()
    VosAccessRule.objects.get_or_create(network="127.0.0.1", directory="/external/server")
    return account, day, user, token


def walk(fetch, start):
    """Every page from ``start``: [(ms, rows)], following each page's next."""
    pages = []
    target = start
    while target:
        began = time.perf_counter()
        rows, target = fetch(target)
        pages.append(((time.perf_counter() - began) * 1000, rows))
    return pages


def percentiles(times):
    ordered = sorted(times)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def main():
    args = parse_args()
    scratch.ensure_database(BENCH_DB)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from billing.models import CDR
    from softswitch_portal.generic.keyset import keyset_page

    call_command("migrate", verbosity=0)
    account, day, user, token = fill(args.cdrs)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    api = Client(REMOTE_ADDR="127.0.0.1", HTTP_AUTHORIZATION=f"Token {token}")
    portal = Client(REMOTE_ADDR="127.0.0.1")
    portal.force_login(user)
    per_page = args.per_page

    def api_page(url):
        body = api.get(url).json()
        return len(body["results"]), body["next"]

    def portal_page(url):
        html = portal.get(url).content.decode()
        body = html[html.index("<tbody") : html.index("</tbody>")]
        # The page's own "next" link: its keyset key, as an operator's click follows it.
        found = NEXT_KEY.search(html)
        after = f"/billing/cdrs/?account={account.pk}&per_page={per_page}&after={found.group(1)}" if found else None
        return body.count("<tr"), after

    def orm_page(after):
        page = keyset_page(CDR.objects.filter(account=account), "start_time", descending=True, per_page=per_page,
                           after=None if after == FIRST else after)  # fmt: skip
        return len(page.rows), page.next_key if page.has_next else None

    cases = {
        "REST API list": (api_page, f"/api/billing/cdrs/?account={account.pk}&limit={per_page}"),
        "portal CDR page": (portal_page, f"/billing/cdrs/?account={account.pk}&per_page={per_page}"),
        "ORM query alone": (orm_page, FIRST),
    }
    results = {}
    for name, (fetch, start) in cases.items():
        walk(fetch, start)  # warm-up
        times, rows = [], 0
        for _ in range(args.runs):
            pages = walk(fetch, start)
            times.extend(ms for ms, _ in pages)
            rows = sum(count for _, count in pages)
        assert rows == args.cdrs, f"{name} walked {rows} rows, not {args.cdrs}"
        results[name] = (percentiles(times), sum(times) / args.runs)

    stamp = day.strftime("%Y%m%d")
    body = json.dumps({"accounts": [ACCOUNT], "beginTime": stamp, "endTime": stamp})

    def get_cdr():
        answer = json.loads(api.post("/external/server/GetCdr", body, content_type="text/plain").content)
        return len(answer["infoCdrs"])

    def orm_all():
        return len(list(CDR.objects.filter(account=account, start_time__gte=day).order_by("start_time", "id")))

    whole = {}
    for name, fetch in (("VOS GetCdr (one request)", get_cdr), ("ORM query alone", orm_all)):
        fetch()
        median, best, count = scratch.timed(fetch, args.runs)
        assert count == args.cdrs, f"{name} answered {count} rows"
        whole[name] = median

    print(f"{args.cdrs:,} CDRs of one account, pages of {per_page}, {args.runs} walks after a warm-up")
    orm_p50 = results["ORM query alone"][0][0]
    page_p50 = results["portal CDR page"][0][0]
    print(f"{'per page':<22}{'p50 ms':>9}{'p95 ms':>9}{'req/s':>9}{'all rows ms':>13}{'x ORM':>8}{'x page':>8}")
    for name, ((p50, p95), total) in results.items():
        print(f"{name:<22}{p50:>9.2f}{p95:>9.2f}{1000 / p50:>9.0f}{total:>13.0f}{p50 / orm_p50:>8.2f}"
              f"{p50 / page_p50:>8.2f}")  # fmt: skip
    print(f"{'whole day at once':<26}{'median ms':>10}{'rows/s':>10}{'x ORM':>8}")
    for name, median in whole.items():
        print(f"{name:<26}{median:>10.0f}{args.cdrs / median * 1000:>10.0f}"
              f"{median / whole['ORM query alone']:>8.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
