"""Money movements. The only code that changes an account's balance lives here (and in the CDR ingest).

Every movement locks the account row, so concurrent payments and CDR debits
serialise per account and ``balance_after`` is exact.
"""

import logging
from decimal import Decimal, InvalidOperation
from functools import partial

import redis
from django.core.exceptions import ValidationError
from django.db import transaction

from softswitch_portal.core import publisher, roles
from softswitch_portal.core.models import SystemParameter
from softswitch_portal.core.redis import Waiter, redis_client

from .balances import refresh_live_balances
from .choices import PaymentKind
from .models import Account, Payment

log = logging.getLogger(__name__)


def _amount(value):
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationError({"amount": f"{value!r} is not a number."}) from None
    if not amount.is_finite() or amount <= 0:
        raise ValidationError({"amount": "The amount must be a positive number; choose Deduct to take money off."})
    if amount.as_tuple().exponent < -4:
        raise ValidationError({"amount": "At most 4 decimal places."})
    return amount


def apply_payment(account, kind, amount, user, memo=""):
    """Recharge or deduct ``amount`` on ``account`` and return the Payment recorded for it."""
    if kind not in PaymentKind.values:
        raise ValidationError({"kind": f"{kind!r} is not a payment kind ({', '.join(PaymentKind.values)})."})
    amount = _amount(amount)
    # Here, not only in the page's form: the REST and VOS APIs pay through this function too.
    ceiling = SystemParameter.current("SS_PAYMENT_APPROVAL_AMOUNT")
    if user is not None and amount > ceiling and not user.has_perm(roles.LARGE_PAYMENT):
        raise ValidationError(
            {"amount": f"A payment above {ceiling} (SS_PAYMENT_APPROVAL_AMOUNT) needs the large-payment permission."}
        )
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        delta = amount if kind == PaymentKind.RECHARGE else -amount
        locked.balance += delta
        Account.objects.filter(pk=locked.pk).update(balance=locked.balance)
        payment = Payment.objects.create(
            account=locked,
            kind=kind,
            amount=amount,
            balance_after=locked.balance,
            memo=memo,
            created_by=user if user is not None and user.is_authenticated else None,
        )
        # update() sends no post_save: tell the call core about the new balance ourselves.
        publisher.schedule_publish()
        # The call core prefers the live balance key to the snapshot's: a recharge
        # must reach it too, or the account stays refused until its next CDR.
        transaction.on_commit(partial(_refresh_live_balance, locked.pk), robust=True)
    account.balance = locked.balance
    return payment


def _refresh_live_balance(account_id):
    # This runs in the portal's request, which must not hang on a Redis outage.
    client = redis_client(Waiter.PAGE)
    try:
        refresh_live_balances(client, [account_id])
    except redis.RedisError as exc:
        # The ingest worker rewrites every live balance periodically; it heals this then.
        log.warning("live balance of account %s not refreshed: %s", account_id, exc)
    finally:
        client.close()
