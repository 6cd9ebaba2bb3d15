"""An account's balance over the last days, walked back from its balance now: payments and CDR charges per day."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.utils import timezone

from .models import Account

BALANCE_HISTORY_SQL = """
WITH moves AS (
    SELECT (created AT TIME ZONE %(tz)s)::date AS day,
           sum(CASE WHEN kind = 'recharge' THEN amount ELSE -amount END) AS payments,
           0::numeric AS charges, count(*) AS payment_count, 0::bigint AS call_count
    FROM billing_payment WHERE account_id = %(account)s AND created >= %(since)s
    GROUP BY 1
  UNION ALL
    SELECT (start_time AT TIME ZONE %(tz)s)::date, 0, -sum(fee), 0, count(*)
    FROM billing_cdr WHERE account_id = %(account)s AND start_time >= %(since)s AND fee <> 0
    GROUP BY 1
  UNION ALL
    SELECT (start_time AT TIME ZONE %(tz)s)::date, 0, sum(vendor_cost), 0, count(*)
    FROM billing_cdr WHERE vendor_account_id = %(account)s AND start_time >= %(since)s AND vendor_cost <> 0
    GROUP BY 1
), days AS (
    SELECT day, sum(payments) AS payments, sum(charges) AS charges,
           sum(payment_count) AS payment_count, sum(call_count) AS call_count
    FROM moves GROUP BY day
)
SELECT day, payments, charges, payments + charges AS net, payment_count, call_count,
       (SELECT balance FROM billing_account WHERE id = %(account)s)
       - coalesce(sum(payments + charges) OVER (ORDER BY day DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
       AS closing
FROM days ORDER BY day DESC
"""


def balance_history(account: Account, days: int) -> list[dict]:
    """Per day, newest first: payments, CDR charges (debits of a customer, credits of a vendor) and closing balance.

    Walked back from the current balance in one statement (one snapshot), so
    the newest closing balance is the account's balance now.
    """
    tz = timezone.get_current_timezone()
    today = timezone.localdate()
    since = dt.datetime.combine(today - dt.timedelta(days=days - 1), dt.time.min, tzinfo=tz)
    with connection.cursor() as cursor:
        cursor.execute(BALANCE_HISTORY_SQL, {"tz": str(tz), "account": account.pk, "since": since})
        columns = [c.name for c in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
