"""The billing reports' queries: SQL aggregates over CDRs and payments, never a loop over CDRs.

Each report is a function of a ``Period`` and its filters returning a
``Report`` (rows, chart series, totals); the views only render it.
Every CDR query is bounded by ``start_time`` so PostgreSQL reads only the
period's day partitions.

One pass over the CDRs per report page: PostgreSQL sums the CDRs of each
day (or month) and account or gateway (``sums``); the table's rows, the
chart's series and the totals are those cells added up three ways
(``fold``), exact in integers and decimals, instead of three passes over
millions of CDRs. ``derive`` works out the ratios from the sums, the one
definition of them:

* connected: ``hold_time_ms > 0``. That is what rating bills (zero hold time
  costs nothing) and what the dashboard counts as answered.
* ASR: connected / attempts, in percent. ACD: the mean hold time of the
  connected calls, in seconds.
* billed minutes: fee time (the customer's billed seconds, after increments)
  / 60. Talk minutes: hold time / 60. The vendor's billed seconds are not
  stored on the CDR, so vendor reports count talk minutes.
* margin: fees minus vendor cost.
* attempts per routing gateway: every vendor a call tried, from the CDR's
  ``vendors_tried`` (a call that got 503 from vendor A and 200 from vendor B
  is a failed attempt for A and a connected one for B); the minutes and the
  money stay with the vendor the call ended on, the CDR's routing gateway.
"""

import datetime as dt
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    DateField,
    DecimalField,
    F,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncDay, TruncMonth
from django.utils import timezone

from softswitch_portal.core.models import SystemParameter
from softswitch_portal.switching.models import MappingGateway, RoutingGateway

from .choices import AccountType, PaymentKind
from .models import CDR, Account

DAY, MONTH, TOTAL = "day", "month", "total"
GROUP_BY_CHOICES = ((DAY, "Day"), (MONTH, "Month"), (TOTAL, "Whole period"))
MAPPING, ROUTING = "mapping", "routing"

CONNECTED = Q(hold_time_ms__gt=0)
MONEY = DecimalField(max_digits=18, decimal_places=4)


@dataclass(frozen=True)
class Period:
    """Whole local days from ``first`` to ``last`` (both included), grouped by day, month or not at all."""

    first: dt.date
    last: dt.date
    group_by: str = DAY

    @property
    def start(self):
        return timezone.make_aware(dt.datetime.combine(self.first, dt.time.min))

    @property
    def end(self):
        """The instant after the period: midnight at the end of ``last``."""
        return timezone.make_aware(dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time.min))

    def buckets(self):
        """The first day of every day or month in the period, for a chart's x axis (gaps become zeros)."""
        if self.group_by == MONTH:
            month = self.first.replace(day=1)
            while month <= self.last:
                yield month
                month = (month + dt.timedelta(days=32)).replace(day=1)
        else:
            day = self.first
            while day <= self.last:
                yield day
                day += dt.timedelta(days=1)

    def bucket_bounds(self, bucket):
        """The (start, end) instants of one row's day or month, clipped to the period; the whole period for TOTAL."""
        if self.group_by == DAY:
            first, last = bucket, bucket
        elif self.group_by == MONTH:
            first, last = bucket, (bucket + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        else:
            first, last = self.first, self.last
        clipped = Period(max(first, self.first), min(last, self.last))
        return clipped.start, clipped.end


def cdrs(period, **filters):
    """The period's CDRs; the start_time bounds are what prune the day partitions."""
    return CDR.objects.filter(start_time__gte=period.start, start_time__lt=period.end, **filters).order_by()


def _sum(field, output_field=MONEY, **kwargs):
    # An empty set sums to NULL in SQL; a report says 0.
    return Coalesce(Sum(field, **kwargs), Value(0, output_field=output_field), output_field=output_field)


def sums():
    """What PostgreSQL adds up per group of CDRs.

    Only start_time, hold_time_ms, fee_time, fee and vendor_cost are read
    (COUNT(*); connected is counted on hold_time_ms), the columns the CDR
    indexes by account and gateway carry (INCLUDE): one account's or
    gateway's period is then an index-only scan, not a read of every heap
    page of the period (an account's calls are spread over all of them).
    """
    return {
        "attempts": Count("*"),
        "connected": Count("hold_time_ms", filter=CONNECTED),
        "hold_ms": _sum("hold_time_ms", BigIntegerField()),
        "fee_time": _sum("fee_time", BigIntegerField()),
        "revenue": _sum("fee"),
        "cost": _sum("vendor_cost"),
    }


SUMMED = tuple(sums())


def _ratio(numerator, denominator, places):
    """Rounded half up, as the reports show it; None (shown as a dash) when there is nothing to divide by."""
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)


