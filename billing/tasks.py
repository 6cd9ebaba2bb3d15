"""Celery tasks of the billing app."""

from celery import shared_task
from django.core.mail import send_mail

from . import lost_calls, partitions, rerating, route_stats
from .models import Account


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
def release_lost_calls():
    """Record and release the calls of the call-core nodes whose heartbeat stopped (billing.lost_calls); returns
    how many calls were released."""
    return lost_calls.release_gone_nodes()


@shared_task
def send_low_balance_alarm(account_id, balance, threshold):
    """E-mail an account's alarm address that its balance fell below its threshold (queued by billing.balances)."""
    account = Account.objects.filter(pk=account_id).first()
    if account is None or not account.alarm_email:
        return False
    send_mail(
        subject=f"Low balance: {account.name} is at {balance}",
        message=(
            f"The balance of account {account.name} fell to {balance}, below its alarm threshold of {threshold}.\n"
            f"Credit limit: {account.credit_limit}. Recharge the account to keep its calls flowing.\n"
        ),
        from_email=None,
        recipient_list=[account.alarm_email],
    )
    return True
