"""FilterSets: every model field has a filter or a stated reason not to, and the filters filter."""

import datetime as dt
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone

from billing.filtersets import AccountFilterSet, CDRFilterSet, PaymentFilterSet, RateFilterSet, RateTableFilterSet
from billing.models import CDR, Account, Rate, RateTable
from billing.rerating_filtersets import RerateChangeFilterSet, RerateJobFilterSet
from security.api_client_filtersets import APIClientFilterSet, APIRequestLogFilterSet
from security.ban_tables import BanFilterSet
from security.filtersets import (
    AlarmFilterSet,
    BlacklistExemptionFilterSet,
    BlackWhiteListGroupFilterSet,
    DynamicBlacklistEntryFilterSet,
    IpCountryTableFilterSet,
    ListEntryFilterSet,
)
from security.ip_country_range_pages import IpCountryRangeFilterSet
from softswitch_portal.core.filtersets import LoginEventFilterSet
from softswitch_portal.generic.attributes import model_fields
from softswitch_portal.switching.filtersets import (
    CallerNumberPoolFilterSet,
    MappingGatewayFilterSet,
    NumberTransformRuleFilterSet,
    PhoneFilterSet,
    RoutingGatewayFilterSet,
    RoutingScheduleFilterSet,
    SystemParameterFilterSet,
    TestCallFilterSet,
)
from softswitch_portal.switching.models import MappingGateway, RoutingSchedule

FILTERSETS = [
    LoginEventFilterSet,
    AccountFilterSet,
    PaymentFilterSet,
    RateTableFilterSet,
    RateFilterSet,
    CDRFilterSet,
    MappingGatewayFilterSet,
    RoutingGatewayFilterSet,
    PhoneFilterSet,
    NumberTransformRuleFilterSet,
    RoutingScheduleFilterSet,
    CallerNumberPoolFilterSet,
    SystemParameterFilterSet,
    BlackWhiteListGroupFilterSet,
    ListEntryFilterSet,
    DynamicBlacklistEntryFilterSet,
    BlacklistExemptionFilterSet,
    IpCountryTableFilterSet,
    RerateJobFilterSet,
    RerateChangeFilterSet,
    APIClientFilterSet,
    APIRequestLogFilterSet,
    AlarmFilterSet,
    BanFilterSet,
    IpCountryRangeFilterSet,
    TestCallFilterSet,
]


def filtered_fields(filterset):
    return {f.field_name.split("__")[0] for f in filterset.base_filters.values()}


def test_every_model_of_the_apps_has_a_filterset():
    models = {
        m for label in ("billing", "core", "switching", "security") for m in apps.get_app_config(label).get_models()
    }
    assert {fs._meta.model for fs in FILTERSETS} == models


@pytest.mark.parametrize("filterset", FILTERSETS, ids=lambda fs: fs.__name__)
def test_every_field_has_a_filter_or_a_reason_for_none(filterset):
    fields = {f.name for f in model_fields(filterset._meta.model)}
    filtered = filtered_fields(filterset)
    missing = sorted(name for name in fields - filtered if not filterset.unfiltered_fields.get(name, "").strip())
    assert not missing, f"{filterset.__name__}: add a filter or an unfiltered_fields reason for {missing}"
    stale = sorted(set(filterset.unfiltered_fields) - fields)
    assert not stale, f"{filterset.__name__}.unfiltered_fields names fields the model lacks: {stale}"
    contradictory = sorted(set(filterset.unfiltered_fields) & filtered)
    assert not contradictory, f"{filterset.__name__}: {contradictory} have a filter and a reason for none"


@pytest.mark.parametrize("filterset", FILTERSETS, ids=lambda fs: fs.__name__)
def test_every_filterset_has_a_quick_search(filterset):
    assert "q" in filterset.base_filters and filterset.search_fields


@pytest.mark.django_db
def test_rates_matching_a_number_are_the_longest_match_candidates():
    table = RateTable.objects.create(name="Deck")
    for prefix in ("49", "4930", "4989", "1"):
        Rate.objects.create(rate_table=table, prefix=prefix, price_per_minute=Decimal("0.01"))
    qs = RateFilterSet({"number": "493012345"}, queryset=Rate.objects.all()).qs
    assert sorted(qs.values_list("prefix", flat=True)) == ["49", "4930"]


