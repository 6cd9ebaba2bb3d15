"""The admin's review of the dynamic blacklist: the queue page, the actions, who may act, and Redis following."""

import datetime as dt
import io
import re
import uuid

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from billing.models import CDR
from callcore.contract import NEVER_EXPIRES_MS, Keys
from security import dynamic_blacklist
from security.models import BlacklistExemption, BlackWhiteListGroup, DynamicBlacklistEntry

pytestmark = pytest.mark.django_db(transaction=True)

PERMISSIONS = ("view_dynamicblacklistentry", "view_blacklistexemption", "view_cdr")


@pytest.fixture
def keys(settings):
    settings.REDIS_PREFIX = f"sstest-h1-{uuid.uuid4().hex[:8]}"
    yield Keys(settings.REDIS_PREFIX)
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(f"{settings.REDIS_PREFIX}:*"):
        client.delete(key)
    client.close()


@pytest.fixture
def r():
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    yield client
    client.close()


def user_with(django_user_model, name, *codenames):
    user = django_user_model.objects.create_user(name, f"{name}@example.com", "not-a-real-secret-42")
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def reviewer(django_user_model):
    return user_with(django_user_model, "reviewer", *PERMISSIONS, "review_dynamicblacklistentry")


@pytest.fixture
def watcher(django_user_model):
    """May look at the queue, not act on it (the NOC)."""
    return user_with(django_user_model, "watcher", *PERMISSIONS)


@pytest.fixture
def reviewer_client(client, reviewer):
    client.force_login(reviewer)
    return client


def blocked(number="15550001111", **fields):
    fields.setdefault("rule", "malicious_caller")
    fields.setdefault("expires_at", timezone.now() + dt.timedelta(hours=1))
    fields.setdefault("figures", {"count": 6, "window_s": 600, "warning": 4, "critical": 6})
    return DynamicBlacklistEntry.objects.create(number=number, **fields)


def ms(when):
    return int(when.timestamp() * 1000)


def review(client, entry, **data):
    return client.post(reverse("security:dynamicblacklistentry_review", args=[entry.pk]), data)


def bulk(client, entries, **data):
    return client.post(
        reverse("security:dynamicblacklistentry_bulk_review"), {"entries": [e.pk for e in entries], **data}
    )


# -- the actions, through the pages


def test_confirming_for_hours_records_who_and_when_and_moves_the_expiry_in_redis(reviewer_client, reviewer, keys, r):
    entry = blocked()
    before = timezone.now()

    response = review(reviewer_client, entry, action="confirm", hours="48", note="pumping 881")

    assert response.status_code == 302
    entry.refresh_from_db()
    assert (entry.status, entry.reviewed_by, entry.review_note) == ("confirmed", reviewer, "pumping 881")
    assert before <= entry.reviewed_at <= timezone.now()
    assert before + dt.timedelta(hours=48) <= entry.expires_at <= timezone.now() + dt.timedelta(hours=48)
    assert int(r.zscore(keys.dynamic_blacklist(), "15550001111")) == ms(entry.expires_at)


def test_confirming_for_good_never_expires(reviewer_client, keys, r):
    entry = blocked()
    review(reviewer_client, entry, action="confirm", permanent="on")
    entry.refresh_from_db()
    assert entry.status == "confirmed" and entry.expires_at is None
    assert int(r.zscore(keys.dynamic_blacklist(), "15550001111")) == NEVER_EXPIRES_MS


def test_releasing_takes_the_number_out_of_redis_at_once_with_its_siblings(reviewer_client, reviewer, keys, r):
    entry = blocked()
    sibling = blocked(rule="no_answer_callee", expires_at=timezone.now() + dt.timedelta(hours=5))
    other_scope_number = blocked("15550002222")
    assert r.zscore(keys.dynamic_blacklist(), "15550001111") is not None

    review(reviewer_client, entry, action="release", note="a call centre")

    assert r.zscore(keys.dynamic_blacklist(), "15550001111") is None
    assert r.zscore(keys.dynamic_blacklist(), "15550002222") is not None
    sibling.refresh_from_db()
    entry.refresh_from_db()
    assert entry.status == sibling.status == "released"
    assert sibling.reviewed_by == reviewer and sibling.review_note == f"released with entry {entry.pk}: a call centre"
    other_scope_number.refresh_from_db()
    assert other_scope_number.status == "awaiting_review"


