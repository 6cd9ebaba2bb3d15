"""Alarms: one open alarm per condition, e-mail once per throttle window with a digest, the JSON post, the fraud
events, each detector raising and clearing its alarm, and the alarm page's acknowledge and close."""

import datetime as dt
import http.server
import json
import threading
import time
import uuid
from decimal import Decimal

import pytest
import redis
from django.core import mail
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from billing.models import CDR, Account
from callcore.contract import BillingMode, FraudEvent, Keys
from security import alarms
from security.models import Alarm
from softswitch_portal.core.models import SystemParameter
from softswitch_portal.switching.models import RoutingGateway

pytestmark = pytest.mark.django_db(transaction=True)

OPERATORS = ["noc@switch.example"]


@pytest.fixture(autouse=True)
def eager(settings):
    """Tasks run where they are queued, so an alarm's e-mail is in mail.outbox when the raise returns."""
    from softswitch_portal.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    settings.ALARM_EMAIL_TO = OPERATORS
    settings.ALARM_POST_URL = ""
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def keys(settings):
    settings.REDIS_PREFIX = f"sstest-alarms-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield Keys(settings.REDIS_PREFIX)
    for key in client.scan_iter(f"{settings.REDIS_PREFIX}:*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture
def client_redis(redis_client):
    return redis_client


def burst(ip="203.0.113.7", **kwargs):
    return alarms.raise_alarm("illegal_call_burst", "warning", "ip", ip, figures={"calls": 25}, **kwargs)


def window_passes(alarm_id, seconds=901):
    """As if the throttle window had passed since the alarm's last e-mail."""
    Alarm.objects.filter(pk=alarm_id).update(notified_at=F("notified_at") - dt.timedelta(seconds=seconds))


# ---------------------------------------------------------------------------
# One alarm per condition


def test_a_repeating_condition_counts_on_one_open_alarm():
    first = burst()
    assert burst() == burst() == first
    other = burst(ip="203.0.113.8")
    alarm = Alarm.objects.get(pk=first)
    assert (alarm.count, alarm.resolved_at, Alarm.objects.count()) == (3, None, 2)
    assert alarm.last_seen >= alarm.first_seen
    assert other != first


def test_a_cleared_condition_is_closed_and_its_next_occurrence_is_a_new_alarm():
    first = burst()
    assert alarms.reconcile("illegal_call_burst", []) == {"raised": 0, "resolved": 1}
    assert Alarm.objects.get(pk=first).resolved_at is not None
    second = burst()
    assert second != first
    assert Alarm.objects.get(pk=second).count == 1


# ---------------------------------------------------------------------------
# E-mail and the JSON post


def test_one_email_per_throttle_window_with_a_digest_of_the_repeats():
    alarm_id = burst()
    burst()
    burst()
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == OPERATORS
    assert "Illegal-call burst" in mail.outbox[0].subject and "203.0.113.7" in mail.outbox[0].subject

    # The window passes with two repeats unmailed: the beat's sweep mails them as a digest, once.
    window_passes(alarm_id)
    assert alarms.notify_due() == 1
    assert alarms.notify_due() == 0
    assert len(mail.outbox) == 2
    assert "seen 2 more times since the last e-mail" in mail.outbox[1].body

    burst()  # inside the new window: counted, not mailed
    assert len(mail.outbox) == 2
    window_passes(alarm_id)
    burst()  # the next raise after the window mails at once
    assert len(mail.outbox) == 3
    assert "seen 2 more times" in mail.outbox[2].body
    assert Alarm.objects.get(pk=alarm_id).count == 5


def test_the_throttle_is_a_system_parameter():
    SystemParameter.objects.create(name="SS_ALARM_EMAIL_THROTTLE", value="3600")
    alarm_id = burst()
    burst()
    window_passes(alarm_id, seconds=901)  # past the default, inside the hour set
    assert alarms.notify_due() == 0
    window_passes(alarm_id, seconds=3000)
    assert alarms.notify_due() == 1
    assert len(mail.outbox) == 2


def test_with_no_address_set_the_staff_get_the_mail(settings, django_user_model):
    settings.ALARM_EMAIL_TO = []
    django_user_model.objects.create_user("ops", "ops@switch.example", "x", is_staff=True)
    django_user_model.objects.create_user("sales", "sales@switch.example", "x")
    burst()
    assert [m.to for m in mail.outbox] == [["ops@switch.example"]]


def test_an_account_alarm_goes_to_its_alarm_address_and_the_operators_apart(customer):
    Account.objects.filter(pk=customer.pk).update(alarm_email="noc@acme.example")
    alarms.raise_alarm("traffic_spike", "warning", "account", str(customer.pk), account_id=customer.pk)
    assert sorted(m.to[0] for m in mail.outbox) == ["noc@acme.example", OPERATORS[0]]
    assert all(len(m.to) == 1 for m in mail.outbox)  # never one message across both

    mail.outbox.clear()
    alarms.raise_low_balance(customer.pk, Decimal("0.90"), Decimal("1.00"))  # the customer's own matter
    assert [m.to for m in mail.outbox] == [["noc@acme.example"]]
    assert "Acme Telecom is at 0.90" in mail.outbox[0].subject


class Receiver(http.server.BaseHTTPRequestHandler):
    received: list = []
    hang = False

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.headers["Content-Type"], json.loads(body)))
        if type(self).hang:
            time.sleep(3)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"retCode": 0}')

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.received, Receiver.hang = [], False
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/AlarmCurrentReport", Receiver
    server.shutdown()
    server.server_close()


