"""API clients: hashed tokens with expiry, networks, scopes, a throttle, every request logged; managed on pages."""

import datetime as dt
import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from billing.models import Account
from security.api_clients import APIClient, APIRequestLog, hash_token

pytestmark = pytest.mark.django_db

ACCOUNTS = "/api/billing/accounts/"


def test_a_token_is_stored_only_as_its_hash(make_client):
    client, token = make_client()
    stored = APIClient.objects.filter(pk=client.pk).values().get()
    assert token not in {str(value) for value in stored.values()}
    assert stored["token_hash"] == hash_token(token) and token.startswith(stored["token_prefix"])


def test_a_valid_token_from_an_allowed_network_is_served(make_client, with_token):
    _, token = make_client()
    assert with_token(token).get(ACCOUNTS).status_code == 200


@pytest.mark.parametrize(
    "case, fields, address, message",
    [
        ("wrong token", {}, "127.0.0.1", "Invalid token"),
        ("expired", {"expires_at": timezone.now() - dt.timedelta(seconds=1)}, "127.0.0.1", "expired"),
        ("disabled", {"enabled": False}, "127.0.0.1", "disabled"),
        ("outside its networks", {"allowed_networks": ["192.0.2.0/24"]}, "127.0.0.1", "not in this API client"),
    ],
)
def test_a_token_is_refused_saying_why(make_client, with_token, case, fields, address, message):
    _, token = make_client(**fields)
    sent = token[:-1] + ("A" if token[-1] != "A" else "B") if case == "wrong token" else token
    response = with_token(sent, address).get(ACCOUNTS)
    assert response.status_code == 401
    assert message in response.json()["detail"]


def test_each_scope_opens_only_its_methods(make_client, with_token):
    account = Account.objects.create(name="Acme")
    _, read_token = make_client(scopes=["read"])
    reader = with_token(read_token)
    assert reader.get(ACCOUNTS).status_code == 200
    refused = reader.patch(f"{ACCOUNTS}{account.pk}/", {"locked": True}, format="json")
    assert refused.status_code == 403 and "'write' scope" in refused.json()["detail"]
    _, write_token = make_client(scopes=["read", "write"])
    writer = with_token(write_token)
    assert writer.patch(f"{ACCOUNTS}{account.pk}/", {"locked": True}, format="json").status_code == 200
    # Money is a scope of its own: configuration scripts cannot top up accounts.
    no_money = writer.post(f"{ACCOUNTS}{account.pk}/recharge/", {"amount": "5"}, format="json")
    assert no_money.status_code == 403 and "'money' scope" in no_money.json()["detail"]
    _, money_token = make_client(scopes=["money"])
    assert (
        with_token(money_token).post(f"{ACCOUNTS}{account.pk}/recharge/", {"amount": "5"}, format="json").status_code
        == 201
    )
    account.refresh_from_db()
    assert account.balance == 5 and account.locked


def test_a_client_never_does_more_than_its_owner(make_client, with_token, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", password="not-a-real-secret-44")
    viewer.user_permissions.add(Permission.objects.get(codename="view_account"))
    _, token = make_client(owner=viewer)
    api = with_token(token)
    assert api.get(ACCOUNTS).status_code == 200
    assert api.post(ACCOUNTS, {"name": "Beta"}, format="json").status_code == 403
    assert api.get("/api/switching/phones/").status_code == 403


def test_a_client_is_throttled_at_its_rate_per_minute(make_client, with_token):
    _, token = make_client(throttle_per_minute=3)
    api = with_token(token)
    # Bounded: a minute that turns meanwhile resets the count once, so 2 x rate + 2 requests always reach a refusal.
    statuses = []
    for _ in range(8):
        statuses.append(api.get(ACCOUNTS).status_code)
        if statuses[-1] == 429:
            break
    assert statuses[-1] == 429 and statuses[:3] == [200, 200, 200]
    response = api.get(ACCOUNTS)
    assert response.status_code in (200, 429)


def test_every_request_is_logged_with_client_source_endpoint_and_status(make_client, with_token):
    client, token = make_client(scopes=["read"])
    api = with_token(token, "127.0.0.5")
    api.get(ACCOUNTS)
    api.post(ACCOUNTS, {"name": "x"}, format="json")
    with_token("not-a-token-at-all", "127.0.0.6").get(ACCOUNTS)
    rows = list(APIRequestLog.objects.order_by("id").values_list("client", "source_ip", "method", "endpoint", "status"))
    assert rows == [
        (client.pk, "127.0.0.5", "GET", ACCOUNTS, 200),
        (client.pk, "127.0.0.5", "POST", ACCOUNTS, 403),
        (None, "127.0.0.6", "GET", ACCOUNTS, 401),
    ]


def test_a_logged_in_operator_uses_the_api_with_the_session(client, operator):
    client.force_login(operator)
    assert client.get(ACCOUNTS).status_code == 200


def test_an_anonymous_request_is_refused(client):
    assert client.get(ACCOUNTS).status_code == 401


def test_the_portal_adds_a_client_and_shows_its_token_once(client, operator):
    client.force_login(operator)
    response = client.post(
        reverse("security:apiclient_add"),
        {
            "name": "billing-sync",
            "owner": operator.pk,
            "scopes": ["read", "money"],
            "allowed_networks": "127.0.0.1, 10.0.0.0/8",
            "throttle_per_minute": 60,
            "expires_at": (timezone.now() + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"),
            "enabled": "on",
        },
    )
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    token = re.search(r'id="token" value="([^"]+)"', response.content.decode()).group(1)
    made = APIClient.objects.get(name="billing-sync")
    assert made.scopes == ["read", "money"] and made.allowed_networks == ["127.0.0.1", "10.0.0.0/8"]
    assert APIClient.for_token(token) == made
    detail = client.get(made.get_absolute_url()).content.decode()
    assert token not in detail and made.token_prefix in detail
    # A new token replaces the old one at once.
    replaced = client.post(reverse("security:apiclient_token", args=[made.pk]))
    new_token = re.search(r'id="token" value="([^"]+)"', replaced.content.decode()).group(1)
    assert new_token != token
    assert APIClient.for_token(token) is None and APIClient.for_token(new_token) == made


def test_the_portal_refuses_a_client_without_networks_naming_the_field(client, operator):
    client.force_login(operator)
    response = client.post(
        reverse("security:apiclient_add"), {"name": "x", "owner": operator.pk, "allowed_networks": "not-a-network"}
    )
    assert response.status_code == 200
    assert "not-a-network" in response.content.decode()
    assert not APIClient.objects.exists()


def test_the_client_and_request_pages_list_and_filter(client, operator, make_client, with_token):
    made, token = make_client(name="noc-tool")
    make_client(name="never-used")
    with_token(token).get(ACCOUNTS)
    client.force_login(operator)
    listed = client.get(reverse("security:apiclient_list"), {"q": "noc"})
    assert listed.status_code == 200 and "noc-tool" in listed.content.decode()
    assert "never-used" in client.get(reverse("security:apiclient_list"), {"sort": "last_used_at"}).content.decode()
    log = client.get(reverse("security:apirequestlog_list"), {"client": made.pk, "sort": "-created"})
    assert log.status_code == 200 and ACCOUNTS in log.content.decode()
