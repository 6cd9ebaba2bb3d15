"""Validation of accounts and rates."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.models import Account, Rate, RateTable

pytestmark = pytest.mark.django_db


def errors_of(instance):
    with pytest.raises(ValidationError) as exc:
        instance.full_clean()
    return exc.value.message_dict


@pytest.fixture
def table():
    return RateTable.objects.create(name="T")


def test_a_rate_refuses_negative_price_zero_period_and_bad_prefix(table):
    errors = errors_of(
        Rate(rate_table=table, prefix="44x", price_per_minute=Decimal("-0.1"), first_period=0, next_period=6)
    )
    assert set(errors) >= {"prefix", "price_per_minute", "first_period"}


def test_a_rate_validity_must_end_after_it_starts(table):
    now = timezone.now()
    rate = Rate(rate_table=table, prefix="44", price_per_minute=Decimal("0.1"), valid_from=now, valid_to=now)
    assert "valid_to" in errors_of(rate)


def test_the_database_refuses_a_zero_period_even_without_the_form(table):
    with pytest.raises(IntegrityError), transaction.atomic():
        Rate.objects.create(rate_table=table, prefix="1", price_per_minute=Decimal("0.1"), first_period=0)


def test_two_open_ended_rates_for_one_prefix_collide(table):
    Rate.objects.create(rate_table=table, prefix="1", price_per_minute=Decimal("0.1"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Rate.objects.create(rate_table=table, prefix="1", price_per_minute=Decimal("0.2"))


def test_a_vendor_clearing_account_has_no_credit_limit():
    account = Account(name="V", account_type="vendor", credit_limit=Decimal("10"))
    assert "credit_limit" in errors_of(account)


def test_a_customer_credit_limit_cannot_be_negative():
    assert "credit_limit" in errors_of(Account(name="C", credit_limit=Decimal("-1")))


def test_balance_is_not_editable_by_forms():
    assert Account._meta.get_field("balance").editable is False