def test_each_mailed_alarm_is_posted_as_json_in_vos_shape(settings, receiver):
    settings.ALARM_POST_URL, handler = receiver
    alarm_id = burst()
    burst()  # counted, not posted: the post follows the e-mail's throttle
    assert len(handler.received) == 1
    content_type, payload = handler.received[0]
    assert content_type == "application/json"
    (alarm,) = payload["infoAlarmCurrents"]
    assert (alarm["id"], alarm["type"], alarm["level"], alarm["subject"]) == (alarm_id, 20020, 1, "203.0.113.7")
    assert alarm["figures"] == {"calls": 25} and alarm["stopTime"] is None


def test_a_post_that_fails_or_hangs_is_logged_and_the_mail_still_goes(settings, receiver, caplog):
    url, handler = receiver
    settings.ALARM_POST_URL = "http://127.0.0.1:9/nothing-listens"
    burst(ip="203.0.113.20")
    handler.hang = True
    settings.ALARM_POST_URL, settings.ALARM_POST_TIMEOUT = url, 1
    burst(ip="203.0.113.21")
    assert len(mail.outbox) == 2
    assert sum("alarm post to" in record.message for record in caplog.records) == 2


# ---------------------------------------------------------------------------
# Fraud events and low balances


def event(**overrides):
    fields = {
        "rule": "high_risk_rate",
        "severity": "critical",
        "subject": "acct:1",
        "scope": "central",
        "mapping_gateway_id": None,
        "account_id": None,
        "figures": {"count": 5, "window_s": 60, "warning": 3, "critical": 5},
        "evidence": ["call-1", "call-2"],
        "blocked": True,
        "ttl_s": 3600,
        "detected_ms": int(time.time() * 1000),
        "node": "ingest",
    }
    return FraudEvent(**{**fields, **overrides})


def test_a_fraud_event_is_one_alarm_per_rule_and_subject_and_a_redelivery_counts_once(customer):
    critical = event(subject=f"acct:{customer.pk}:hr")
    first = alarms.raise_fraud_alarm(critical, "1700000000000-0")
    assert alarms.raise_fraud_alarm(critical, "1700000000000-0") is None  # read twice from the stream
    assert alarms.raise_fraud_alarm(critical, "999999999999-5") is None  # older than the one counted
    assert alarms.raise_fraud_alarm(critical, "1700000000001-0") == first
    alarm = Alarm.objects.get(pk=first)
    assert (alarm.kind, alarm.severity, alarm.rule, alarm.count) == ("fraud_critical", "critical", "high_risk_rate", 2)
    assert (alarm.subject_kind, alarm.account_id) == ("account_high_risk", customer.pk)
    assert alarm.figures["evidence"] == ["call-1", "call-2"] and alarm.figures["blocked"] is True
    assert alarm.subject_label == "Acme Telecom (high-risk calls)"

    warning = event(rule="no_answer_callee", severity="warning", subject="+4420700900", blocked=False)
    other = alarms.raise_fraud_alarm(warning, "1700000000002-0")
    assert Alarm.objects.get(pk=other).kind == "fraud_warning"
    # Another rule on the same subject is another alarm.
    assert alarms.raise_fraud_alarm(event(rule="spend_velocity", subject=f"acct:{customer.pk}:hr"), "17-1") != first


