"""The review run: the post-call rules replayed over a period give the entries the live rules gave.

A few thousand generated CDRs (ordinary traffic with test-number, short-call
and spend bursts in it) go through the real ingest, whose rules block in
real Redis; the review run then replays the same CDRs from PostgreSQL in
memory. Both must list the same entries, trip for trip.
"""

import datetime as dt
import random
import time
import uuid
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from billing import fraud
from billing.models import CDR
from callcore.contract import POST_CALL_RULES, Keys, decode_event
from security import review_run
from softswitch_portal.celery import app
from softswitch_portal.core.models import SystemParameter
from tests.billing.streams import push
from tests.billing.test_ingest import cdr, drain, make_book

pytestmark = pytest.mark.django_db(transaction=True)

HOUR_MS = 3_600_000
NOW_MS = int(time.time() * 1000)
START_MS = NOW_MS - NOW_MS % HOUR_MS - 4 * HOUR_MS  # a period of three hours, ended an hour ago
END_MS = START_MS + 3 * HOUR_MS


@pytest.fixture
def prefix(settings, redis_client):
    """A Redis prefix of the test's own, its keys deleted afterwards."""
    settings.REDIS_PREFIX = f"sstest-review-{uuid.uuid4().hex[:8]}"
    yield settings.REDIS_PREFIX
    for key in redis_client.scan_iter(f"{settings.REDIS_PREFIX}:*", count=1000):
        redis_client.delete(key)


@pytest.fixture(autouse=True)
def fresh_rules():
    fraud.rules.reset()
    yield
    fraud.rules.reset()


def moment(ms):
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def param(name, value):
    SystemParameter.objects.update_or_create(name=name, defaults={"value": str(value)})


def traffic(book, rng, count=3000):
    """Ordinary calls with attacks in them, as the call core writes them, ended within the period."""
    customers, vendors = [book["acme"], book["globex"]], [book["vendor_a"], book["vendor_b"]]
    calls = []

    def call(account, vendor, callee, stop_ms, hold_s):
        n = len(calls)
        hold_ms = hold_s * 1000
        record = cdr(n, account, vendor=vendor, callee=callee, hold_ms=hold_ms, start_ms=stop_ms - hold_ms - 1500)
        calls.append(record)

    numbers = [f"44{rng.randint(10**9, 10**10 - 1)}" for _ in range(400)] + [f"1{rng.randint(10**9, 10**10 - 1)}"
                                                                              for _ in range(200)]  # fmt: skip
    for _ in range(count - 200):
        answered = rng.random() < 0.6
        call(rng.choice(customers), rng.choice(vendors), rng.choice(numbers),
             START_MS + 1_000_000 + rng.randrange(END_MS - START_MS - 1_000_000),
             rng.randint(15, 900) if answered else 0)  # fmt: skip
    # Test numbers and Wangiri: callees that never answer, each called within 40 minutes, five past the level.
    for k in range(8):
        base = START_MS + 1_000_000 + k * 900_000
        times = sorted(base + rng.randrange(2_400_000) for _ in range(14 if k < 5 else 8))
        for at in times:
            call(rng.choice(customers), rng.choice(vendors), f"88230000000{k}", at, 0)
    # Test calls before a pump: short connected calls to one prefix.
    for burst in range(3):
        base = START_MS + 900_000 + burst * 3_000_000
        for n in range(8):
            call(book["acme"], book["vendor_a"], f"44791100{burst}{n:03d}", base + n * 20_000, rng.randint(1, 6))
    # One long call.
    call(book["globex"], book["vendor_b"], "4930123456", END_MS - 600_000, 7300)
    calls.sort(key=lambda r: (r["stop_ms"], r["call_uuid"]))
    return calls


def test_the_review_run_gives_the_entries_the_live_rules_gave_on_the_same_cdrs(prefix, redis_client):
    book = make_book()
    # Limits that the generated traffic reaches: the spend rule at a floor of 20.00 an hour (and percent levels
    # under it), short-call bursts blocking from five.
    param("SS_FRAUD_SPEND_VELOCITY_ACTUAL_FLOOR", 200_000)
    param("SS_FRAUD_SPEND_VELOCITY_ACTUAL_WARNING", 1)
    param("SS_FRAUD_SPEND_VELOCITY_ACTUAL_CRITICAL", 1)
    param("SS_FRAUD_SHORT_CALL_BURST_CRITICAL", 5)
    calls = traffic(book, random.Random(16))
    for start in range(0, len(calls), 500):
        push(redis_client, *calls[start : start + 500])
    drain(batch_size=200)
    assert CDR.objects.count() == len(calls)

    live_events = [decode_event(f[b"e"]) for _, f in redis_client.xrange(Keys(prefix).fraud_events)]
    live = sorted(
        (e.rule, e.subject, e.scope, e.detected_ms, tuple(e.evidence), tuple(sorted(e.figures.items())))
        for e in live_events
        if e.blocked
    )
    assert {rule for rule, *_ in live} == {"no_answer_callee", "short_call_burst", "spend_velocity_actual"}
    assert sum(rule == "no_answer_callee" for rule, *_ in live) == 5

    reports = []
    result = review_run.replay(moment(START_MS), moment(END_MS), [r.value for r in POST_CALL_RULES],
                               lambda done, total: reports.append((done, total)))  # fmt: skip
    reviewed = sorted(
        (e["rule"], e["subject"], e["scope"], e["first_trip_ms"], tuple(e["evidence"]),
         tuple(sorted(e["figures"].items())))
        for e in result["entries"]
    )  # fmt: skip
    assert reviewed == live
    assert result["cdrs"] == len(calls)
    assert reports[0] == (0, len(calls)) and reports[-1] == (len(calls), len(calls))
    assert result["warnings"]["long_call"] == 1
    # The review wrote nothing: the windows and the blacklist are as the ingest left them.
    assert redis_client.xlen(Keys(prefix).fraud_events) == len(live_events)

    # Saved: the vendor cost of the calls that match an entry and started after its trip, until its expiry.
    for entry in result["entries"]:
        subject = entry["subject"]
        matching = CDR.objects.filter(
            start_time__gt=moment(entry["first_trip_ms"]), start_time__lte=moment(entry["expires_ms"])
        )
        if subject.startswith("acct:"):
            matching = matching.filter(account_id=int(subject[5:]))
        else:
            matching = matching.filter(caller_number=subject) | matching.filter(callee_number=subject)
        assert entry["saved_calls"] == matching.count()
        assert Decimal(entry["saved"]) == sum((c.vendor_cost for c in matching), Decimal(0))
    assert Decimal(result["saved"]) > 0


