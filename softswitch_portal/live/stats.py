"""Traffic statistics per mapping and routing gateway, from the CDR table: the last minutes and per hour.

Definitions (those of billing.reports where they overlap):

* attempts: per mapping gateway, its CDRs; per routing gateway, every time a
  call tried it (each entry of a CDR's ``vendors_tried``: a call that got 503
  from vendor A and 200 from vendor B is an attempt of each);
* connected: a CDR with hold time (``hold_time_ms > 0``); for a routing
  gateway, a try it answered (status 200). ASR = connected / attempts, in %;
* NER (network effectiveness): attempts that reached the called user,
  answered or refused by the user (busy, declined, not answered, cancelled
  by the caller: ``USER_CODES``) / attempts, in %;
* ACD: mean hold time of the connected calls, in seconds; minutes: their hold
  time / 60; PDD: mean post-dial delay of the calls that rang, in seconds.
  For a routing gateway these three are of the calls it ended on.

Every query is bounded by ``start_time``, so PostgreSQL reads only the
partitions of the period (an hour, or a few days), and is one pass per side.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from billing.models import CDR
from softswitch_portal.switching.models import MappingGateway, RoutingGateway

MAPPING, ROUTING = "mapping", "routing"
WINDOWS_MIN = (5, 15, 60)
MAX_DAYS = 14
# Final answers from the called user's side: busy here, request terminated (the caller hung up while it
# rang), temporarily unavailable (no answer), busy everywhere, decline.
USER_CODES = (486, 487, 480, 600, 603)
CONNECTED = Q(hold_time_ms__gt=0)


@dataclass
class Figures:
    attempts: int = 0
    connected: int = 0
    reached: int = 0  # connected, or refused by the user (NER)
    hold_ms: int = 0
    pdd_ms_total: int = 0
    pdd_calls: int = 0

    @property
    def asr(self):
        return percent(self.connected, self.attempts)

    @property
    def ner(self):
        return percent(self.reached, self.attempts)

    @property
    def acd(self):
        return ratio(self.hold_ms, self.connected * 1000, "0.1")

    @property
    def pdd(self):
        return ratio(self.pdd_ms_total, self.pdd_calls * 1000, "0.01")

    @property
    def minutes(self):
        return ratio(self.hold_ms, 60_000, "0.01") or Decimal("0.00")

    def as_dict(self):
        return {
            "attempts": self.attempts,
            "connected": self.connected,
            "asr": self.asr,
            "ner": self.ner,
            "acd": self.acd,
            "pdd": self.pdd,
            "minutes": self.minutes,
        }


def ratio(numerator, denominator, places):
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(Decimal(places), ROUND_HALF_UP)


def percent(part, whole):
    return ratio(part * 100, whole, "0.1")


def _window_filters(now):
    return {minutes: Q(start_time__gte=now - dt.timedelta(minutes=minutes)) for minutes in WINDOWS_MIN}


# Per routing gateway: each try of the last hour (vendors_tried, which is a JSON array of objects with an integer
# gateway_id and status; anything else in it is skipped, not an error), counted per window.
_TRIES_SQL = """
SELECT gateway_id, {columns}
FROM (
    SELECT c.start_time, (t.tried ->> 'gateway_id')::bigint AS gateway_id,
           CASE WHEN t.tried ->> 'status' ~ '^[0-9]{{1,3}}$' THEN (t.tried ->> 'status')::int END AS status
    FROM billing_cdr AS c
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(c.vendors_tried) = 'array' THEN c.vendors_tried ELSE '[]'::jsonb END
    ) AS t (tried)
    WHERE c.start_time >= %s AND c.start_time <= %s
      AND jsonb_typeof(t.tried) = 'object' AND t.tried ->> 'gateway_id' ~ '^[0-9]{{1,18}}$'
) AS tries
GROUP BY gateway_id
"""


def _tries_columns(now):
    columns, params = [], []
    for minutes in WINDOWS_MIN:
        since = now - dt.timedelta(minutes=minutes)
        columns.append("count(*) FILTER (WHERE start_time >= %s)")
        columns.append("count(*) FILTER (WHERE start_time >= %s AND status = 200)")
        columns.append("count(*) FILTER (WHERE start_time >= %s AND status IN ({}))".format(", ".join(["%s"] * 5)))
        params += [since, since, since, *USER_CODES]
    return ", ".join(columns), params


def recent(side=MAPPING, now=None):
    """Each gateway with traffic in the last hour: its figures over the last 5, 15 and 60 minutes.

    ``[{"id", "name", "windows": {5: {...}, 15: {...}, 60: {...}}}]``, busiest (60 minutes) first.
    """
    now = now or timezone.now()
    since = now - dt.timedelta(minutes=max(WINDOWS_MIN))
    cdrs = CDR.objects.filter(start_time__gte=since, start_time__lte=now)
    windows = _window_filters(now)
    reached = CONNECTED | Q(sip_status__in=USER_CODES)
    key = "mapping_gateway_id" if side == MAPPING else "routing_gateway_id"
    aggregates = {}
    for minutes, within in windows.items():
        connected = within & CONNECTED
        aggregates[f"attempts_{minutes}"] = Count("id", filter=within)
        aggregates[f"connected_{minutes}"] = Count("id", filter=connected)
        aggregates[f"reached_{minutes}"] = Count("id", filter=within & reached)
        aggregates[f"hold_{minutes}"] = Sum("hold_time_ms", filter=connected, default=0)
        aggregates[f"pdd_{minutes}"] = Sum("pdd_ms", filter=within & Q(pdd_ms__isnull=False), default=0)
        aggregates[f"rang_{minutes}"] = Count("id", filter=within & Q(pdd_ms__isnull=False))
    rows = cdrs.filter(**{f"{key}__isnull": False}).values(key).annotate(**aggregates).order_by()
    figures = {}
    for row in rows:
        figures[row[key]] = {
            m: Figures(
                attempts=row[f"attempts_{m}"],
                connected=row[f"connected_{m}"],
                reached=row[f"reached_{m}"],
                hold_ms=row[f"hold_{m}"],
                pdd_ms_total=row[f"pdd_{m}"],
                pdd_calls=row[f"rang_{m}"],
            )
            for m in WINDOWS_MIN
        }
    if side == ROUTING:
        # Attempts, connected and reached are the vendor's tries, not the calls it ended on.
        columns, params = _tries_columns(now)
        with connection.cursor() as cursor:
            cursor.execute(_TRIES_SQL.format(columns=columns), [*params, since, now])
            for gateway_id, *counts in cursor.fetchall():
                per = figures.setdefault(gateway_id, {m: Figures() for m in WINDOWS_MIN})
                for i, minutes in enumerate(WINDOWS_MIN):
                    attempts, connected, user = counts[3 * i : 3 * i + 3]
                    f = per[minutes]
                    f.attempts, f.connected, f.reached = attempts, connected, connected + user
    model = MappingGateway if side == MAPPING else RoutingGateway
    names = dict(model.objects.filter(pk__in=list(figures)).values_list("pk", "name"))
    out = [
        {
            "id": ident,
            "name": names.get(ident, f"#{ident}"),
            "windows": {m: f.as_dict() for m, f in per.items()},
        }
        for ident, per in figures.items()
    ]
    out.sort(key=lambda row: (-row["windows"][60]["attempts"], row["name"]))
    return out


def hourly(days=2, side=MAPPING, gateway=None, now=None):
    """Per local hour over the last ``days`` days (today included): ``[{"hour", figures...}]`` in order, every
    hour present (an hour without calls is zeros). ``gateway``: one gateway of ``side``, else all traffic."""
    days = max(1, min(int(days), MAX_DAYS))
    now = timezone.localtime(now or timezone.now())
    first = (now - dt.timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    cdrs = CDR.objects.filter(start_time__gte=first, start_time__lte=now)
    connected, ended = CONNECTED, Q()
    if gateway is not None and side == ROUTING:
        # Attempts: the calls that tried it; the rest: the calls it ended on.
        tried = Q(vendors_tried__contains=[{"gateway_id": gateway.pk}])
        ended = Q(routing_gateway_id=gateway.pk)
        cdrs = cdrs.filter(tried | ended)
        attempts = Count("id", filter=tried | ended)
        connected = CONNECTED & ended
        reached = connected | (ended & Q(sip_status__in=USER_CODES))
    else:
        if gateway is not None:
            cdrs = cdrs.filter(mapping_gateway_id=gateway.pk)
        attempts = Count("id")
        reached = CONNECTED | Q(sip_status__in=USER_CODES)
    rows = (
        cdrs.annotate(hour=TruncHour("start_time"))
        .values("hour")
        .annotate(
            attempts=attempts,
            connected=Count("id", filter=connected),
            reached=Count("id", filter=reached),
            hold=Sum("hold_time_ms", filter=connected, default=0),
            pdd_total=Sum("pdd_ms", filter=ended & Q(pdd_ms__isnull=False), default=0),
            rang=Count("id", filter=ended & Q(pdd_ms__isnull=False)),
        )
        .order_by("hour")
    )
    by_hour = {timezone.localtime(row["hour"]): row for row in rows}
    out = []
    hour = first
    while hour <= now:
        row = by_hour.get(hour, {})
        figures = Figures(
            attempts=row.get("attempts", 0),
            connected=row.get("connected", 0),
            reached=row.get("reached", 0),
            hold_ms=row.get("hold", 0),
            pdd_ms_total=row.get("pdd_total", 0),
            pdd_calls=row.get("rang", 0),
        )
        out.append({"hour": hour, **figures.as_dict()})
        hour = timezone.localtime(hour + dt.timedelta(hours=1))
    return out