@pytest.mark.django_db
def test_rates_valid_at_a_moment():
    table = RateTable.objects.create(name="Deck")
    now = timezone.now()
    Rate.objects.create(rate_table=table, prefix="1", price_per_minute=1, valid_to=now - dt.timedelta(days=1))
    Rate.objects.create(rate_table=table, prefix="2", price_per_minute=1, valid_from=now - dt.timedelta(days=1))
    Rate.objects.create(rate_table=table, prefix="3", price_per_minute=1, valid_from=now + dt.timedelta(days=1))
    Rate.objects.create(rate_table=table, prefix="4", price_per_minute=1)
    qs = RateFilterSet({"valid_at": now.isoformat()}, queryset=Rate.objects.all()).qs
    assert sorted(qs.values_list("prefix", flat=True)) == ["2", "4"]


@pytest.mark.django_db
def test_accounts_by_quick_search_balance_and_flag():
    Account.objects.create(name="Acme Telecom", locked=True)
    Account.objects.create(name="Beta Voice", description="acme's sister")
    Account.objects.filter(name="Beta Voice").update(balance=Decimal("-3"))
    assert {a.name for a in AccountFilterSet({"q": "acme"}, queryset=Account.objects.all()).qs} == {
        "Acme Telecom",
        "Beta Voice",
    }
    assert [a.name for a in AccountFilterSet({"balance_max": "0"}, queryset=Account.objects.all()).qs] == ["Beta Voice"]
    assert [a.name for a in AccountFilterSet({"locked": "true"}, queryset=Account.objects.all()).qs] == ["Acme Telecom"]
    assert AccountFilterSet({"locked": ""}, queryset=Account.objects.all()).qs.count() == 2


@pytest.mark.django_db
def test_gateways_by_list_entry_and_many_to_many():
    from softswitch_portal.switching.models import NumberTransformRule

    account = Account.objects.create(name="Acme")
    rule = NumberTransformRule.objects.create(name="Strip", target="caller")
    first = MappingGateway.objects.create(name="first", account=account, remote_ips=["192.0.2.1", "192.0.2.2"])
    MappingGateway.objects.create(name="second", account=account, remote_ips=["198.51.100.1"], enabled=False)
    first.caller_transforms.add(rule)
    qs = MappingGateway.objects.all()
    assert [g.name for g in MappingGatewayFilterSet({"remote_ips": "192.0.2.2"}, queryset=qs).qs] == ["first"]
    assert [g.name for g in MappingGatewayFilterSet({"caller_transforms": [rule.pk]}, queryset=qs).qs] == ["first"]
    assert [g.name for g in MappingGatewayFilterSet({"enabled": "false"}, queryset=qs).qs] == ["second"]
    assert [g.name for g in MappingGatewayFilterSet({"id": f"{first.pk}"}, queryset=qs).qs] == ["first"]


@pytest.mark.django_db
def test_schedules_active_on_a_day_include_the_every_day_ones():
    RoutingSchedule.objects.create(
        name="weekdays", weekdays=[0, 1, 2, 3, 4], start_time=dt.time(8), end_time=dt.time(18)
    )
    RoutingSchedule.objects.create(name="weekend", weekdays=[5, 6], start_time=dt.time(8), end_time=dt.time(18))
    RoutingSchedule.objects.create(name="always", weekdays=[], start_time=dt.time(0), end_time=dt.time(23))
    qs = RoutingScheduleFilterSet({"weekdays": "6"}, queryset=RoutingSchedule.objects.all()).qs
    assert sorted(s.name for s in qs) == ["always", "weekend"]


@pytest.mark.django_db
def test_a_malformed_value_makes_the_filterset_invalid_rather_than_crash():
    filterset = CDRFilterSet({"caller_ip": "192.0.2.300", "start_time_after": "soon"}, queryset=CDR.objects.all())
    assert not filterset.is_valid()
    assert set(filterset.errors) == {"caller_ip", "start_time_after"}


@pytest.mark.django_db
def test_number_prefix_filters_can_use_the_pattern_ops_indexes():
    """``startswith`` compiles to LIKE 'x%' on the bare column, which varchar_pattern_ops serves;
    ``istartswith`` would wrap the column in UPPER() and scan every partition."""
    for params in ({"caller_prefix": "4930"}, {"callee_prefix": "4930"}):
        qs = CDRFilterSet(params, queryset=CDR.objects.all()).qs
        sql, sql_params = qs.query.sql_with_params()
        assert "UPPER" not in sql and "LIKE" in sql
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql, sql_params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "Seq Scan" not in plan, plan