def derive(row):
    """Add the ratios to a row of sums (in place) and return it."""
    row["asr"] = _ratio(row["connected"] * 100, row["attempts"], 1)
    row["acd"] = _ratio(row["hold_ms"], row["connected"] * 1000, 1)
    row["billed_minutes"] = _ratio(row["fee_time"], 60, 2)
    row["talk_minutes"] = _ratio(row["hold_ms"], 60_000, 2)
    row["margin"] = row["revenue"] - row["cost"]
    return row


def fold(rows, key=None):
    """The sums of aggregate rows added up (all into one, or one per ``key``), with their ratios derived."""
    groups = {}
    for row in rows:
        total = groups.setdefault(row[key] if key else None, dict.fromkeys(SUMMED, 0))
        for name in SUMMED:
            total[name] += row[name]
    if key is None:
        return derive(groups.get(None, dict.fromkeys(SUMMED, 0)))
    return {bucket: derive(total) for bucket, total in groups.items()}


def totals_of(queryset):
    """The sums and ratios of a whole set of CDRs (the CDR list's totals), in one aggregate."""
    return derive(queryset.aggregate(**sums()))


def _grouped(queryset, period, *keys):
    """GROUP BY the period's day or month (local time) and ``keys``."""
    if period.group_by == DAY:
        queryset = queryset.annotate(period=TruncDay("start_time", output_field=DateField()))
        keys = ("period", *keys)
    elif period.group_by == MONTH:
        queryset = queryset.annotate(period=TruncMonth("start_time", output_field=DateField()))
        keys = ("period", *keys)
    return queryset.values(*keys)


@dataclass
class Report:
    rows: list  # the table: dicts of sums, ratios and the account's or gateway's name
    series: dict  # the chart: day (or month) -> sums and ratios, every bucket that had calls
    totals: dict  # the strip above: sums and ratios of the whole period


def _report(queryset, period, key, model, name):
    """Group ``queryset`` by day (or month) and ``key`` in one query and fold the cells into a Report."""
    by_bucket = period if period.group_by == MONTH else replace(period, group_by=DAY)
    return _fold_cells(list(_grouped(queryset, by_bucket, key).annotate(**sums())), period, key, model, name)


def _fold_cells(cells, period, key, model, name):
    """The Report of aggregate cells (one per day or month and ``key``): table rows, chart series and totals.

    The names come from one query over the few ids, after aggregating: a join
    would look a name up for every CDR, and the name copied into each CDR is
    not in the covering indexes. A row whose account or gateway was deleted
    since keeps its id and no name.
    """
    if period.group_by == TOTAL:
        rows = [{key: pk, **figures} for pk, figures in fold(cells, key=key).items()]
    else:
        rows = [derive(cell) for cell in cells]
    names = dict(model.objects.filter(pk__in={row[key] for row in rows}).values_list("pk", "name"))
    for row in rows:
        row[name] = names.get(row[key])
    rows.sort(key=lambda row: (row.get("period") or dt.date.min, (row[name] or "").lower(), row[key]))
    return Report(rows=rows, series=fold(cells, key="period"), totals=fold(cells))


# Revenue details


def revenue_cdrs(period, account=None):
    """The CDRs billed to a customer account (illegal and unbilled calls have none)."""
    filters = {"account": account} if account is not None else {"account__isnull": False}
    return cdrs(period, **filters)


def revenue(period, account=None):
    """Per account and day or month: calls, connected, billed minutes, revenue, cost, margin."""
    return _report(revenue_cdrs(period, account), period, "account_id", Account, "account_name")


# Gateway bill


def gateway_cdrs(period, side, mapping_gateway=None, routing_gateway=None):
    filters = {}
    if mapping_gateway is not None:
        filters["mapping_gateway"] = mapping_gateway
    if routing_gateway is not None:
        filters["routing_gateway"] = routing_gateway
    # Only calls that reached a gateway of this side: illegal calls have no mapping gateway,
    # calls refused before routing no routing gateway.
    filters.setdefault(f"{side}_gateway__isnull", False)
    return cdrs(period, **filters)


def gateway_bill(period, side=MAPPING, mapping_gateway=None, routing_gateway=None):
    """Per mapping (or routing) gateway, and per day or month unless TOTAL.

    Per mapping gateway a call counts once. Per routing gateway every vendor
    the call tried counts an attempt (``routing_attempts``), so a vendor's ASR
    drops with the calls it failed and another vendor then carried; the
    minutes and the money count under the vendor the call ended on.
    """
    if side == ROUTING:
        return routing_attempts(period, mapping_gateway, routing_gateway)
    queryset = gateway_cdrs(period, side, mapping_gateway, routing_gateway)
    return _report(queryset, period, "mapping_gateway_id", MappingGateway, "gateway_name")


