"""Test calls in the REST API (issue 20): the list page's filters and ordering, every result field with the
recording, and a test call started on a routing gateway: 202 with the call to poll and the task on the test-call
queue, a bad number a 400 naming the field, an unknown gateway a 404, the write scope and the permission to
change routing gateways. No call is placed: the queue is this test's own and nothing serves it."""

import base64
import json
import uuid

import pytest
import redis
import requests
from django.contrib.auth.models import Group
from django.utils import timezone

from softswitch_portal.switching import models
from softswitch_portal.switching.testcalls import service
from tests.switching.testcall_rows import make_call, routing_gateways

pytestmark = pytest.mark.django_db

WAV = b"RIFF" + b"\x00" * 40 + b"heard"  # bytes the endpoint must hand back as they are stored


@pytest.fixture
def gateways(db):
    return routing_gateways()


@pytest.fixture
def calls(gateways, operator):
    finished = dict(status="finished", finished=timezone.now(), answered=True, sip_status=200, sip_reason="OK")
    return {
        "heard": make_call(
            gateways["one"],
            "4930111",
            30,
            **finished,
            pdd_ms=900,
            ringing_ms=2100,
            talk_ms=5000,
            rtp_tx_packets=250,
            rtp_rx_packets=248,
            rtp_tx_loss=0,
            rtp_rx_loss=2,
            jitter_tx_ms=0.4,
            jitter_rx_ms=1.5,
            audio_heard=True,
            audio_verdict="tone",
            recording=WAV,
            waveform_svg="<svg></svg>",
            sip_trace="INVITE sip:4930111@switch SIP/2.0",
            requested_by=operator,
        ),
        "silent": make_call(
            gateways["one"], "4930222", 20, **finished, pdd_ms=300, audio_heard=False, audio_verdict="no audio"
        ),
        "busy": make_call(
            gateways["two"], "4420333", 10, status="finished", sip_status=486, sip_reason="Busy Here", pdd_ms=1500
        ),
        "queued": make_call(gateways["two"], "4420444", 0),
    }


@pytest.fixture
def test_call_queue(settings):
    """A test-call queue of this test's own on the real broker, and what was queued on it (task name, args)."""
    queue = f"sstest-testcalls-{uuid.uuid4().hex[:8]}"
    settings.TEST_CALL_QUEUE = queue
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    def queued():
        messages = [json.loads(raw) for raw in broker.lrange(queue, 0, -1)]
        return [(m["headers"]["task"], json.loads(base64.b64decode(m["body"]))[0]) for m in messages]

    yield queued
    broker.delete(queue)
    broker.close()


def ids(response):
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_it_lists_test_calls_newest_first_through_the_list_pages_filterset(api, calls, gateways):
    from softswitch_portal.switching.api.views import TestCallViewSet
    from softswitch_portal.switching.views import TestCallListView

    assert TestCallViewSet.filterset_class is TestCallListView.filterset
    order = ["queued", "busy", "silent", "heard"]
    assert ids(api.get("/api/switching/test-calls/")) == [calls[name].pk for name in order]
    assert ids(api.get("/api/switching/test-calls/", {"status": "queued"})) == [calls["queued"].pk]
    assert ids(api.get("/api/switching/test-calls/", {"gateway": gateways["two"].pk})) == [
        calls["queued"].pk,
        calls["busy"].pk,
    ]
    assert ids(api.get("/api/switching/test-calls/", {"audio_heard": "false"})) == [calls["silent"].pk]
    assert ids(api.get("/api/switching/test-calls/", {"number": "44203"})) == [calls["busy"].pk]
    assert ids(api.get("/api/switching/test-calls/", {"sip_status": 486})) == [calls["busy"].pk]
    assert ids(api.get("/api/switching/test-calls/", {"q": "busy"})) == [calls["busy"].pk]
    by_pdd = ids(api.get("/api/switching/test-calls/", {"ordering": "pdd_ms", "status": "finished"}))
    assert by_pdd == [calls["silent"].pk, calls["heard"].pk, calls["busy"].pk]
    bad = api.get("/api/switching/test-calls/", {"status": "ringing", "gateway": "x"})
    assert bad.status_code == 400 and set(bad.json()) == {"status", "gateway"}


