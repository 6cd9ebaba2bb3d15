"""Roles: the groups the core migration creates, a NOC user refused every write, and the permissions for what
moves money or trust (credit limits, large payments, wide mapping-gateway networks) kept apart from change."""

import json
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from billing.models import Account, Payment
from softswitch_portal.core import roles
from softswitch_portal.core.models import SystemParameter
from softswitch_portal.switching.models import MappingGateway

# Not writes of the portal's data: logging in and out, and the Django admin (staff only; a NOC user is not).
NOT_PORTAL_WRITES = ("login", "logout", "admin:")
# POSTs that write nothing, which a NOC may send: the routing simulator plans a call on the snapshot and reads
# the live counters only.
READ_ONLY_POSTS = ("switching-api:simulate",)
# The VOS3000-compatible API refuses as VOS does: HTTP 200 with a non-zero retCode.
VOS_API = "external/"


def member_of(django_user_model, role, username=None):
    user = django_user_model.objects.create_user(username or role.lower().replace(" ", "-"), password="x-Secret-123456")
    user.groups.add(Group.objects.get(name=role))
    return user


def every_pattern(resolver=None, prefix="", namespace=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from every_pattern(entry, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            yield f"{namespace}{entry.name or ''}", prefix + str(entry.pattern), entry.callback


def takes_post(callback):
    """Whether the view has a POST handler: a page's form, an API endpoint's create or action."""
    actions = getattr(callback, "actions", None)  # a REST viewset's route: its methods mapped to actions
    if actions is not None:
        return "post" in actions
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    return view_class is not None and hasattr(view_class, "post")


def concrete_path(route):
    """A URL for the pattern: each path argument (converter or regex group) filled with 1."""
    path = re.sub(r"\(\?P<\w+>[^)]*\)", "1", route)
    path = re.sub(r"<(?:\w+:)?\w+>", "1", path)
    return "/" + path.replace("^", "").replace("$", "").replace("\\", "")


def test_the_migration_creates_the_roles_with_their_permissions(db):
    names = set(Group.objects.values_list("name", flat=True))
    assert {"NOC", "Billing clerk", "Switching engineer", "Security reviewer", "Administrator"} <= names

    def perms(role):
        group = Group.objects.get(name=role)
        return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}

    noc = perms("NOC")
    assert "billing.view_account" in noc and "switching.view_mappinggateway" in noc
    assert not [p for p in noc if not p.split(".")[1].startswith("view_")], "NOC is read-only"
    assert "billing.change_account" in perms("Billing clerk")
    assert "switching.change_mappinggateway" not in perms("Billing clerk")
    assert "switching.change_mappinggateway" in perms("Switching engineer")
    assert "auditlog.view_logentry" in perms("Security reviewer")
    trust = {roles.CREDIT_LIMIT, roles.LARGE_PAYMENT, roles.WIDE_NETWORK}
    for role in ("NOC", "Billing clerk", "Switching engineer", "Security reviewer"):
        assert not trust & perms(role), f"{role} holds a trust permission"
    assert trust <= perms("Administrator")


def test_a_noc_user_is_refused_every_write(client, django_user_model, portal_objects):
    client.force_login(member_of(django_user_model, "NOC"))
    payments = Payment.objects.count()
    tried = []
    refused_otherwise = []
    for name, route, callback in every_pattern():
        if name.startswith(NOT_PORTAL_WRITES) or name in NOT_PORTAL_WRITES or not takes_post(callback):
            continue
        if name in READ_ONLY_POSTS:
            continue
        if "(?P<format>" in route:
            continue  # the same API view again, with a format suffix
        url = concrete_path(route)
        response = client.post(url, {"name": "noc-was-here", "amount": "1", "kind": "recharge"})
        tried.append(url)
        if route.startswith(VOS_API):
            # VOS3000 labels its JSON text/html.
            if json.loads(response.content).get("retCode") == 0:
                refused_otherwise.append(f"{name} {url}: retCode 0")
            continue
        if response.status_code != 403:
            refused_otherwise.append(f"{name} {url}: {response.status_code}")
    assert not refused_otherwise, "a NOC user's POST was not refused with 403"
    assert len(tried) > 20, tried
    assert not Account.objects.filter(name="noc-was-here").exists()
    assert Payment.objects.count() == payments


@pytest.mark.django_db
def test_a_credit_limit_change_needs_the_credit_limit_permission(client, django_user_model, portal_objects):
    account = portal_objects.customer
    form = {
        "name": account.name,
        "account_type": account.account_type,
        "rate_table": account.rate_table_id,
        "credit_limit": "5000",
        "capacity": "0",
        "low_balance_threshold": "",
    }
    client.force_login(member_of(django_user_model, "Billing clerk"))
    page = client.post(reverse("billing:account_edit", args=[account.pk]), form)
    assert page.status_code == 200
    assert "credit-limit permission" in page.content.decode()
    account.refresh_from_db()
    assert account.credit_limit == Decimal("5")

    # Anything else on the account the clerk may change.
    page = client.post(
        reverse("billing:account_edit", args=[account.pk]), {**form, "credit_limit": "5", "locked": "on"}
    )
    assert page.status_code == 302
    account.refresh_from_db()
    assert account.locked

    client.force_login(member_of(django_user_model, "Administrator"))
    assert client.post(reverse("billing:account_edit", args=[account.pk]), form).status_code == 302
    account.refresh_from_db()
    assert account.credit_limit == Decimal("5000")


@pytest.mark.django_db
def test_a_payment_above_the_parameter_needs_the_large_payment_permission(client, django_user_model, portal_objects):
    SystemParameter.objects.create(name="SS_PAYMENT_APPROVAL_AMOUNT", value="500")
    account = portal_objects.customer
    client.force_login(member_of(django_user_model, "Billing clerk"))
    url = reverse("billing:payment_add")
    page = client.post(url, {"account": account.pk, "kind": "recharge", "amount": "500.01", "memo": "big"})
    assert page.status_code == 200
    assert "large-payment permission" in page.content.decode()
    assert not Payment.objects.filter(memo="big").exists()
    assert (
        client.post(url, {"account": account.pk, "kind": "recharge", "amount": "500", "memo": "ok"}).status_code == 302
    )

    client.force_login(member_of(django_user_model, "Administrator"))
    assert (
        client.post(url, {"account": account.pk, "kind": "recharge", "amount": "5000", "memo": "big"}).status_code
        == 302
    )
    assert Payment.objects.filter(memo="big").exists()


def gateway_form(gateway, remote_ips):
    return {
        "name": gateway.name,
        "account": gateway.account_id,
        "enabled": "on",
        "auth_mode": gateway.auth_mode,
        "remote_ips": remote_ips,
        "capacity": "0",
        "cps_limit": "0",
        "conversation_limit": "0",
        "route_policy": gateway.route_policy,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("network", "wide"),
    [("198.51.100.0/24", False), ("198.51.0.0/16", True), ("2001:db8:1::/48", False), ("2001:db8::/32", True)],
)
def test_a_mapping_gateway_network_wider_than_24_or_48_needs_the_wide_network_permission(
    client, django_user_model, portal_objects, network, wide
):
    gateway = portal_objects.mapping
    url = reverse("switching:mappinggateway_edit", args=[gateway.pk])
    client.force_login(member_of(django_user_model, "Switching engineer"))
    page = client.post(url, gateway_form(gateway, f"192.0.2.10, {network}"))
    gateway.refresh_from_db()
    if wide:
        assert page.status_code == 200
        assert "wide-network permission" in page.content.decode()
        assert network not in gateway.remote_ips
        client.force_login(member_of(django_user_model, "Administrator"))
        assert client.post(url, gateway_form(gateway, f"192.0.2.10, {network}")).status_code == 302
        gateway.refresh_from_db()
    else:
        assert page.status_code == 302, page.content.decode()[:2000]
    assert network in gateway.remote_ips

    # Once there, the engineers may still edit the gateway's other fields.
    client.force_login(django_user_model.objects.get(username="switching-engineer"))
    form = {**gateway_form(gateway, ", ".join(gateway.remote_ips)), "capacity": "30"}
    assert client.post(url, form).status_code == 302
    assert MappingGateway.objects.get(pk=gateway.pk).capacity == 30