def test_a_fraud_event_naming_a_deleted_account_or_an_odd_subject_is_still_alarmed():
    alarm_id = alarms.raise_fraud_alarm(event(subject="acct:987654", account_id=987654), "1-0")
    assert Alarm.objects.get(pk=alarm_id).account_id is None
    odd = alarms.raise_fraud_alarm(event(subject="not a subject"), "2-0")
    assert Alarm.objects.get(pk=odd).subject == "not a subject"


def test_fraud_alarms_close_after_a_quiet_hour():
    alarm_id = alarms.raise_fraud_alarm(event(), "1-0")
    assert alarms.close_quiet_event_alarms() == 0
    Alarm.objects.filter(pk=alarm_id).update(last_seen=timezone.now() - dt.timedelta(seconds=3601))
    assert alarms.close_quiet_event_alarms() == 1


def test_each_crossing_of_the_low_balance_threshold_is_an_alarm_that_a_recharge_clears(customer):
    from billing.services import apply_payment

    Account.objects.filter(pk=customer.pk).update(alarm_email="noc@acme.example", low_balance_threshold="1.00")
    first = alarms.raise_low_balance(customer.pk, "0.90", "1.00")
    assert alarms.resolve_low_balances() == 0  # the balance (0) is still under 1.00
    apply_payment(customer, "recharge", "5", None)
    assert alarms.resolve_low_balances() == 1
    second = alarms.raise_low_balance(customer.pk, "0.70", "1.00")
    assert second != first and len(mail.outbox) == 2


# ---------------------------------------------------------------------------
# Detectors over the CDRs


def cdrs(count, when, **fields):
    fields.setdefault("billing_mode", BillingMode.MAPPING_GATEWAY)
    CDR.objects.bulk_create(
        CDR(call_uuid=f"c-{uuid.uuid4().hex}", start_time=when - dt.timedelta(seconds=n % 50), **fields)
        for n in range(count)
    )


def test_an_illegal_call_burst_per_source_ip_is_alarmed_and_clears_when_it_stops():
    now = timezone.now()
    cdrs(20, now, billing_mode=BillingMode.ILLEGAL, caller_ip="198.51.100.66", end_reason="illegal_source")
    cdrs(19, now, billing_mode=BillingMode.ILLEGAL, caller_ip="198.51.100.67", end_reason="illegal_source")
    cdrs(30, now, billing_mode=BillingMode.MAPPING_GATEWAY, caller_ip="198.51.100.68")  # legal traffic

    assert alarms.detect_illegal_bursts(now) == {"raised": 1, "resolved": 0}
    alarm = Alarm.objects.get(kind="illegal_call_burst")
    assert (alarm.subject, alarm.figures["calls"], alarm.figures["limit"]) == ("198.51.100.66", 20, 20)
    assert alarms.detect_illegal_bursts(now + dt.timedelta(seconds=400)) == {"raised": 0, "resolved": 1}


@pytest.fixture
def carriers(db):
    return [RoutingGateway.objects.create(name=f"carrier-{n}", host=f"198.51.100.{n}") for n in (1, 2, 3)]


def history(gateway, now, *, attempts, answered, talk_s, days=range(1, 8)):
    """``attempts`` calls to ``gateway`` in the same hour of each of ``days`` days back (0: the last hour)."""
    for day in days:
        when = now - dt.timedelta(days=day, minutes=30)
        cdrs(answered, when, routing_gateway=gateway, hold_time_ms=talk_s * 1000)
        cdrs(attempts - answered, when, routing_gateway=gateway, hold_time_ms=0)


def test_asr_and_acd_drops_are_judged_against_each_gateways_own_week(carriers):
    now = timezone.now()
    asr_drop, acd_drop, steady = carriers
    for gateway in carriers:
        history(gateway, now, attempts=10, answered=6, talk_s=120)  # 70 attempts, 60% ASR, ACD 120 s a week
    history(asr_drop, now, attempts=40, answered=8, talk_s=120, days=[0])  # ASR 20%: a third of 60%
    history(acd_drop, now, attempts=60, answered=36, talk_s=20, days=[0])  # ACD 20 s of 120 s
    history(steady, now, attempts=40, answered=22, talk_s=110, days=[0])

    assert alarms.detect_gateway_drops(now) == {
        "asr": {"raised": 1, "resolved": 0},
        "acd": {"raised": 1, "resolved": 0},
    }
    asr = Alarm.objects.get(kind="asr_drop")
    assert (asr.routing_gateway_id, asr.figures["asr_percent"], asr.figures["baseline_asr_percent"]) == (
        asr_drop.pk,
        20.0,
        60.0,
    )
    acd = Alarm.objects.get(kind="acd_drop")
    assert (acd.routing_gateway_id, acd.figures["acd_s"], acd.figures["baseline_acd_s"]) == (acd_drop.pk, 20.0, 120.0)


