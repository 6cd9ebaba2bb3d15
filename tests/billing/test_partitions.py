"""The CDR table is partitioned by day; records never fail for want of a partition."""

import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction

from billing import partitions
from billing.models import CDR

pytestmark = pytest.mark.django_db


def partition_of(call_uuid):
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM billing_cdr WHERE call_uuid = %s", [call_uuid])
        return cursor.fetchone()[0]


def test_todays_record_lands_in_todays_partition():
    now = dt.datetime.now(dt.UTC)
    CDR.objects.create(call_uuid="today", start_time=now, billing_mode=1)
    assert partition_of("today") == partitions.partition_name(now.date())


def test_a_record_far_in_the_past_lands_in_the_default_and_moves_when_its_day_gets_a_partition():
    old = dt.datetime(2020, 2, 29, 23, 59, 59, tzinfo=dt.UTC)
    CDR.objects.create(call_uuid="old", start_time=old, billing_mode=-2)
    assert partition_of("old") == "billing_cdr_default"
    created = partitions.ensure_partitions(today=old.date(), days_behind=0, days_ahead=0)
    assert created == ["billing_cdr_p20200229"]
    assert partition_of("old") == "billing_cdr_p20200229"
    assert CDR.objects.filter(call_uuid="old", billing_mode=-2).count() == 1


def test_ensure_partitions_is_idempotent():
    partitions.ensure_partitions()
    assert partitions.ensure_partitions() == []


def test_the_same_call_cannot_be_recorded_twice():
    now = dt.datetime.now(dt.UTC)
    CDR.objects.create(call_uuid="dup", start_time=now, billing_mode=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        CDR.objects.create(call_uuid="dup", start_time=now, billing_mode=1)
