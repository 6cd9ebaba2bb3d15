"""The audit trail: one history row per change to configuration, money and blacklists, with the user who made it,
each field before and after; the History tab of an object's page; the audit page filtered by user, model and time."""

import datetime as dt
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

from billing.models import Account, Payment
from security.models import ListEntry
from softswitch_portal.switching.models import MappingGateway


def entries_for(obj):
    return LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(obj), object_pk=str(obj.pk)).order_by(
        "timestamp", "pk"
    )


def admin_of(django_user_model, username="admin-ann"):
    user = django_user_model.objects.create_user(username, password="x-Secret-123456")
    user.groups.add(Group.objects.get(name="Administrator"))
    return user


def account_form(account, **changes):
    form = {
        "name": account.name,
        "account_type": account.account_type,
        "rate_table": account.rate_table_id,
        "credit_limit": str(account.credit_limit),
        "capacity": str(account.capacity),
        "low_balance_threshold": "",
    }
    if account.anti_overdraft:
        form["anti_overdraft"] = "on"
    return {**form, **changes}


@pytest.mark.django_db
def test_each_change_through_the_portal_is_one_history_row_with_its_user(client, django_user_model, portal_objects):
    account = portal_objects.customer
    ann = admin_of(django_user_model)
    client.force_login(ann)
    before = entries_for(account).count()
    url = reverse("billing:account_edit", args=[account.pk])
    assert client.post(url, account_form(account, credit_limit="250")).status_code == 302
    assert client.post(url, account_form(account, credit_limit="250", name="Acme Wholesale")).status_code == 302

    rows = list(entries_for(account))[before:]
    assert len(rows) == 2
    first, second = rows
    assert (first.actor, first.action) == (ann, LogEntry.Action.UPDATE)
    assert list(first.changes_dict) == ["credit_limit"]
    assert [Decimal(value) for value in first.changes_dict["credit_limit"]] == [Decimal("5"), Decimal("250")]
    assert second.actor == ann
    assert second.changes_dict == {"name": ["Acme Telecom", "Acme Wholesale"]}
    assert first.remote_addr == "127.0.0.1"


@pytest.mark.django_db
def test_trunk_ips_payments_and_blacklist_entries_are_recorded(client, django_user_model, portal_objects):
    ann = admin_of(django_user_model)
    client.force_login(ann)
    gateway = portal_objects.mapping
    form = {
        "name": gateway.name,
        "account": gateway.account_id,
        "enabled": "on",
        "auth_mode": gateway.auth_mode,
        "remote_ips": "192.0.2.10, 192.0.2.11",
        "capacity": "0",
        "cps_limit": "0",
        "conversation_limit": "0",
        "route_policy": gateway.route_policy,
    }
    assert client.post(reverse("switching:mappinggateway_edit", args=[gateway.pk]), form).status_code == 302
    change = entries_for(MappingGateway.objects.get(pk=gateway.pk)).get(
        action=LogEntry.Action.UPDATE, changes__has_key="remote_ips"
    )
    assert change.actor == ann
    before, after = change.changes_dict["remote_ips"]
    assert "192.0.2.11" not in str(before) and "192.0.2.11" in str(after)

    payment_url = reverse("billing:payment_add")
    data = {"account": gateway.account_id, "kind": "recharge", "amount": "12.50", "memo": "wire 991"}
    assert client.post(payment_url, data).status_code == 302
    payment = Payment.objects.get(memo="wire 991")
    created = entries_for(payment).get()
    assert (created.actor, created.action) == (ann, LogEntry.Action.CREATE)
    assert created.changes_dict["amount"][1] in ("12.50", "12.5000", "12.5")

    entry = portal_objects.list_entry if hasattr(portal_objects, "list_entry") else ListEntry.objects.first()
    assert client.post(reverse("security:listentry_delete", args=[entry.pk])).status_code == 302
    deleted = LogEntry.objects.get(
        content_type=ContentType.objects.get_for_model(ListEntry),
        object_pk=str(entry.pk),
        action=LogEntry.Action.DELETE,
    )
    assert (deleted.actor, deleted.action) == (ann, LogEntry.Action.DELETE)


@pytest.mark.django_db
def test_an_objects_page_has_a_history_tab_for_those_who_may_read_the_trail(client, django_user_model, portal_objects):
    account = portal_objects.customer
    ann = admin_of(django_user_model)
    client.force_login(ann)
    client.post(reverse("billing:account_edit", args=[account.pk]), account_form(account, credit_limit="99"))
    detail = client.get(reverse("billing:account", args=[account.pk])).content.decode()
    history_url = reverse("auditlog:object_history", args=["billing", "account", account.pk])
    assert history_url in detail
    history = client.get(history_url)
    assert history.status_code == 200
    text = history.content.decode()
    assert "admin-ann" in text and "credit_limit" in text and "99" in text

    clerk = django_user_model.objects.create_user("clerk", password="x-Secret-123456")
    clerk.groups.add(Group.objects.get(name="Billing clerk"))
    client.force_login(clerk)
    assert history_url not in client.get(reverse("billing:account", args=[account.pk])).content.decode()
    assert client.get(history_url).status_code == 403


@pytest.mark.django_db
def test_the_audit_page_filters_by_user_model_and_time(client, django_user_model, portal_objects):
    ann = admin_of(django_user_model, "admin-ann")
    bob = admin_of(django_user_model, "admin-bob")
    account = portal_objects.customer
    client.force_login(ann)
    client.post(reverse("billing:account_edit", args=[account.pk]), account_form(account, name="By Ann"))
    account.refresh_from_db()
    client.force_login(bob)
    client.post(reverse("billing:account_edit", args=[account.pk]), account_form(account, name="By Bob"))
    client.get(reverse("billing:account", args=[account.pk]))  # shows, and so clears, the "Modified" message
    old = LogEntry.objects.filter(actor=bob).get()
    LogEntry.objects.filter(pk=old.pk).update(timestamp=timezone.now() - dt.timedelta(days=3))

    url = reverse("auditlog:logentry_list")
    by_ann = client.get(url, {"actor": ann.pk}).content.decode()
    assert "By Ann" in by_ann and "By Bob" not in by_ann
    account_type = ContentType.objects.get_for_model(Account).pk
    by_model = client.get(url, {"content_type": account_type}).content.decode()
    assert "By Ann" in by_model and "By Bob" in by_model
    gateway_type = ContentType.objects.get_for_model(MappingGateway).pk
    assert "By Ann" not in client.get(url, {"content_type": gateway_type}).content.decode()
    since = (timezone.localtime() - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    recent = client.get(url, {"timestamp_after": since}).content.decode()
    assert "By Ann" in recent and "By Bob" not in recent

    export = client.get(url, {"actor": ann.pk, "export": "csv"})
    body = b"".join(export.streaming_content).decode()
    assert "By Ann" in body and "admin-ann" in body
