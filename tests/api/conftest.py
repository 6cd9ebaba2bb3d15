"""Fixtures of the API tests: operators, API clients with their tokens, and an authenticated client per scope set."""

import pytest
from rest_framework.test import APIClient as RestClient

from security.api_clients import APIClient

LOOPBACK = "127.0.0.1"


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser("operator", "operator@example.com", "not-a-real-secret-42")


@pytest.fixture
def make_client(db, operator):
    """``make_client(scopes=..., **fields)`` -> (APIClient row, its token)."""

    def make(scopes=("read", "write", "money"), owner=None, **fields):
        fields.setdefault("name", f"script-{APIClient.objects.count() + 1}")
        fields.setdefault("allowed_networks", ["127.0.0.0/8", "::1"])
        client = APIClient(owner=owner or operator, scopes=list(scopes), **fields)
        token = client.issue_token()
        client.full_clean()
        client.save()
        return client, token

    return make


def rest_client(token, address=LOOPBACK):
    client = RestClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def with_token():
    """``with_token(token, address=...)`` -> a REST client sending that token from that address."""
    return rest_client


@pytest.fixture
def api(make_client):
    """A REST client holding a token with every scope."""
    _, token = make_client()
    return rest_client(token)


@pytest.fixture
def reader(make_client):
    """A REST client whose token may only read."""
    _, token = make_client(scopes=("read",))
    return rest_client(token)