def test_a_quiet_gateway_never_alarms(carriers):
    now = timezone.now()
    quiet = carriers[0]
    history(quiet, now, attempts=3, answered=2, talk_s=60)  # 21 attempts a week: under the floor of 30
    history(quiet, now, attempts=29, answered=0, talk_s=0, days=[0])
    assert alarms.detect_gateway_drops(now)["asr"]["raised"] == 0
    SystemParameter.objects.create(name="SS_ALARM_GATEWAY_MIN_CALLS", value="20")
    assert alarms.detect_gateway_drops(now)["asr"]["raised"] == 1


def test_a_traffic_spike_is_three_times_the_accounts_own_hour(customer):
    now = timezone.now()
    steady = Account.objects.create(name="Steady Co")
    for day in range(1, 8):
        cdrs(10, now - dt.timedelta(days=day, minutes=20), account=customer)  # 10 an hour
        cdrs(100, now - dt.timedelta(days=day, minutes=20), account=steady)  # 100 an hour
    cdrs(120, now - dt.timedelta(minutes=20), account=customer)
    cdrs(120, now - dt.timedelta(minutes=20), account=steady)

    assert alarms.detect_traffic_spikes(now) == {"raised": 1, "resolved": 0}
    spike = Alarm.objects.get(kind="traffic_spike")
    assert (spike.account_id, spike.figures["calls"], spike.figures["baseline_calls_per_hour"]) == (
        customer.pk,
        120,
        10,
    )
    # An hour later the burst is out of the window: the alarm clears.
    assert alarms.detect_traffic_spikes(now + dt.timedelta(hours=1))["resolved"] == 1


# ---------------------------------------------------------------------------
# Detectors over the live state


def test_long_live_calls_are_alarmed_per_account_and_clear_when_they_end(keys, client_redis, customer):
    now_ms = int(time.time() * 1000)
    entry = {"caller": "4930555", "callee": "88213", "account_id": customer.pk, "node": "cc-1"}
    client_redis.hset(
        keys.live_calls,
        mapping={
            "old-call": json.dumps({**entry, "start_ms": now_ms - 7300 * 1000}),
            "new-call": json.dumps({**entry, "start_ms": now_ms - 60 * 1000}),
            "garbage": b"not json",
        },
    )
    assert alarms.detect_long_calls(client_redis, keys, now_ms) == {"raised": 1, "resolved": 0}
    alarm = Alarm.objects.get(kind="long_call")
    assert (alarm.account_id, alarm.figures["calls"], alarm.figures["examples"][0]["call_id"]) == (
        customer.pk,
        1,
        "old-call",
    )
    client_redis.hdel(keys.live_calls, "old-call")
    assert alarms.detect_long_calls(client_redis, keys, now_ms) == {"raised": 0, "resolved": 1}


def test_ingest_lag_and_dead_letters_are_alarmed_and_clear(keys, client_redis):
    now_ms = int(time.time() * 1000)
    stale = client_redis.xadd(keys.cdr_stream, {"cdr": b"{}"}, id=f"{now_ms - 200_000}-0")
    client_redis.xadd(keys.cdr_dead_letters, {"reason": "PostgreSQL refused it", "cdr": "{}"})
    result = alarms.detect_ingest(client_redis, keys, now_ms)
    assert result == {"lag": {"raised": 1, "resolved": 0}, "dead": {"raised": 1, "resolved": 0}}
    lag = Alarm.objects.get(kind="ingest_lag")
    assert lag.figures["oldest_waiting_s"] == 200 and lag.severity == "warning"
    assert Alarm.objects.get(kind="dead_letters").figures["newest_reason"] == "PostgreSQL refused it"

    client_redis.xdel(keys.cdr_stream, stale)  # stored at last
    client_redis.xadd(keys.cdr_stream, {"cdr": b"{}"}, id=f"{now_ms - 5_000}-0")  # a fresh one waits: no lag
    client_redis.delete(keys.cdr_dead_letters)
    result = alarms.detect_ingest(client_redis, keys, now_ms)
    assert result == {"lag": {"raised": 0, "resolved": 1}, "dead": {"raised": 0, "resolved": 1}}