# Every attempt of the period's calls, summed per day (or month) and routing
# gateway, in one statement of two parts:
#
# * ``ended``: each call under the routing gateway it ended on, with its
#   minutes and money: the per-call aggregate, which reads the covering index
#   by routing gateway;
# * ``tried``: the vendors tried before that one, from vendors_tried
#   ([{"gateway_id", "gateway", "ip", "status"}] in the order tried,
#   callcore/kemi.py), which only the table carries. The list ends with the
#   final gateway's own answer, already counted by ``ended``: its last element
#   is left out when it names the call's routing gateway, and kept when it
#   does not (a list cut short). Only lists that name another vendor are
#   unnested, once per distinct list and day rather than per call: most
#   calls tried one vendor, and a set-returning function per call makes
#   PostgreSQL expect a hundred rows from each (its default), sort millions
#   on disk and compile the plan, ten times the per-call report's time.
#
# A CDR with an empty list (refused before routing, or stored before the list
# was kept) counts its routing gateway alone, as the report always did; a
# malformed list or element counts nothing more rather than failing the report.
_ATTEMPTS_SQL = """
WITH tried AS (
    SELECT c.period, c.routing_gateway_id, c.vendors_tried, count(*) AS calls
    FROM ({tried}) AS c
    -- Two or more attempts, or one that is not the routing gateway's. No term can fail on a list that is
    -- not an array (-> answers NULL), whatever order PostgreSQL tests them in.
    WHERE jsonb_typeof(c.vendors_tried) = 'array' AND c.vendors_tried -> 0 IS NOT NULL
      AND (c.vendors_tried -> 1 IS NOT NULL
           OR c.vendors_tried -> 0 ->> 'gateway_id' IS DISTINCT FROM c.routing_gateway_id::text)
    GROUP BY 1, 2, 3
)
SELECT period::date AS period, gateway_id AS routing_gateway_id, sum(attempts)::bigint AS attempts,
       sum(connected)::bigint AS connected, sum(hold_ms)::bigint AS hold_ms, sum(fee_time)::bigint AS fee_time,
       sum(revenue) AS revenue, sum(cost) AS cost
FROM (
    SELECT e.period, e.routing_gateway_id, e.attempts, e.connected, e.hold_ms, e.fee_time, e.revenue, e.cost
    FROM ({ended}) AS e
    UNION ALL
    SELECT k.period, a.gateway_id, k.calls, 0, 0, 0, 0, 0
    FROM tried AS k
    CROSS JOIN LATERAL (
        SELECT CASE WHEN t.tried ->> 'gateway_id' ~ '^[0-9]{{1,18}}$' THEN (t.tried ->> 'gateway_id')::bigint END,
               t.n = jsonb_array_length(k.vendors_tried)
        FROM jsonb_array_elements(k.vendors_tried) WITH ORDINALITY AS t (tried, n)  -- an array: see ``tried``
    ) AS a (gateway_id, last)
    WHERE a.gateway_id IS NOT NULL AND NOT (a.last AND a.gateway_id IS NOT DISTINCT FROM k.routing_gateway_id)
) AS attempts (period, gateway_id, attempts, connected, hold_ms, fee_time, revenue, cost)
{where}
GROUP BY 1, 2
"""


def routing_attempts(period, mapping_gateway=None, routing_gateway=None):
    """The gateway bill per routing gateway: every attempt counted, the minutes and money where the call ended.

    One SQL statement (``_ATTEMPTS_SQL``) over the period's CDRs. Filtered by
    a routing gateway, it counts that gateway's attempts, those of the calls
    that failed over from it to another included. Reading vendors_tried, which
    no index carries, costs a scan of the period's CDRs on top of the covering
    index the per-call figures come from: about twice the per-call report's
    time (a day of 300,000 calls, a tenth of them failed over: 0.38 s against
    0.17 s).
    """
    calls = cdrs(period)
    if mapping_gateway is not None:
        calls = calls.filter(mapping_gateway=mapping_gateway)
    if routing_gateway is not None:
        ended = calls.filter(routing_gateway=routing_gateway)
        # The calls that tried it before another: jsonb containment.
        tried = calls.filter(vendors_tried__contains=[{"gateway_id": routing_gateway.pk}])
    else:
        ended = calls.filter(routing_gateway__isnull=False)
        tried = calls
    # The ORM writes the filters and the local day (or month) as the other reports have them.
    by_bucket = period if period.group_by == MONTH else replace(period, group_by=DAY)
    ended = _grouped(ended, by_bucket, "routing_gateway_id").annotate(**sums())
    tried = _grouped(tried, by_bucket).values("period", "routing_gateway_id", "vendors_tried")
    ended_sql, ended_params = ended.query.sql_with_params()
    tried_sql, tried_params = tried.query.sql_with_params()
    where, params = "", (*tried_params, *ended_params)
    if routing_gateway is not None:
        where, params = "WHERE gateway_id = %s", (*params, routing_gateway.pk)
    with connection.cursor() as cursor:
        cursor.execute(_ATTEMPTS_SQL.format(tried=tried_sql, ended=ended_sql, where=where), params)
        names = [column.name for column in cursor.description]
        cells = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return _fold_cells(cells, period, "routing_gateway_id", RoutingGateway, "gateway_name")