def test_release_and_exempt_mirrors_the_exemption_into_redis(reviewer_client, reviewer, keys, r, customer):
    entry = blocked(None or "", subject_kind="account_high_risk", account=customer, rule="high_risk_rate")
    assert r.zscore(keys.dynamic_blacklist(), f"acct:{customer.pk}:hr") is not None

    review(reviewer_client, entry, action="release_exempt", days="7", note="new satellite customer")

    assert r.zscore(keys.dynamic_blacklist(), f"acct:{customer.pk}:hr") is None
    exemption = BlacklistExemption.objects.get()
    assert (exemption.subject_kind, exemption.account, exemption.entry, exemption.created_by) == (
        "account_high_risk", customer, entry, reviewer
    )  # fmt: skip
    assert exemption.until - timezone.now() > dt.timedelta(days=6, hours=23)
    assert int(r.zscore(keys.fraud_exempt, f"acct:{customer.pk}:hr")) == ms(exemption.until)

    # Ending the exemption early (deleting it) takes it out of Redis too.
    exemption.delete()
    assert r.zscore(keys.fraud_exempt, f"acct:{customer.pk}:hr") is None


def test_the_longest_running_exemption_of_a_subject_is_the_one_in_redis(keys, r):
    soon = BlacklistExemption.objects.create(number="15550003333", until=timezone.now() + dt.timedelta(days=1))
    later = BlacklistExemption.objects.create(number="15550003333", until=timezone.now() + dt.timedelta(days=9))
    assert int(r.zscore(keys.fraud_exempt, "15550003333")) == ms(later.until)
    later.delete()
    assert int(r.zscore(keys.fraud_exempt, "15550003333")) == ms(soon.until)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"action": "confirm"}, "hours"),
        ({"action": "confirm", "hours": "0"}, "hours"),
        ({"action": "confirm", "hours": "many"}, "hours"),
        ({"action": "release_exempt"}, "days"),
        ({"action": "release_exempt", "days": "9999"}, "days"),
        ({"action": "ban"}, "action"),
    ],
)
def test_bad_input_is_a_clear_error_and_changes_nothing(reviewer_client, keys, data, field):
    entry = blocked()
    response = review(reviewer_client, entry, **data)
    assert response.status_code == 302
    page = reviewer_client.get(response.url).content.decode()
    label = {"hours": "Extend by (hours)", "days": "Exempt for (days)", "action": "Action"}[field]
    assert label in page
    entry.refresh_from_db()
    assert entry.status == "awaiting_review" and entry.reviewed_by is None


def test_an_entry_already_released_cannot_be_confirmed(reviewer_client, keys, r):
    entry = blocked(status="released")
    response = review(reviewer_client, entry, action="confirm", hours="5")
    assert "released already" in reviewer_client.get(response.url).content.decode()
    entry.refresh_from_db()
    assert entry.status == "released" and r.zscore(keys.dynamic_blacklist(), "15550001111") is None


# -- who may act


def test_a_user_without_the_review_permission_sees_the_queue_but_may_not_act(client, watcher, keys, r):
    entry = blocked()
    client.force_login(watcher)

    page = client.get(reverse("security:dynamicblacklistentry_list"))
    assert page.status_code == 200 and 'id="bulk-review"' not in page.content.decode()
    assert 'action="/security' not in client.get(entry.get_absolute_url()).content.decode()

    assert review(client, entry, action="release").status_code == 403
    assert bulk(client, [entry], action="release").status_code == 403
    entry.refresh_from_db()
    assert entry.status == "awaiting_review" and r.zscore(keys.dynamic_blacklist(), "15550001111") is not None


def test_the_review_pages_need_a_login(client, keys):
    entry = blocked()
    response = review(client, entry, action="release")
    assert response.status_code == 302 and "login" in response.url
    entry.refresh_from_db()
    assert entry.status == "awaiting_review"


