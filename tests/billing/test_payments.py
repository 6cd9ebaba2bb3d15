"""Payments are the only way an operator moves a balance, each with who and when."""

import threading
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection

from billing.models import Account, Payment
from billing.services import apply_payment


@pytest.mark.django_db
def test_recharge_and_deduct_move_the_balance_and_record_it(customer, admin_user):
    first = apply_payment(customer, "recharge", "50.25", admin_user, memo="wire")
    second = apply_payment(customer, "deduct", Decimal("10.0001"), admin_user)
    customer.refresh_from_db()
    assert customer.balance == Decimal("40.2499")
    assert (first.balance_after, second.balance_after) == (Decimal("50.25"), Decimal("40.2499"))
    assert first.created_by == admin_user and first.created is not None
    assert list(customer.payments.values_list("kind", flat=True)) == ["deduct", "recharge"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "amount", "field"),
    [("recharge", "-5", "amount"), ("recharge", "0", "amount"), ("recharge", "ten", "amount"),
     ("recharge", "1.00001", "amount"), ("refund", "5", "kind"), ("recharge", "NaN", "amount")],
)  # fmt: skip
def test_bad_payments_are_refused_and_nothing_changes(customer, admin_user, kind, amount, field):
    with pytest.raises(ValidationError) as exc:
        apply_payment(customer, kind, amount, admin_user)
    assert field in exc.value.message_dict
    customer.refresh_from_db()
    assert customer.balance == 0
    assert not Payment.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_payments_are_all_counted():
    account = Account.objects.create(name="Busy")
    user = get_user_model().objects.create(username="ops")
    errors = []

    def pay():
        try:
            for _ in range(10):
                apply_payment(account, "recharge", "1.01", user)
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=pay) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    account.refresh_from_db()
    assert account.balance == Decimal("40.40")
    assert sorted(Payment.objects.values_list("balance_after", flat=True)) == [
        Decimal("1.01") * n for n in range(1, 41)
    ]


@pytest.mark.django_db
def test_saving_an_account_form_never_writes_back_a_stale_balance(customer, admin_user):
    stale = Account.objects.get(pk=customer.pk)  # what an edit form read
    apply_payment(customer, "recharge", "30", admin_user)
    stale.alarm_email = "noc@example.net"
    stale.save()
    customer.refresh_from_db()
    assert customer.balance == Decimal("30")
    assert customer.alarm_email == "noc@example.net"