# Vendor clearing


def vendor_cdrs(period, vendor_account=None):
    filters = {"vendor_account": vendor_account} if vendor_account is not None else {"vendor_account__isnull": False}
    return cdrs(period, **filters)


def vendor_clearing(period, vendor_account=None):
    """Per vendor clearing account, and per day or month unless TOTAL: calls, minutes and cost accrued.

    No index by vendor account: the period's day partitions are read in full,
    which costs about what one GROUP BY over the same rows costs anyway
    (bench/cdr_query.py; an index-only scan of a covering index saved ~20%).
    """
    return _report(vendor_cdrs(period, vendor_account), period, "vendor_account_id", Account, "vendor_account_name")


# Account balances


def low_balance_alarm():
    """SS_CLIENT_LOW_BALANCE_ALARM as stored (the default if unset or unreadable)."""

    return Decimal(SystemParameter.current("SS_CLIENT_LOW_BALANCE_ALARM"))


def account_balances(period, account_type=None, account=None, low_only=False):
    """Every account: balance, credit limit, available, the period's payments and CDR charges, low-balance flag.

    The rows are accounts, each with ``recharges``, ``deductions``,
    ``cdr_charges``, ``threshold`` and ``low_balance``. CDR charges are the
    fees debited to a customer, or the vendor cost credited to a vendor
    clearing account: two grouped aggregates over the period's CDRs (one
    pass each, whatever the number of accounts; a correlated subquery per
    account was ten times slower), matched to the accounts by id.
    """
    in_period = Q(payments__created__gte=period.start, payments__created__lt=period.end)
    threshold = Coalesce("low_balance_threshold", Value(low_balance_alarm(), output_field=MONEY))
    rows = Account.objects.annotate(
        recharges=_sum(F("payments__amount"), filter=in_period & Q(payments__kind=PaymentKind.RECHARGE)),
        deductions=_sum(F("payments__amount"), filter=in_period & Q(payments__kind=PaymentKind.DEDUCT)),
        threshold=threshold,
        low_balance=Case(
            When(Q(account_type=AccountType.CUSTOMER) & Q(balance__lt=threshold), then=Value(True)),
            default=Value(False),
        ),
    )
    if account_type:
        rows = rows.filter(account_type=account_type)
    if account is not None:
        rows = rows.filter(pk=account.pk)
    if low_only:
        rows = rows.filter(low_balance=True)
    accounts = list(rows.order_by("name"))
    kinds = {a.account_type for a in accounts}
    one = {"pk": account.pk} if account is not None else {}
    fees, costs = {}, {}
    if AccountType.CUSTOMER in kinds:
        customer_cdrs = cdrs(period, **({"account_id": one["pk"]} if one else {"account__isnull": False}))
        fees = dict(customer_cdrs.values("account_id").annotate(total=Sum("fee")).values_list("account_id", "total"))
    if AccountType.VENDOR in kinds:
        vendor_cdrs = cdrs(period, **({"vendor_account_id": one["pk"]} if one else {"vendor_account__isnull": False}))
        costs = dict(
            vendor_cdrs.values("vendor_account_id")
            .annotate(total=Sum("vendor_cost"))
            .values_list("vendor_account_id", "total")
        )
    for a in accounts:
        charges = costs if a.account_type == AccountType.VENDOR else fees
        a.cdr_charges = charges.get(a.pk) or Decimal("0")
    return Report(rows=accounts, series={}, totals=balance_totals(accounts))


def balance_totals(accounts):
    """Sums over the report's accounts (already fetched: one row per account, not per call),
    customers and vendor clearing accounts apart, as their money runs in opposite directions."""
    customers = [a for a in accounts if a.account_type == AccountType.CUSTOMER]
    vendors = [a for a in accounts if a.account_type == AccountType.VENDOR]
    return {
        "accounts": len(accounts),
        "low": sum(1 for a in accounts if a.low_balance),
        "customer_balance": sum((a.balance for a in customers), Decimal("0")),
        "customer_available": sum((a.available for a in customers), Decimal("0")),
        "recharges": sum((a.recharges for a in accounts), Decimal("0")),
        "deductions": sum((a.deductions for a in accounts), Decimal("0")),
        "fees": sum((a.cdr_charges for a in customers), Decimal("0")),
        "vendor_cost": sum((a.cdr_charges for a in vendors), Decimal("0")),
    }