def test_the_list_leaves_the_sip_trace_to_the_detail(api, calls):
    row = next(r for r in api.get("/api/switching/test-calls/").json()["results"] if r["id"] == calls["heard"].pk)
    assert "sip_trace" not in row and "waveform_svg" not in row
    assert row["recording"].endswith(f"/api/switching/test-calls/{calls['heard'].pk}/recording/")


def test_the_detail_holds_every_result_field_and_links_its_recording(api, calls, gateways, operator):
    call = calls["heard"]
    response = api.get(f"/api/switching/test-calls/{call.pk}/")
    assert response.status_code == 200, response.content
    body = response.json()
    expected = {"status": "finished", "gateway": gateways["one"].pk, "gateway_name": "carrier-one",
                "number": "4930111", "sip_status": 200, "sip_reason": "OK", "answered": True, "pdd_ms": 900,
                "ringing_ms": 2100, "talk_ms": 5000, "rtp_tx_packets": 250, "rtp_rx_packets": 248, "rtp_tx_loss": 0,
                "rtp_rx_loss": 2, "jitter_tx_ms": 0.4, "jitter_rx_ms": 1.5, "audio_heard": True,
                "audio_verdict": "tone", "sip_trace": "INVITE sip:4930111@switch SIP/2.0", "done": True,
                "requested_by": operator.pk}  # fmt: skip
    assert {name: body[name] for name in expected} == expected
    assert body["url"].endswith(f"/api/switching/test-calls/{call.pk}/")
    assert body["page"].endswith(f"/switching/test-calls/{call.pk}/")
    assert "waveform_svg" not in body
    recording = api.get(body["recording"])
    assert recording.status_code == 200
    assert recording["Content-Type"] == "audio/wav" and recording.content == WAV


def test_a_call_without_a_recording_links_none_and_its_recording_is_a_404(api, calls):
    call = calls["silent"]
    assert api.get(f"/api/switching/test-calls/{call.pk}/").json()["recording"] is None
    missing = api.get(f"/api/switching/test-calls/{call.pk}/recording/", HTTP_ACCEPT="audio/wav")
    assert missing.status_code == 404
    assert "no recording" in missing.json()["detail"]
    assert api.get("/api/switching/test-calls/999999/recording/").status_code == 404


def test_starting_a_test_call_queues_it_and_answers_202_with_the_call_to_poll(
    api, gateways, operator, test_call_queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/switching/routing-gateways/{gateways['one'].pk}/test-call/",
                            {"number": "+4930555"}, format="json")  # fmt: skip
    assert response.status_code == 202, response.content
    body = response.json()
    call = models.TestCall.objects.get()
    assert (call.gateway, call.number, call.status) == (gateways["one"], "+4930555", "queued")
    assert call.requested_by == operator
    assert body["id"] == call.pk and body["status"] == "queued" and body["done"] is False
    assert response["Location"] == body["url"]
    assert type(response["Location"]) is str  # a str subclass passes the test client and fails a WSGI server
    assert test_call_queue() == [(service.RUN_TASK, [call.pk])]
    polled = api.get(body["url"])
    assert polled.status_code == 200 and polled.json()["number"] == "+4930555"


@pytest.mark.django_db(transaction=True)
def test_a_test_call_started_over_http_is_committed_then_queued(live_server, make_client, gateways, test_call_queue):
    # Through a real server (a header value the test client takes can break a WSGI server) and real commits.
    _, token = make_client()
    url = f"{live_server.url}/api/switching/routing-gateways/{gateways['one'].pk}/test-call/"
    response = requests.post(url, json={"number": "4930555"}, headers={"Authorization": f"Token {token}"}, timeout=30)
    assert response.status_code == 202, response.text
    call = models.TestCall.objects.get()
    assert response.headers["Location"] == response.json()["url"]
    assert test_call_queue() == [(service.RUN_TASK, [call.pk])]


