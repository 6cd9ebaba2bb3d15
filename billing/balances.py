"""Live balances and the low-balance alarm: what follows a committed balance move.

The call core reads each account's balance from Redis (``Keys.balance``, in
money units) rather than from the snapshot, so every move of a balance (a
CDR batch, a payment, a re-rating) refreshes it after its commit; the ingest
also rewrites them all now and then, which heals a refresh lost to an outage.
A customer whose balance a move took below its threshold gets a low-balance
alarm (security.alarms), mailed to its alarm address.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import redis
from celery import current_app
from django.conf import settings
from django.db import connection

from callcore.contract import Keys, to_units

# By name: the task module imports the domain, never the other way round.
ALARM_TASK = "security.tasks.raise_low_balance_alarm"
_CHUNK = 1000  # many small commands rather than one that holds Redis up


def refresh_live_balances(client: redis.Redis, account_ids: Iterable[int], prefix: str | None = None) -> None:
    """Set the call core's live balance of each account from the committed balance, in one round trip."""
    ids = sorted(set(account_ids))
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, balance FROM billing_account WHERE id = ANY(%s)", [ids])
        current = cursor.fetchall()
    if current:
        keys = Keys(prefix or settings.REDIS_PREFIX)
        client.mset({keys.balance(account_id): to_units(balance) for account_id, balance in current})


def refresh_all_live_balances(client: redis.Redis, prefix: str | None = None) -> int:
    """Rewrite every account's live balance; returns how many.

    Heals a refresh lost to a Redis outage or a race (a payment's refresh and
    a batch's, each reading the balance after its own commit, may land in the
    other order).
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, balance FROM billing_account")
        current = cursor.fetchall()
    keys = Keys(prefix or settings.REDIS_PREFIX)
    for start in range(0, len(current), _CHUNK):
        chunk = current[start : start + _CHUNK]
        client.mset({keys.balance(i): to_units(balance) for i, balance in chunk})
    return len(current)


def alarm_crossed(account_type, alarm_email, threshold, system_threshold, before, after) -> Decimal | None:
    """The threshold a balance move from ``before`` to ``after`` crossed downwards, if the account is alarmed.

    Once per crossing: a move that starts already below the threshold stays quiet. The account's own
    threshold, else the system-wide SS_CLIENT_LOW_BALANCE_ALARM; only customers with an alarm address.
    """
    limit = Decimal(system_threshold) if threshold is None else threshold
    if account_type == "customer" and alarm_email and before >= limit > after:
        return limit
    return None


def queue_alarm(account_id: int, balance: Decimal, limit: Decimal) -> None:
    """Queue the low-balance alarm of an account whose balance crossed ``limit`` (run it after the commit)."""
    app = current_app
    if app.conf.task_always_eager and ALARM_TASK not in app.tasks:
        # To run here the task must be loaded, as a worker loads its task modules at start.
        app.loader.import_default_modules()
    # A signature by name runs the registered task (eagerly, when so configured) or sends it to the broker.
    app.signature(ALARM_TASK, args=(account_id, str(balance), str(limit))).delay()
