"""Current calls from the live-call registry, forced disconnects, and registered phones, through the portal and
the API (real Redis and PostgreSQL; the call core's side of a disconnect is tests/e2e/test_live_operations.py)."""

import json
import time

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from billing.models import Account
from callcore.contract import Keys, Registration, encode_registration, registration_field
from softswitch_portal.core.redis import prefix
from softswitch_portal.live import calls
from softswitch_portal.switching.models import MappingGateway, Phone, RoutingGateway


@pytest.fixture
def keys(redis_client):
    keys = Keys(prefix())
    yield keys
    redis_client.delete(
        keys.live_calls, keys.live_answered, keys.disconnects("n1"), keys.disconnects("n2"), keys.registrations
    )


@pytest.fixture
def world(db):
    acme = Account.objects.create(name="Acme")
    beta = Account.objects.create(name="Beta")
    acme_gw = MappingGateway.objects.create(name="acme-sbc", account=acme, remote_ips=["192.0.2.10"])
    beta_gw = MappingGateway.objects.create(name="beta-sbc", account=beta, remote_ips=["192.0.2.20"])
    one = RoutingGateway.objects.create(name="carrier-one", host="198.51.100.1")
    two = RoutingGateway.objects.create(name="carrier-two", host="198.51.100.2")
    return {"acme": acme, "beta": beta, "acme_gw": acme_gw, "beta_gw": beta_gw, "one": one, "two": two}


def put_call(redis_client, keys, call_id, *, account, mapping, routes, node="n1", start_ms, answered_by=None, **more):
    entry = {
        "account_id": account.pk, "mapping_gateway_id": mapping.pk, "phone_id": None,
        "route_gateway_ids": [r.pk for r in routes], "caller": "4930111", "callee": "4420700",
        "caller_in": "004930111", "callee_in": "004420700", "source_ip": "192.0.2.10", "start_ms": start_ms,
        "node": node, "snapshot_version": 1, "hr": 0, **more,
    }  # fmt: skip
    redis_client.hset(keys.live_calls, call_id, json.dumps(entry))
    if answered_by is not None:
        # contract.AnsweredCall: [answer_ms, RouteState array, h_entry, h_id]
        route = [answered_by.pk, answered_by.name, answered_by.host, 5060, "udp", "4930111", "99#4420700", 10, 0,
                 [], 0, None, "44", "UK", "44", "UK"]  # fmt: skip
        redis_client.hset(keys.live_answered, call_id, json.dumps([start_ms + 2000, route, 5, 7]))


def user_with(django_user_model, *codenames):
    user = django_user_model.objects.create_user("noc-" + "-".join(codenames), password="x")
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def admin_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("alice", "alice@example.com", "pw-not-real-42"))
    return client


def test_the_page_lists_every_live_call_of_every_node_with_its_names_and_numbers(
    admin_client, world, keys, redis_client
):
    now = calls.now_ms()
    put_call(redis_client, keys, "a@x", account=world["acme"], mapping=world["acme_gw"], routes=[world["one"]],
             start_ms=now - 60_000, answered_by=world["one"])  # fmt: skip
    put_call(redis_client, keys, "b@x", account=world["beta"], mapping=world["beta_gw"],
             routes=[world["two"], world["one"]], node="n2", start_ms=now - 1000)  # fmt: skip
    page = admin_client.get(reverse("live:current_calls")).content.decode()
    for text in ("acme-sbc", "beta-sbc", "carrier-one", "carrier-two", "Acme", "Beta", "004420700", "99#4420700",
                 "n1: 1", "n2: 1", "Disconnect", "ringing", "htmx.min.js"):  # fmt: skip
        assert text in page, text
    assert 'data-testid="live-count">2<' in page
    # htmx's refresh gets the live part alone, not the whole page.
    partial = admin_client.get(reverse("live:current_calls"), headers={"HX-Request": "true"}).content.decode()
    assert partial.lstrip().startswith('<div id="live-calls"') and "<html" not in partial
    assert 'hx-trigger="every 3s"' in partial


