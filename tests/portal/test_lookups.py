"""Choosing accounts, gateways and phones by typing: the lookup endpoint and the field that uses it."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from billing.filtersets import CDRFilterSet, PaymentFilterSet
from billing.forms import GatewayBillForm, RevenueReportForm
from billing.models import CDR, Account
from security.filtersets import DynamicBlacklistEntryFilterSet
from softswitch_portal.generic.lookups import LIMIT, MAX_QUERY, LookupField, LookupFilter
from softswitch_portal.switching.filtersets import MappingGatewayFilterSet, PhoneFilterSet, RoutingGatewayFilterSet
from softswitch_portal.switching.models import MappingGateway, Phone, RoutingGateway


def lookup(client, kind, **params):
    return client.get(reverse("api:lookup", args=[kind]), params)


def found(client, kind, q=""):
    response = lookup(client, kind, q=q)
    assert response.status_code == 200, response.content
    return [row["text"] for row in response.json()["results"]]


@pytest.fixture
def accounts(db):
    names = ["Acme Telecom", "Beta Voice", "Nacme Ltd", "Carrier One clearing"]
    made = {name: Account.objects.create(name=name) for name in names[:3]}
    made["Carrier One clearing"] = Account.objects.create(name="Carrier One clearing", account_type="vendor")
    return made


def test_it_needs_a_logged_in_user(client, accounts):
    response = lookup(client, "account", q="acme")
    assert response.status_code == 403
    assert "log in" in response.json()["detail"]


def test_it_needs_the_permission_to_list_the_rows(client, django_user_model, accounts):
    viewer = django_user_model.objects.create_user("viewer", password="not-a-real-secret-43")
    viewer.user_permissions.add(Permission.objects.get(codename="view_account"))
    client.force_login(viewer)
    assert lookup(client, "account", q="acme").status_code == 200
    assert lookup(client, "routing-gateway", q="x").status_code == 403


def test_it_matches_the_name_anywhere_and_puts_names_starting_with_the_text_first(operator_client, accounts):
    assert found(operator_client, "account", "acme") == ["Acme Telecom", "Nacme Ltd"]
    assert found(operator_client, "account", "ACME T") == ["Acme Telecom"]
    assert found(operator_client, "account", "nobody") == []


def test_it_matches_the_id(operator_client, accounts):
    beta = accounts["Beta Voice"]
    response = lookup(operator_client, "account", q=str(beta.pk))
    first = response.json()["results"][0]
    assert first == {"id": beta.pk, "text": "Beta Voice", "hint": "Customer"}


def test_each_kind_offers_only_its_rows(operator_client, accounts):
    assert found(operator_client, "vendor-account", "") == ["Carrier One clearing"]
    assert "Carrier One clearing" not in found(operator_client, "customer-account", "")
    assert len(found(operator_client, "account", "")) == 4


def test_it_answers_at_most_the_limit_and_says_there_are_more(operator_client, db):
    Account.objects.bulk_create(Account(name=f"bulk {i:03d}") for i in range(LIMIT + 5))
    body = lookup(operator_client, "account", q="bulk").json()
    assert len(body["results"]) == LIMIT and body["more"] is True
    assert [row["text"] for row in body["results"]][:2] == ["bulk 000", "bulk 001"]
    assert lookup(operator_client, "account", q="bulk 02").json()["more"] is False


def test_gateways_are_found_by_ip_or_host_and_phones_by_number(operator_client, accounts):
    acme = accounts["Acme Telecom"]
    MappingGateway.objects.create(name="acme-sbc", account=acme, remote_ips=["192.0.2.10"])
    RoutingGateway.objects.create(name="carrier-one", host="198.51.100.7")
    Phone.objects.create(username="4930555", password="s3cret-digest", account=acme)
    response = lookup(operator_client, "mapping-gateway", q="192.0.2.1")
    assert response.json()["results"][0] == {
        "id": MappingGateway.objects.get().pk,
        "text": "acme-sbc",
        "hint": "Acme Telecom · 192.0.2.10",
    }
    assert found(operator_client, "routing-gateway", "198.51") == ["carrier-one"]
    assert found(operator_client, "phone", "4930") == ["4930555"]
    assert found(operator_client, "phone", "555") == []  # a number prefix, as the phone list filters it


@pytest.mark.parametrize(
    ("q", "status"),
    [
        ("x" * (MAX_QUERY + 1), 400),
        ("acme\x00", 400),
        ("9" * 40, 200),  # digits past a bigint: not an id, and no database error
        ("²", 200),  # a Unicode digit is no id either
        ("%_'\\", 200),
    ],
    ids=["too long", "NUL", "huge number", "unicode digit", "SQL wildcards"],
)
def test_bad_input_is_refused_or_finds_nothing(operator_client, accounts, q, status):
    response = lookup(operator_client, "account", q=q)
    assert response.status_code == status
    if status == 200:
        assert response.json() == {"results": [], "more": False}


def test_an_unknown_kind_is_not_found_and_only_get_is_answered(operator_client, accounts):
    assert lookup(operator_client, "password").status_code == 404
    assert operator_client.post(reverse("api:lookup", args=["account"]), {"q": "a"}).status_code == 405


def test_foreign_key_filters_onto_big_tables_become_lookups_by_themselves():
    """Declared or generated from Meta.fields, a filter on an account, gateway or phone lists no rows."""
    for filterset, name in [
        (CDRFilterSet, "account"),
        (CDRFilterSet, "vendor_account"),
        (CDRFilterSet, "mapping_gateway"),
        (CDRFilterSet, "routing_gateway"),
        (CDRFilterSet, "phone"),
        (PaymentFilterSet, "account"),
        (PhoneFilterSet, "account"),
        (MappingGatewayFilterSet, "account"),
        (RoutingGatewayFilterSet, "clearing_account"),
        (DynamicBlacklistEntryFilterSet, "mapping_gateway"),
    ]:
        assert isinstance(filterset.base_filters[name], LookupFilter), (filterset.__name__, name)
    # Small sets keep their select: a handful of rate tables or list groups reads better as a list.
    assert not isinstance(MappingGatewayFilterSet.base_filters["caller_list_groups"], LookupFilter)


def test_the_field_takes_an_id_and_shows_the_name_with_one_query(accounts, django_assert_num_queries):
    acme = accounts["Acme Telecom"]
    filterset = CDRFilterSet({"account": str(acme.pk)}, queryset=CDR.objects.all())
    with django_assert_num_queries(1):
        assert filterset.is_valid()
        html = str(filterset.form["account"])
    assert f'name="account" value="{acme.pk}"' in html and 'value="Acme Telecom"' in html
    assert "<option" not in html and 'data-lookup-url="/api/lookup/account/"' in html
    assert 'placeholder="Any"' in html


def test_an_unknown_or_malformed_id_is_a_form_error(accounts):
    for value in ("999999", "abc", "1.5"):
        filterset = CDRFilterSet({"account": value}, queryset=CDR.objects.all())
        assert not filterset.is_valid()
        assert filterset.errors["account"] == [f"No account has the id {value}: pick one from the list."]
    vendor = accounts["Carrier One clearing"]
    # A customer account is not a vendor account: the field accepts only its kind's rows.
    assert not CDRFilterSet({"vendor_account": accounts["Acme Telecom"].pk}, queryset=CDR.objects.all()).is_valid()
    assert CDRFilterSet({"vendor_account": vendor.pk}, queryset=CDR.objects.all()).is_valid()


def test_report_forms_pick_by_typing_too(accounts):
    acme = accounts["Acme Telecom"]
    form = RevenueReportForm({"account": str(acme.pk)})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["account"] == acme
    assert isinstance(form.fields["account"], LookupField)
    assert 'placeholder="All customers"' in str(form["account"])
    gateways = GatewayBillForm({})
    assert "<option" not in str(gateways["mapping_gateway"]) + str(gateways["routing_gateway"])
    assert "js/lookup.js" in str(form.media)
