"""The OpenAPI schema, its docs served from the project's own static files, and the API tested against the schema.

schemathesis generates requests for every operation from the schema and sends
them to a live server: no answer may be a server error, and every answer must
match the schema. Bounded: a few examples per operation, no shrinking.
"""

import uuid

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from billing.models import Account, RateTable
from security.api_clients import APIClient
from softswitch_portal.switching.models import MappingGateway, RoutingGateway

CHECKS = [not_a_server_error, response_schema_conformance]


def test_the_schema_is_openapi_3_and_needs_a_login(client, operator):
    assert client.get("/api/schema/").status_code in (401, 403)
    client.force_login(operator)
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/billing/cdrs/" in schema["paths"] and "/api/billing/accounts/{id}/recharge/" in schema["paths"]
    # The CDR page's keyset and filters are parameters of the CDR list.
    names = {parameter["name"] for parameter in schema["paths"]["/api/billing/cdrs/"]["get"]["parameters"]}
    assert {"after", "before", "limit", "caller_prefix", "start_time_after", "account"} <= names
    assert "token" in schema["components"]["securitySchemes"]


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_the_docs_come_from_the_projects_own_static_files(client, operator, page):
    client.force_login(operator)
    html = client.get(page).content.decode()
    assert "/static/drf_spectacular_sidecar/" in html
    assert "cdn." not in html and "unpkg" not in html


@pytest.fixture
def private_test_call_queue(settings):
    """Test calls the run starts go to a queue no worker serves, emptied afterwards: none is ever placed."""
    settings.TEST_CALL_QUEUE = f"sstest-schemathesis-{uuid.uuid4().hex[:8]}"
    yield
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete(settings.TEST_CALL_QUEUE)
    broker.close()


@pytest.fixture
def api_schema(live_server, transactional_db, django_user_model, private_test_call_queue):
    from softswitch_portal.switching.models import TestCall  # here: at module level pytest would collect it

    owner = django_user_model.objects.create_superuser("schema-owner", "o@example.com", "not-a-real-secret-45")
    client = APIClient(owner=owner, name="schemathesis", scopes=["read", "write", "money"],
                       allowed_networks=["127.0.0.0/8", "::1"], throttle_per_minute=0)  # fmt: skip
    token = client.issue_token()
    client.save()
    # Something for the reads to find, and for writes to point at.
    table = RateTable.objects.create(name="Retail")
    account = Account.objects.create(name="Acme", rate_table=table)
    MappingGateway.objects.create(name="acme-sbc", account=account, remote_ips=["192.0.2.10"])
    vendor = RoutingGateway.objects.create(name="carrier-one", host="198.51.100.7", prefixes=["49"])
    TestCall.objects.create(gateway=vendor, gateway_name=vendor.name, number="4930111", status="finished",
                            sip_status=200, sip_reason="OK", answered=True, pdd_ms=900, jitter_rx_ms=1.5,
                            audio_heard=True, audio_verdict="tone", recording=b"RIFF", sip_trace="INVITE")  # fmt: skip
    headers = {"Authorization": f"Token {token}"}
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/?format=json", headers=headers)
    schema.config.update(base_url=live_server.url, headers=headers)
    return schema


# A few examples per operation, no shrinking: bounded, and the same examples every run.
EXAMPLES = settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def test_the_api_answers_within_its_schema_and_never_fails(api_schema):
    failures = {}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 50
    for operation in operations:

        @EXAMPLES
        @given(case=operation.as_strategy())
        def exercise(case):
            case.call_and_validate(checks=CHECKS)

        try:
            exercise()
        except (Exception, BaseExceptionGroup) as exc:  # every operation runs; the report names each that failed
            failures[operation.label] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{label}: {text}" for label, text in failures.items())