@pytest.mark.parametrize("number", ["49-30-555", "", "4930555x", "1" * 65, None])
def test_a_bad_number_is_a_400_naming_the_field_and_queues_nothing(
    api, gateways, number, test_call_queue, django_capture_on_commit_callbacks
):
    body = {} if number is None else {"number": number}
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/switching/routing-gateways/{gateways['one'].pk}/test-call/", body, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["number"]
    assert not models.TestCall.objects.exists() and test_call_queue() == []


def test_a_gateway_that_does_not_exist_is_a_404(api, gateways, test_call_queue):
    response = api.post("/api/switching/routing-gateways/999999/test-call/", {"number": "4930555"}, format="json")
    assert response.status_code == 404
    assert not models.TestCall.objects.exists()


def member(django_user_model, username, *roles):
    user = django_user_model.objects.create_user(username, password="x-not-used-7q2w")
    user.groups.add(*Group.objects.filter(name__in=roles))
    return user


def test_starting_needs_the_write_scope_and_the_permission_to_change_routing_gateways(
    make_client, with_token, django_user_model, gateways, calls, test_call_queue
):
    url = f"/api/switching/routing-gateways/{gateways['one'].pk}/test-call/"
    _, read_only = make_client(scopes=("read",))
    refused = with_token(read_only).post(url, {"number": "4930555"}, format="json")
    assert refused.status_code == 403 and "'write' scope" in refused.json()["detail"]
    # A NOC user's token may read test calls but not place one, whatever its scopes.
    _, noc = make_client(owner=member(django_user_model, "noc", "NOC"))
    assert ids(with_token(noc).get("/api/switching/test-calls/"))
    assert with_token(noc).get(f"/api/switching/test-calls/{calls['heard'].pk}/recording/").status_code == 200
    refused = with_token(noc).post(url, {"number": "4930555"}, format="json")
    assert refused.status_code == 403 and "routing gateways" in refused.json()["detail"]
    # Refused before the gateway is looked up: a refused caller learns nothing of which gateways exist.
    assert with_token(noc).post("/api/switching/routing-gateways/999999/test-call/", {"number": "1"}).status_code == 403
    _, engineer = make_client(owner=member(django_user_model, "engineer", "Switching engineer"))
    assert with_token(engineer).post(url, {"number": "4930555"}, format="json").status_code == 202
    assert models.TestCall.objects.filter(number="4930555").count() == 1
    # Reading needs the model's view permission.
    _, nobody = make_client(owner=member(django_user_model, "nobody"))
    assert with_token(nobody).get("/api/switching/test-calls/").status_code == 403
    assert with_token(nobody).get(f"/api/switching/test-calls/{calls['heard'].pk}/recording/").status_code == 403


def test_records_the_switch_wrote_are_not_deleted_through_the_api(api, calls):
    assert api.delete(f"/api/switching/test-calls/{calls['heard'].pk}/").status_code == 405
    assert models.TestCall.objects.filter(pk=calls["heard"].pk).exists()
    assert api.delete("/api/billing/cdrs/1/").status_code == 405


def test_the_schema_describes_the_test_call_endpoints(client, operator):
    client.force_login(operator)
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    start = paths["/api/switching/routing-gateways/{id}/test-call/"]["post"]
    assert start["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/TestCallDetail")
    assert {"400", "404"} <= set(start["responses"])
    recording = paths["/api/switching/test-calls/{id}/recording/"]["get"]["responses"]["200"]["content"]
    assert list(recording) == ["audio/wav"]
    assert set(paths["/api/switching/test-calls/{id}/"]) == {"get"}
    names = {parameter["name"] for parameter in paths["/api/switching/test-calls/"]["get"]["parameters"]}
    assert {"status", "gateway", "number", "audio_heard", "requested_by", "ordering", "q"} <= names
