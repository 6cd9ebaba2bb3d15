"""The REST API: the list pages' filters, the models' validation, money only by payments, CDRs by keyset and CSV."""

import csv
import datetime as dt
import io
import uuid
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import CDR, Account, Payment, RateTable
from softswitch_portal.switching.models import MappingGateway

pytestmark = pytest.mark.django_db


@pytest.fixture
def accounts(db):
    table = RateTable.objects.create(name="Retail")
    return {
        "acme": Account.objects.create(name="Acme Telecom", rate_table=table, credit_limit=Decimal("5")),
        "beta": Account.objects.create(name="Beta Voice"),
        "carrier": Account.objects.create(name="Carrier One clearing", account_type="vendor"),
    }


def test_it_lists_accounts_through_the_list_pages_filterset(api, accounts):
    response = api.get("/api/billing/accounts/", {"name": "acme"})
    assert response.status_code == 200, response.content
    assert [row["name"] for row in response.json()["results"]] == ["Acme Telecom"]
    vendors = api.get("/api/billing/accounts/", {"account_type": "vendor"}).json()["results"]
    assert [row["name"] for row in vendors] == ["Carrier One clearing"]
    searched = api.get("/api/billing/accounts/", {"q": "voice"}).json()["results"]
    assert [row["name"] for row in searched] == ["Beta Voice"]


def test_a_bad_filter_is_a_400_naming_it(api, accounts):
    response = api.get("/api/billing/cdrs/", {"caller_ip": "not-an-ip", "start_time_after": "yesterday"})
    assert response.status_code == 400
    assert set(response.json()) == {"caller_ip", "start_time_after"}


def test_a_time_offset_the_database_cannot_take_is_a_400_not_a_500(api, accounts):
    # Found by the schema test: Python parses offsets up to 23:59, PostgreSQL refuses beyond 15:59.
    response = api.get("/api/billing/cdrs/", {"start_time_after": "2030-03-02T22:26:32-18:42"})
    assert response.status_code == 400 and "start_time_after" in response.json()
    assert api.get("/api/billing/cdrs/", {"start_time_after": "2030-03-02T22:26:32+05:45"}).status_code == 200


def test_it_orders_by_any_field(api, accounts):
    names = [row["name"] for row in api.get("/api/billing/accounts/", {"ordering": "-name"}).json()["results"]]
    assert names == ["Carrier One clearing", "Beta Voice", "Acme Telecom"]


def test_it_creates_updates_and_deletes_with_the_models_validation(api, accounts):
    created = api.post(
        "/api/switching/mapping-gateways/",
        {"name": "acme-sbc", "account": accounts["acme"].pk, "remote_ips": ["192.0.2.10"]},
        format="json",
    )
    assert created.status_code == 201, created.content
    gateway_id = created.json()["id"]
    # clean(): the same address claimed by a second customer names the field and the other gateway.
    clash = api.post(
        "/api/switching/mapping-gateways/",
        {"name": "beta-sbc", "account": accounts["beta"].pk, "remote_ips": ["192.0.2.10"]},
        format="json",
    )
    assert clash.status_code == 400
    assert "acme-sbc" in clash.json()["remote_ips"][0]
    # A field's own validator.
    bad_ip = api.patch(f"/api/switching/mapping-gateways/{gateway_id}/", {"remote_ips": ["300.1.2.3"]}, format="json")
    assert bad_ip.status_code == 400 and "remote_ips" in bad_ip.json()
    assert MappingGateway.objects.get(pk=gateway_id).remote_ips == ["192.0.2.10"]
    # A model's clean() across fields.
    vendor = api.patch(f"/api/billing/accounts/{accounts['carrier'].pk}/", {"credit_limit": "10"}, format="json")
    assert vendor.status_code == 400 and "credit_limit" in vendor.json()
    assert api.delete(f"/api/switching/mapping-gateways/{gateway_id}/").status_code == 204
    assert not MappingGateway.objects.filter(pk=gateway_id).exists()


def test_a_protected_delete_is_a_409_saying_what_uses_it(api, accounts):
    MappingGateway.objects.create(name="acme-sbc", account=accounts["acme"], remote_ips=["192.0.2.10"])
    response = api.delete(f"/api/billing/accounts/{accounts['acme'].pk}/")
    assert response.status_code == 409
    assert "acme-sbc" in response.json()["detail"]
    assert Account.objects.filter(pk=accounts["acme"].pk).exists()


def test_a_phones_password_is_written_never_read(api, accounts):
    short = api.post(
        "/api/switching/phones/",
        {"username": "4930111", "password": "short", "account": accounts["acme"].pk},
        format="json",
    )
    assert short.status_code == 400 and "password" in short.json()
    made = api.post(
        "/api/switching/phones/",
        {"username": "4930111", "password": "long-enough-secret", "account": accounts["acme"].pk},
        format="json",
    )
    assert made.status_code == 201, made.content
    assert "password" not in made.json()
    assert "password" not in api.get(f"/api/switching/phones/{made.json()['id']}/").json()