def test_a_silent_node_stays_alarmed_until_it_beats_again(keys, client_redis):
    now_ms = int(time.time() * 1000)
    client_redis.hset(keys.heartbeats, mapping={"cc-1": now_ms - 30_000, "cc-2": now_ms - 1_000})
    assert alarms.detect_silent_nodes(client_redis, keys, now_ms) == {"raised": 1, "resolved": 0}
    alarm = Alarm.objects.get(kind="node_silent")
    assert (alarm.subject, alarm.severity, alarm.figures["silent_s"]) == ("cc-1", "critical", 30)
    # The worker releases its calls and forgets its heartbeat: the alarm stays open.
    client_redis.hdel(keys.heartbeats, "cc-1")
    assert alarms.detect_silent_nodes(client_redis, keys, now_ms)["resolved"] == 0
    client_redis.hset(keys.heartbeats, "cc-1", now_ms)
    assert alarms.detect_silent_nodes(client_redis, keys, now_ms)["resolved"] == 1


def test_the_beat_tasks_run_every_detector(keys, client_redis):
    from security import tasks

    client_redis.hset(keys.heartbeats, "cc-9", int(time.time() * 1000) - 60_000)
    live = tasks.detect_live_alarms()
    assert live["node_silent"]["raised"] == 1
    assert set(tasks.detect_cdr_alarms()) == {"illegal_call_burst", "low_balance_resolved", "fraud_closed", "mailed"}
    assert set(tasks.detect_baseline_alarms()) == {"gateways", "traffic_spike"}


# ---------------------------------------------------------------------------
# The alarm page


@pytest.fixture
def operator_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("operator", "operator@example.com", "not-a-real-secret-42")
    client.force_login(user)
    client.user = user
    return client


def test_the_list_shows_open_alarms_first_and_filters_and_sorts(operator_client):
    cleared = burst(ip="203.0.113.1")
    alarms.reconcile("illegal_call_burst", [])
    critical = alarms.raise_alarm("node_silent", "critical", "node", "cc-1")
    warning = burst(ip="203.0.113.2")
    url = reverse("security:alarm_list")

    rows = [row.record.pk for row in operator_client.get(url).context["table"].rows]
    assert rows == [warning, critical, cleared]  # open first, newest activity on top
    filtered = operator_client.get(url, {"state": "open", "severity": "critical"})
    assert [row.record.pk for row in filtered.context["table"].rows] == [critical]
    by_subject = operator_client.get(url, {"subject": "203.0.113"})
    assert {row.record.pk for row in by_subject.context["table"].rows} == {cleared, warning}
    by_kind = operator_client.get(url, {"kind": "node_silent"})
    assert [row.record.pk for row in by_kind.context["table"].rows] == [critical]
    sorted_rows = operator_client.get(url, {"sort": "severity"}).context["table"].rows
    assert [row.record.severity for row in sorted_rows] == ["critical", "warning", "warning"]
    assert operator_client.get(url, {"state": "nonsense"}).status_code == 200


def test_acknowledge_one_or_many_records_who_and_when_and_close_clears(operator_client):
    one, two, three = (burst(ip=f"203.0.113.{n}") for n in (1, 2, 3))
    action = reverse("security:alarm_action")
    response = operator_client.post(action, {"action": "acknowledge", "pk": [one, two]})
    assert response.status_code == 302
    acknowledged = Alarm.objects.filter(acknowledged_at__isnull=False)
    assert set(acknowledged.values_list("pk", flat=True)) == {one, two}
    assert {a.acknowledged_by_id for a in acknowledged} == {operator_client.user.pk}
    waiting = operator_client.get(reverse("security:alarm_list"), {"state": "unacknowledged"}).context["table"]
    assert [row.record.pk for row in waiting.rows] == [three]

    operator_client.post(
        action, {"action": "close", "pk": [three], "return_url": reverse("security:alarm", args=[three])}
    )
    closed = Alarm.objects.get(pk=three)
    assert closed.resolved_at is not None and closed.acknowledged_by_id == operator_client.user.pk
    detail = operator_client.get(reverse("security:alarm", args=[three]))
    assert "Cleared" in detail.content.decode()


def test_bad_actions_are_refused_with_a_reason(operator_client, client, django_user_model):
    action = reverse("security:alarm_action")
    bad = operator_client.post(action, {"action": "delete", "pk": [1]})
    assert bad.status_code == 400 and b"action" in bad.content
    assert operator_client.post(action, {"action": "close", "pk": ["x"]}).status_code == 400
    viewer = django_user_model.objects.create_user("viewer", "v@example.com", "not-a-real-secret-42")
    client.force_login(viewer)
    assert client.post(action, {"action": "close", "pk": [1]}).status_code == 403