def test_filters_narrow_the_calls_and_a_bad_filter_says_so(admin_client, world, keys, redis_client):
    now = calls.now_ms()
    put_call(redis_client, keys, "a@x", account=world["acme"], mapping=world["acme_gw"], routes=[world["one"]],
             start_ms=now - 60_000, answered_by=world["one"])  # fmt: skip
    put_call(redis_client, keys, "b@x", account=world["beta"], mapping=world["beta_gw"],
             routes=[world["two"]], node="n2", start_ms=now - 1000)  # fmt: skip
    url = reverse("live:current_calls")
    page = admin_client.get(url, {"account": world["beta"].pk}).content.decode()
    assert 'data-testid="live-count">1<' in page and "beta-sbc" in page
    page = admin_client.get(url, {"state": "answered"}).content.decode()
    assert 'data-testid="live-count">1<' in page and "acme-sbc" in page
    page = admin_client.get(url, {"routing_gateway": world["two"].pk}).content.decode()
    assert 'data-testid="live-count">1<' in page
    page = admin_client.get(url, {"account": 999999}).content.decode()
    assert "Some filters are not valid" in page and 'data-testid="live-count">0<' in page


def test_concurrency_and_cps_per_gateway_and_account():
    now = 1_900_000_000_000
    rows = [
        {"mapping_gateway_id": 1, "mapping_gateway": "m1", "routing_gateway_id": 5, "routing_gateway": "r5",
         "account_id": 9, "account": "Acme", "answer_ms": a, "start_ms": now - ago}
        for a, ago in ((1, 60_000), (None, 1000), (None, 4000), (1, 7000))
    ]  # fmt: skip
    tables = calls.concurrency(rows, now)
    # 2 of the 4 started in the last 5 s: 0.4 per second.
    assert tables["mapping"] == [{"id": 1, "name": "m1", "calls": 4, "answered": 2, "cps": 0.4}]
    assert tables["routing"][0]["calls"] == 4 and tables["account"][0]["cps"] == 0.4


def test_a_disconnect_asks_the_node_holding_the_call_and_names_who_asked(admin_client, world, keys, redis_client):
    now = calls.now_ms()
    put_call(redis_client, keys, "a@x", account=world["acme"], mapping=world["acme_gw"], routes=[world["one"]],
             node="n2", start_ms=now - 60_000, answered_by=world["one"])  # fmt: skip
    response = admin_client.post(reverse("live:disconnect"), {"call_id": "a@x"}, follow=True)
    assert "Asked n2 to end the call a@x" in response.content.decode()
    (request,) = redis_client.lrange(keys.disconnects("n2"), 0, -1)
    assert json.loads(request) == {"call_id": "a@x", "end_reason": "operator_disconnect", "by": "portal:alice"}
    assert redis_client.llen(keys.disconnects("n1")) == 0


def test_a_call_still_setting_up_is_asked_for_too_and_one_gone_is_not_and_the_operator_is_told_why(
    admin_client, world, keys, redis_client
):
    put_call(redis_client, keys, "ring@x", account=world["acme"], mapping=world["acme_gw"], routes=[world["one"]],
             node="n2", start_ms=calls.now_ms())  # fmt: skip
    # Its node cancels it (CANCEL to the vendor, no other vendor tried): tests/e2e test_live_operations.
    page = admin_client.post(reverse("live:disconnect"), {"call_id": "ring@x"}, follow=True).content.decode()
    assert "Asked n2 to end the call ring@x" in page
    (request,) = redis_client.lrange(keys.disconnects("n2"), 0, -1)
    assert json.loads(request)["call_id"] == "ring@x"
    page = admin_client.post(reverse("live:disconnect"), {"call_id": "gone@x"}, follow=True).content.decode()
    assert "ended already" in page
    page = admin_client.post(reverse("live:disconnect"), {}, follow=True).content.decode()
    assert "Say which call to end" in page
    assert redis_client.llen(keys.disconnects("n1")) == 0


