"""Celery tasks of the security app."""

from celery import shared_task
from django.conf import settings

from callcore.contract import Keys
from softswitch_portal.core.redis import Waiter, prefix, redis_client

from . import alarms, bans, dynamic_blacklist, firewall, fraud_events
from .review_run import review_run  # noqa: F401 (defined beside its replay; imported so the worker has it)


@shared_task
def record_bans():
    """Copy the call core's live source-IP bans into the ban history (the ban page)."""
    return bans.record()


@shared_task
def export_firewall():
    """Keep the nftables sets of banned sources in step with the bans in Redis (when FIREWALL_EXPORT is set)."""
    if not settings.FIREWALL_EXPORT:
        return None
    return firewall.export(bans.live_bans(), settings.FIREWALL_TABLE)


@shared_task
def resync_dynamic_blacklist():
    return dynamic_blacklist.resync_all()


@shared_task
def persist_fraud_events():
    """Record the detectors' fraud events (review-queue entries, alarms); every few seconds."""
    return fraud_events.persist()


@shared_task
def expire_dynamic_blacklist():
    """Mark entries past their expiry expired and drop expired members from Redis."""
    return dynamic_blacklist.expire()


@shared_task
def notify_alarm(alarm_id):
    """Mail (and post) an alarm if its e-mail is due (queued by security.alarms.raise_alarm)."""
    return alarms.notify(alarm_id)


@shared_task
def raise_low_balance_alarm(account_id, balance, threshold):
    """The alarm of a customer whose balance crossed its threshold downwards (queued by billing.balances)."""
    return alarms.raise_low_balance(account_id, balance, threshold)


@shared_task
def detect_live_alarms():
    """The detectors over the live state in Redis: silent call-core nodes, long calls, ingest lag, dead letters."""
    client = redis_client(Waiter.JOB, name="worker:alarms")
    try:
        keys = Keys(prefix())
        return {
            "node_silent": alarms.detect_silent_nodes(client, keys),
            "long_call": alarms.detect_long_calls(client, keys),
            "ingest": alarms.detect_ingest(client, keys),
        }
    finally:
        client.close()


@shared_task
def detect_cdr_alarms():
    """Illegal-call bursts; closes cleared low balances and quiet fraud alarms; mails the digests that came due."""
    return {
        "illegal_call_burst": alarms.detect_illegal_bursts(),
        "low_balance_resolved": alarms.resolve_low_balances(),
        "fraud_closed": alarms.close_quiet_event_alarms(),
        "mailed": alarms.notify_due(),
    }


@shared_task
def detect_baseline_alarms():
    """The last hour against the same hour over the past week: ASR and ACD drops per gateway, traffic spikes."""
    return {"gateways": alarms.detect_gateway_drops(), "traffic_spike": alarms.detect_traffic_spikes()}