def test_the_security_reviewer_role_holds_the_review_permission(django_user_model):
    from django.contrib.auth.models import Group

    from softswitch_portal.core.roles import sync_roles

    sync_roles()  # the migration did; a transactional test's flush took the groups away

    assert (
        Group.objects.get(name="Security reviewer").permissions.filter(codename="review_dynamicblacklistentry").exists()
    )
    assert not Group.objects.get(name="NOC").permissions.filter(codename="review_dynamicblacklistentry").exists()


# -- bulk


def test_bulk_release_acts_on_the_ticked_entries_only(reviewer_client, reviewer, keys, r):
    first, second, untouched = blocked("15550000001"), blocked("15550000002"), blocked("15550000003")

    response = bulk(reviewer_client, [first, second], action="release", note="false alarm")

    assert response.status_code == 302
    for entry in (first, second):
        entry.refresh_from_db()
        assert (entry.status, entry.reviewed_by, entry.review_note) == ("released", reviewer, "false alarm")
    untouched.refresh_from_db()
    assert untouched.status == "awaiting_review"
    assert set(r.zrange(keys.dynamic_blacklist(), 0, -1)) == {"15550000003"}


def test_bulk_confirm_and_bulk_release_and_exempt(reviewer_client, keys, r):
    entries = [blocked(f"1555000010{n}") for n in range(3)]
    bulk(reviewer_client, entries[:2], action="confirm", hours="12")
    bulk(reviewer_client, entries[2:], action="release_exempt", days="3")

    statuses = {e.number: e.status for e in DynamicBlacklistEntry.objects.all()}
    assert statuses == {"15550000100": "confirmed", "15550000101": "confirmed", "15550000102": "released"}
    assert r.zscore(keys.fraud_exempt, "15550000102") is not None
    assert r.zscore(keys.fraud_exempt, "15550000100") is None


def test_a_bulk_release_of_two_entries_of_one_number_releases_both_once(reviewer_client, keys, r):
    first, second = blocked(), blocked(rule="no_answer_callee")
    response = bulk(reviewer_client, [first, second], action="release")
    messages = reviewer_client.get(response.url).content.decode()
    assert "Released 1 entry" in messages and "released already" in messages
    assert set(DynamicBlacklistEntry.objects.values_list("status", flat=True)) == {"released"}


def test_a_bulk_action_without_ticked_entries_says_so(reviewer_client, keys):
    entry = blocked()
    response = reviewer_client.post(reverse("security:dynamicblacklistentry_bulk_review"), {"action": "release"})
    assert "Tick the entries to act on" in reviewer_client.get(response.url).content.decode()
    entry.refresh_from_db()
    assert entry.status == "awaiting_review"


# -- the pages


def test_the_queue_lists_entries_awaiting_review_first_with_their_evidence_on_a_timeline(
    reviewer_client, keys, customer
):
    detected = timezone.now() - dt.timedelta(hours=1)
    waiting = blocked("15550000008", evidence=[f"burst-{n}@192.0.2.1" for n in range(3)], created=detected)
    blocked("15550000009", status="confirmed")  # newer, but already reviewed
    for n in range(3):
        start = detected - dt.timedelta(seconds=30 - n * 10)
        CDR.objects.create(
            call_uuid=f"u-{n}",
            caller_call_id=f"burst-{n}@192.0.2.1",
            start_time=start,
            account=customer,
            billing_mode=1,
        )
    assert waiting.status == "awaiting_review"

    response = reviewer_client.get(reverse("security:dynamicblacklistentry_list"))

    assert response.status_code == 200
    html = response.content.decode()
    assert html.index("15550000008") < html.index("15550000009")
    assert 'id="bulk-review"' in html and 'name="entries"' in html and 'form="bulk-review"' in html
    row = html[html.index("15550000008") :]
    row = row[: row.index("</tr>")]
    assert "3 calls" in row and row.count("<title>") == 3  # one tick per evidence call on the timeline
    assert "1 entry awaiting review" in re.sub(r"<[^>]+>", "", html) or "<strong>1</strong> entry" in html


