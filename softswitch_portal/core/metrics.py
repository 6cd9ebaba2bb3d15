"""The portal side's Prometheus metrics at /metrics: the CDR ingest (lag, records per second, dead letters) and the
open alarms, each read when Prometheus scrapes (a collector, not counters kept in the portal's processes: gunicorn's
workers would each count their own).

Reachable without a login from METRICS_ALLOWED_NETWORKS only (127.0.0.1 and ::1 unless configured); any other
address gets 403. Each call-core node serves its own metrics on a port of its own (SS_METRICS_PORT).
"""

from __future__ import annotations

import ipaddress
import time
from datetime import timedelta

import redis
from django.conf import settings
from django.db.models import Count
from django.http import HttpResponse, HttpResponseForbidden
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from callcore.contract import Keys

from .redis import Waiter, prefix, redis_client

# Records per second are the CDRs the ingest stored over this window, by their ``ingested`` stamp.
RATE_WINDOW_S = 60


def allowed_networks():
    return [ipaddress.ip_network(n.strip(), strict=False) for n in settings.METRICS_ALLOWED_NETWORKS if n.strip()]


class PortalCollector:
    """Reads the figures at each scrape: Redis for the stream, PostgreSQL for the stored CDRs and the alarms."""

    def collect(self):
        from billing.ingest import GROUP
        from billing.models import CDR
        from security.models import Alarm

        keys = Keys(prefix())
        up = GaugeMetricFamily("ss_redis_up", "1 when the portal reached Redis for this scrape")
        lag = GaugeMetricFamily("ss_cdr_ingest_lag_seconds", "Age of the oldest CDR waiting in the stream")
        waiting = GaugeMetricFamily("ss_cdr_stream_length", "CDRs in the stream, not yet stored")
        pending = GaugeMetricFamily("ss_cdr_ingest_pending", "CDRs read by an ingest and not yet acknowledged")
        dead = GaugeMetricFamily("ss_cdr_dead_letters", "CDR records set aside for an operator")
        client = redis_client(Waiter.PAGE)
        try:
            now_ms = int(time.time() * 1000)
            oldest = client.xrange(keys.cdr_stream, count=1)
            lag.add_metric([], max(0, now_ms - int(oldest[0][0].split(b"-")[0])) / 1000 if oldest else 0)
            waiting.add_metric([], client.xlen(keys.cdr_stream))
            groups = client.xinfo_groups(keys.cdr_stream) if client.exists(keys.cdr_stream) else []
            mine = [g for g in groups if g["name"] in (GROUP, GROUP.encode())]
            pending.add_metric([], mine[0]["pending"] if mine else 0)
            dead.add_metric([], client.xlen(keys.cdr_dead_letters))
            up.add_metric([], 1)
        except redis.RedisError:
            up.add_metric([], 0)
        finally:
            client.close()
        yield up
        yield from (m for m in (lag, waiting, pending, dead) if m.samples)

        since = timezone.now() - timedelta(seconds=RATE_WINDOW_S)
        stored = CDR.objects.filter(ingested__gte=since).count()
        rate = GaugeMetricFamily(
            "ss_cdr_ingest_records_per_second", f"CDRs the ingest stored per second over the last {RATE_WINDOW_S} s"
        )
        rate.add_metric([], stored / RATE_WINDOW_S)
        yield rate

        alarms = GaugeMetricFamily(
            "ss_alarms_open", "Alarms not cleared, by kind and severity", labels=["kind", "severity"]
        )
        rows = Alarm.objects.filter(resolved_at__isnull=True).values("kind", "severity").annotate(n=Count("id"))
        for row in rows.order_by("kind", "severity"):
            alarms.add_metric([row["kind"], row["severity"]], row["n"])
        yield alarms


def metrics_view(request):
    """GET /metrics for Prometheus; 403 from an address outside METRICS_ALLOWED_NETWORKS."""
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return HttpResponseForbidden("metrics: unknown client address\n", content_type="text/plain")
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not any(address in network for network in allowed_networks()):
        return HttpResponseForbidden(
            f"metrics: {address} is not in METRICS_ALLOWED_NETWORKS\n", content_type="text/plain"
        )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PortalCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