def test_watching_and_disconnecting_need_their_permissions(client, django_user_model, world, keys, redis_client):
    put_call(redis_client, keys, "a@x", account=world["acme"], mapping=world["acme_gw"], routes=[world["one"]],
             start_ms=calls.now_ms(), answered_by=world["one"])  # fmt: skip
    client.force_login(user_with(django_user_model, "view_livecall"))
    page = client.get(reverse("live:current_calls"))
    assert page.status_code == 200 and "Disconnect</button>" not in page.content.decode()
    assert client.post(reverse("live:disconnect"), {"call_id": "a@x"}).status_code == 403
    assert client.post(reverse("live-api:livecall-disconnect"), {"call_id": "a@x"}).status_code == 403
    assert redis_client.llen(keys.disconnects("n1")) == 0
    client.force_login(user_with(django_user_model, "view_account"))
    assert client.get(reverse("live:current_calls")).status_code == 403


def test_the_api_lists_filters_orders_and_disconnects(admin_client, world, keys, redis_client):
    now = calls.now_ms()
    put_call(redis_client, keys, "a@x", account=world["acme"], mapping=world["acme_gw"], routes=[world["one"]],
             start_ms=now - 60_000, answered_by=world["one"])  # fmt: skip
    put_call(redis_client, keys, "b@x", account=world["beta"], mapping=world["beta_gw"], routes=[world["two"]],
             node="n2", start_ms=now - 1000)  # fmt: skip
    url = reverse("live-api:livecall-list")
    body = admin_client.get(url, {"ordering": "start_ms"}).json()
    assert body["count"] == 2 and [c["call_id"] for c in body["results"]] == ["a@x", "b@x"]
    first = body["results"][0]
    assert first["callee"] == "004420700" and first["callee_out"] == "99#4420700" and first["state"] == "answered"
    assert first["routing_gateway"] == "carrier-one" and first["answer_ms"] == now - 58_000
    assert admin_client.get(url, {"node": "n2"}).json()["count"] == 1
    bad = admin_client.get(url, {"mapping_gateway": "x"})
    assert bad.status_code == 400 and "mapping_gateway" in bad.json()
    assert admin_client.get(url, {"ordering": "secret"}).status_code == 400
    disconnect = reverse("live-api:livecall-disconnect")
    answer = admin_client.post(disconnect, {"call_id": "a@x"}, content_type="application/json")
    assert answer.status_code == 202 and answer.json() == {"call_id": "a@x", "node": "n1"}
    assert json.loads(redis_client.lpop(keys.disconnects("n1")))["by"] == "api:alice"
    ringing = admin_client.post(disconnect, {"call_id": "b@x"}, content_type="application/json")
    assert ringing.status_code == 202 and ringing.json()["call_id"] == "b@x"
    assert admin_client.post(disconnect, {"call_id": "zz"}, content_type="application/json").status_code == 404
    missing = admin_client.post(disconnect, {}, content_type="application/json")
    assert missing.status_code == 400 and "call_id" in missing.json()


def test_registered_phones_are_listed_from_every_node_and_expired_ones_left_out(
    admin_client, world, keys, redis_client
):
    phone = Phone.objects.create(username="1001", account=world["acme"], ha1="0" * 32)
    now = int(time.time() * 1000)
    for node, contact, expires in (("n1", "sip:1001@10.0.0.5:5062", now + 300_000),
                                   ("n2", "sip:1001@10.0.0.6", now + 60_000),
                                   ("n2", "sip:1001@old", now - 1000)):  # fmt: skip
        reg = Registration(aor="1001", contact=contact, source_ip="10.0.0.5", source_port=5062, transport="udp",
                           user_agent="DeskPhone 2.1", registered_ms=now, expires_ms=expires, node=node,
                           phone_id=phone.pk)  # fmt: skip
        redis_client.hset(keys.registrations, registration_field(node, "1001", contact), encode_registration(reg))
    page = admin_client.get(reverse("live:registrations")).content.decode()
    assert "sip:1001@10.0.0.5:5062" in page and "sip:1001@10.0.0.6" in page and "sip:1001@old" not in page
    assert "DeskPhone 2.1" in page and "10.0.0.5:5062" in page and "Acme" in page and "<strong>2</strong>" in page
    page = admin_client.get(reverse("live:registrations"), {"node": "n2"}).content.decode()
    assert "sip:1001@10.0.0.6" in page and "sip:1001@10.0.0.5:5062" not in page