def test_a_balance_is_never_written_only_paid(api, accounts):
    acme = accounts["acme"]
    response = api.patch(f"/api/billing/accounts/{acme.pk}/", {"balance": "1000", "locked": True}, format="json")
    assert response.status_code == 200
    acme.refresh_from_db()
    assert acme.balance == 0 and acme.locked
    created = api.post("/api/billing/accounts/", {"name": "Gamma", "balance": "50"}, format="json")
    assert created.status_code == 201 and Decimal(created.json()["balance"]) == 0


def test_recharge_and_deduct_move_money_as_payments(api, accounts):
    acme = accounts["acme"]
    response = api.post(
        f"/api/billing/accounts/{acme.pk}/recharge/", {"amount": "12.50", "memo": "wire"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert Decimal(response.json()["balance_after"]) == Decimal("12.50")
    assert api.post(f"/api/billing/accounts/{acme.pk}/deduct/", {"amount": "2.5"}, format="json").status_code == 201
    acme.refresh_from_db()
    assert acme.balance == Decimal("10")
    assert list(Payment.objects.filter(account=acme).values_list("kind", flat=True).order_by("id")) == [
        "recharge",
        "deduct",
    ]
    payment = api.post("/api/billing/payments/", {"account": acme.pk, "kind": "recharge", "amount": "1"}, format="json")
    assert payment.status_code == 201
    acme.refresh_from_db()
    assert acme.balance == Decimal("11")


def test_a_bad_amount_is_a_400_naming_it(api, accounts):
    acme = accounts["acme"]
    for amount in ("-5", "0", "abc", "1.123456"):
        response = api.post(f"/api/billing/accounts/{acme.pk}/recharge/", {"amount": amount}, format="json")
        assert response.status_code == 400 and "amount" in response.json(), (amount, response.content)
    acme.refresh_from_db()
    assert acme.balance == 0


def test_payments_are_never_edited_or_deleted(api, accounts):
    acme = accounts["acme"]
    api.post(f"/api/billing/accounts/{acme.pk}/recharge/", {"amount": "5"}, format="json")
    payment = Payment.objects.get(account=acme)
    assert api.patch(f"/api/billing/payments/{payment.pk}/", {"amount": "500"}, format="json").status_code == 405
    assert api.delete(f"/api/billing/payments/{payment.pk}/").status_code == 405


def make_cdrs(count, account=None, **fields):
    start = timezone.now().replace(microsecond=0) - dt.timedelta(hours=1)
    batch = uuid.uuid4().hex[:8]
    rows = [
        CDR(
            call_uuid=f"call-{batch}-{i}",
            # Pairs share a start time: the keyset's id tie-break must neither skip nor repeat them.
            start_time=start + dt.timedelta(seconds=i // 2),
            billing_mode=1,
            caller_number=f"4930{i:04d}",
            callee_number="447911123456",
            account=account,
            account_name=account.name if account else "",
            **fields,
        )
        for i in range(count)
    ]
    return CDR.objects.bulk_create(rows)


def test_cdrs_page_by_the_cdr_pages_keyset_without_skipping_or_repeating(api, accounts):
    made = make_cdrs(7, account=accounts["acme"])
    seen = []
    url = "/api/billing/cdrs/?limit=2"
    while url:
        page = api.get(url).json()
        seen.extend(row["call_uuid"] for row in page["results"])
        url = page["next"]
    newest_first = sorted(made, key=lambda cdr: (cdr.start_time, cdr.pk), reverse=True)
    assert seen == [cdr.call_uuid for cdr in newest_first]
    # Walking back from the last page's previous link gives the page before it.
    last = api.get("/api/billing/cdrs/", {"limit": 2, "ordering": "start_time"}).json()
    assert [row["call_uuid"] for row in last["results"]] == [c.call_uuid for c in newest_first[::-1][:2]]


def test_cdrs_filter_by_the_cdr_pages_filters(api, accounts):
    make_cdrs(3, account=accounts["acme"])
    make_cdrs(2, account=accounts["beta"], caller_ip="198.51.100.7")
    by_account = api.get("/api/billing/cdrs/", {"account": accounts["beta"].pk}).json()["results"]
    assert {row["account_name"] for row in by_account} == {"Beta Voice"} and len(by_account) == 2
    by_ip = api.get("/api/billing/cdrs/", {"caller_ip": "198.51.100.7"}).json()["results"]
    assert len(by_ip) == 2
    by_prefix = api.get("/api/billing/cdrs/", {"caller_prefix": "49300001", "account": accounts["acme"].pk})
    assert [row["caller_number"] for row in by_prefix.json()["results"]] == ["49300001"]


def test_cdrs_come_as_csv_with_formula_cells_neutralised(api, accounts):
    make_cdrs(2, account=accounts["acme"], caller_user_agent='=HYPERLINK("http://x")')
    response = api.get("/api/billing/cdrs/", {"format": "csv", "account": accounts["acme"].pk})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 2
    assert all(row["caller_user_agent"].startswith("'=") for row in rows)
    by_accept = api.get("/api/billing/cdrs/", HTTP_ACCEPT="text/csv")
    assert by_accept["Content-Type"].startswith("text/csv")


def test_cdrs_are_read_only(api, accounts):
    (cdr,) = make_cdrs(1, account=accounts["acme"])
    assert api.patch(f"/api/billing/cdrs/{cdr.pk}/", {"fee": "0"}, format="json").status_code == 405
    assert api.post("/api/billing/cdrs/", {"call_uuid": "x"}, format="json").status_code == 405


def test_the_list_pages_and_the_api_share_each_filterset():
    from billing.api.views import AccountViewSet, CDRViewSet
    from billing.views.accounts import AccountListView
    from billing.views.cdrs import CDRListView

    assert CDRViewSet.filterset_class is CDRListView.filterset
    assert AccountViewSet.filterset_class is AccountListView.filterset


def test_a_rerating_job_is_made_with_the_pages_checks_and_the_money_scope(api, make_client, with_token, accounts):
    start = timezone.now() - dt.timedelta(days=2)
    body = {"account": accounts["acme"].pk, "start": start.isoformat(), "end": timezone.now().isoformat()}
    _, write_token = make_client(scopes=["read", "write"])
    refused = with_token(write_token).post("/api/billing/rerating-jobs/", body, format="json")
    assert refused.status_code == 403 and "'money' scope" in refused.json()["detail"]
    made = api.post("/api/billing/rerating-jobs/", body, format="json")
    assert made.status_code == 201, made.content
    assert made.json()["status"] == "queued" and made.json()["account"] == accounts["acme"].pk
    backwards = api.post("/api/billing/rerating-jobs/", {**body, "end": start.isoformat()}, format="json")
    assert backwards.status_code == 400 and "end" in backwards.json()


def test_vos_access_rules_are_managed_through_the_api(api):
    made = api.post("/api/vos/access-rules/", {"network": "192.0.2.0/24", "directory": "/external/server/GetCdr"},
                    format="json")  # fmt: skip
    assert made.status_code == 201, made.content
    bad = api.post("/api/vos/access-rules/", {"network": "192.0.2.0/24", "directory": "/elsewhere"}, format="json")
    assert bad.status_code == 400 and "directory" in bad.json()
    listed = api.get("/api/vos/access-rules/", {"q": "192.0.2"}).json()["results"]
    assert [row["directory"] for row in listed] == ["/external/server/GetCdr"]


def test_the_trust_permissions_hold_on_the_api_as_on_the_pages(make_client, with_token, django_user_model, db):
    # A switching engineer and a billing clerk may write gateways and payments, but not widen a trunk past /24,
    # raise a credit limit or pay above SS_PAYMENT_APPROVAL_AMOUNT: those need permissions of their own.
    from django.contrib.auth.models import Group

    from billing.models import Account

    engineer = django_user_model.objects.create_user("eng", password="x-not-used-9f3k")
    engineer.groups.add(*Group.objects.filter(name__in=("Switching engineer", "Billing clerk")))
    _, token = make_client(owner=engineer)
    api = with_token(token)
    account = Account.objects.create(name="Trusty", account_type="customer")
    wide = api.post("/api/switching/mapping-gateways/", {"name": "wide", "account": account.pk,
                    "remote_ips": ["198.51.0.0/16"]}, format="json")  # fmt: skip
    assert wide.status_code == 400 and "remote_ips" in wide.json(), wide.content
    narrow = api.post("/api/switching/mapping-gateways/", {"name": "narrow", "account": account.pk,
                      "remote_ips": ["198.51.100.0/24"]}, format="json")  # fmt: skip
    assert narrow.status_code == 201, narrow.content
    credit = api.patch(f"/api/billing/accounts/{account.pk}/", {"credit_limit": "500"}, format="json")
    assert credit.status_code == 400 and "credit_limit" in credit.json(), credit.content
    big = api.post(f"/api/billing/accounts/{account.pk}/recharge/", {"amount": "1000000"}, format="json")
    assert big.status_code == 400 and "amount" in big.json(), big.content
    small = api.post(f"/api/billing/accounts/{account.pk}/recharge/", {"amount": "10"}, format="json")
    assert small.status_code == 201, small.content
