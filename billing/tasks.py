"""Celery tasks of the billing app."""

from celery import shared_task

from . import fraud, lost_calls, partitions, rerating, route_stats


@shared_task
def ensure_cdr_partitions():
    return partitions.ensure_partitions()


@shared_task(acks_late=True)
def rerate(job_id):
    """Run a re-rating job (billing.rerating); redelivered or retried, it never applies a chunk twice."""
    return rerating.run_job(job_id).status


@shared_task
def publish_route_asr():
    """Publish the routing gateways' attempts and connected calls over the ASR window for the call core's Best
    ASR route policy (billing.route_stats); returns how many gateways had attempts."""
    return len(route_stats.publish().gateways)


@shared_task
def publish_fraud_daily_spend():
    """Each customer's average daily vendor cost for the call core's spend-velocity rule (billing.fraud)."""
    return fraud.publish_daily_spend()


@shared_task
def release_lost_calls():
    """Record and release the calls of the call-core nodes whose heartbeat stopped (billing.lost_calls); returns
    how many calls were released."""
    return lost_calls.release_gone_nodes()