def test_the_review_run_never_blocks_and_evaluates_a_rule_switched_off(prefix, redis_client):
    book = make_book()
    param("SS_FRAUD_NO_ANSWER_CALLEE_ENABLED", 0)
    calls = [cdr(n, book["acme"], callee="882300000001", hold_ms=0, start_ms=START_MS + n * 60_000) for n in range(12)]
    push(redis_client, *calls)
    drain()
    assert redis_client.exists(Keys(prefix).dynamic_blacklist()) == 0
    result = review_run.replay(moment(START_MS), moment(END_MS), ["no_answer_callee"])
    assert [(e["rule"], e["subject"], e["figures"]["count"]) for e in result["entries"]] == [
        ("no_answer_callee", "882300000001", 10)
    ]
    assert result["rules"] == ["no_answer_callee"]
    assert redis_client.exists(Keys(prefix).dynamic_blacklist()) == 0
    assert redis_client.keys(f"{prefix}:fraud:*") == []


# -- the pages


@pytest.fixture
def eager_results():
    """Tasks run where they are queued, their state kept in the real result backend as a worker's would be."""
    before = app.conf.task_always_eager, app.conf.task_store_eager_result, review_run.review_run.store_eager_result
    app.conf.task_always_eager, app.conf.task_store_eager_result = True, True
    # A task reads the setting when the app first binds it, which an earlier test may have done already.
    review_run.review_run.store_eager_result = True
    yield
    app.conf.task_always_eager, app.conf.task_store_eager_result, review_run.review_run.store_eager_result = before


def test_the_admin_starts_a_run_and_reads_what_it_would_have_blocked(prefix, redis_client, client, eager_results,
                                                                      django_user_model):  # fmt: skip
    admin = django_user_model.objects.create_superuser("reviewer", "reviewer@example.com", "not-a-real-secret-42")
    client.force_login(admin)
    book = make_book()
    push(redis_client, *[cdr(n, book["acme"], callee="882300000001", hold_ms=0, start_ms=START_MS + n * 60_000)
                         for n in range(12)])  # fmt: skip
    drain()
    form = client.get(reverse("security:review_run_start"))
    assert form.status_code == 200 and b"Start review run" in form.content

    local = "%Y-%m-%dT%H:%M"  # the form's, in the portal's time zone
    posted = client.post(reverse("security:review_run_start"), {
        "start": timezone.localtime(moment(START_MS)).strftime(local),
        "end": timezone.localtime(moment(END_MS)).strftime(local),
        "rules": ["no_answer_callee", "short_call_burst"],
    })  # fmt: skip
    assert posted.status_code == 302
    progress = client.get(posted["Location"] + "?format=json").json()
    assert progress["state"] == "SUCCESS" and progress["finished"] and progress["done"] == 12
    page = client.get(posted["Location"])
    assert page.status_code == 200
    text = page.content.decode()
    assert "882300000001" in text and "No-answer callee" in text and 'id="review-entries"' in text
    # Sorted and filtered.
    assert client.get(posted["Location"] + "?sort=-saved").status_code == 200
    assert "882300000001" not in client.get(posted["Location"] + "?rule=short_call_burst").content.decode()


def test_a_period_that_ends_before_it_starts_is_refused_with_the_field_named(client, django_user_model, db):
    admin = django_user_model.objects.create_superuser("reviewer", "reviewer@example.com", "not-a-real-secret-42")
    client.force_login(admin)
    refused = client.post(reverse("security:review_run_start"),
                          {"start": "2024-05-02T10:00", "end": "2024-05-01T10:00", "rules": ["long_call"]})  # fmt: skip
    assert refused.status_code == 400
    assert "The end must be after the start." in refused.content.decode()
    assert (
        client.post(reverse("security:review_run_start"), {"start": "x", "end": "", "rules": ["nope"]}).status_code
        == 400
    )


def test_the_review_pages_need_the_blacklist_review_permission(client, django_user_model, db):
    client.force_login(django_user_model.objects.create_user("clerk", "clerk@example.com", "not-a-real-secret-42"))
    assert client.get(reverse("security:review_run_start")).status_code == 403