def test_the_entry_page_shows_the_evidence_cdrs_the_timeline_and_the_review_form(reviewer_client, keys, customer):
    now = timezone.now()
    entry = blocked(evidence=["e-1@192.0.2.1", "e-2@192.0.2.1", "never-stored@192.0.2.1"], created=now)
    for n in (1, 2):
        start = now - dt.timedelta(seconds=n)
        CDR.objects.create(
            call_uuid=f"cdr-e-{n}", caller_call_id=f"e-{n}@192.0.2.1", callee_number="881612345678", start_time=start,
            account=customer, billing_mode=1,
        )  # fmt: skip

    html = reviewer_client.get(entry.get_absolute_url()).content.decode()

    assert "Evidence CDRs" in html and "881612345678" in html
    assert "2 of 3 calls have their CDR stored" in html
    assert '<svg class="timeline"' in html
    assert reverse("security:dynamicblacklistentry_review", args=[entry.pk]) in html
    assert "6 / 600 s (w 4, c 6)" in html


def test_the_queue_filters_by_rule_and_status_and_sorts(reviewer_client, keys):
    blocked("15550000011", rule="malicious_caller")
    blocked("15550000012", rule="no_answer_callee", status="released")
    url = reverse("security:dynamicblacklistentry_list")

    html = reviewer_client.get(url, {"rule": "no_answer_callee"}).content.decode()
    assert "15550000012" in html and "15550000011" not in html
    html = reviewer_client.get(url, {"status": "awaiting_review"}).content.decode()
    assert "15550000011" in html and "15550000012" not in html
    html = reviewer_client.get(url, {"sort": "-subject"}).content.decode()
    assert html.index("15550000012") < html.index("15550000011")


def test_the_exemption_pages_render(reviewer_client, keys):
    exemption = BlacklistExemption.objects.create(number="15550004444", until=timezone.now() + dt.timedelta(days=1))
    assert "15550004444" in reviewer_client.get(reverse("security:blacklistexemption_list")).content.decode()
    assert reviewer_client.get(exemption.get_absolute_url()).status_code == 200


# -- expiry and resync


def test_expired_entries_are_marked_and_leave_redis(keys, r):
    gone = blocked("15550005555")
    DynamicBlacklistEntry.objects.filter(pk=gone.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    kept = blocked("15550006666")
    r.zadd(keys.dynamic_blacklist(), {"15550005555": ms(timezone.now()) - 1000})
    r.zadd(keys.fraud_exempt, {"15550007777": ms(timezone.now()) - 1000})

    assert dynamic_blacklist.expire() == 1

    gone.refresh_from_db()
    kept.refresh_from_db()
    assert (gone.status, kept.status) == ("expired", "awaiting_review")
    assert r.zrange(keys.dynamic_blacklist(), 0, -1) == ["15550006666"]
    assert r.zcard(keys.fraud_exempt) == 0


def test_resync_rebuilds_the_exemptions_too(keys, r, customer):
    BlacklistExemption.objects.create(
        subject_kind="account", account=customer, until=timezone.now() + dt.timedelta(days=2)
    )
    BlacklistExemption.objects.create(number="15550008888", until=timezone.now() - dt.timedelta(days=1))
    blocked("15550009999")
    r.delete(keys.fraud_exempt, keys.dynamic_blacklist())
    r.zadd(keys.fraud_exempt, {"stale": NEVER_EXPIRES_MS})

    dynamic_blacklist.resync_all()

    assert r.zrange(keys.fraud_exempt, 0, -1) == [f"acct:{customer.pk}"]
    assert r.zrange(keys.dynamic_blacklist(), 0, -1) == ["15550009999"]


def test_the_demo_data_seeds_the_high_risk_destinations(keys):
    call_command("seed_demo", "--demo", stdout=io.StringIO())
    group = BlackWhiteListGroup.objects.get(name="High-risk destinations")
    prefixes = set(group.entries.values_list("number", flat=True))
    assert group.kind == "highrisk" and {"881", "882", "883", "979"} <= prefixes
    assert all(entry.match == "prefix" and entry.note for entry in group.entries.all())
    # UK (4471-4479) and Cuban (535) mobiles are ordinary traffic, whatever fraud also goes there.
    assert not any(p.startswith(tuple(f"447{d}" for d in range(1, 10)) + ("53",)) for p in prefixes)
