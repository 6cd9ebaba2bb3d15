"""From detection to review and back, through the real CDR ingest, the real worker task and the portal's pages.

The ingest's no-answer rule blocks a callee and streams the event; the
worker records it for review, with its evidence CDRs; an admin releases and
exempts it on the entry's page; further unanswered calls to it are not
blocked again while the exemption lasts.
"""

import time
import uuid

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import Permission
from django.urls import reverse

from billing import fraud
from callcore.contract import Keys, decode_event
from security import fraud_events
from security.models import DynamicBlacklistEntry
from softswitch_portal.core.models import SystemParameter
from tests.billing.streams import push
from tests.billing.test_ingest import cdr, drain, make_book

pytestmark = pytest.mark.django_db(transaction=True)

CALLEE = "882345678901"
OTHER = "882345678902"  # released without an exemption: the control


@pytest.fixture
def keys(settings):
    settings.REDIS_PREFIX = f"sstest-h1-{uuid.uuid4().hex[:8]}"
    fraud.rules.reset()
    yield Keys(settings.REDIS_PREFIX)
    fraud.rules.reset()
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(f"{settings.REDIS_PREFIX}:*"):
        client.delete(key)
    client.close()


@pytest.fixture
def r():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


def unanswered(n, account, at_ms, callee=CALLEE):
    record = cdr(n, account, start_ms=at_ms - 21_500, callee=callee, hold_ms=0)
    record["stop_ms"] = at_ms
    return record


def ingest(r, *records):
    push(r, *records)
    drain()


def test_a_released_and_exempted_callee_is_not_blocked_again_by_the_ingests_rule(client, django_user_model, keys, r):
    # A one-minute window, so the second burst below is counted afresh and crosses the critical level again.
    SystemParameter.objects.create(name="SS_BLACK_LIST_NO_ANSWER_PERIODS", value="60")
    acme = make_book()["acme"]
    first = int(time.time() * 1000) - 600_000
    burst = [unanswered(n, acme, first + n * 1000, callee) for callee in (CALLEE, OTHER) for n in range(10)]
    for n, record in enumerate(burst):
        record["call_uuid"], record["caller_call_id"] = f"first-{n}", f"first-{n}@192.0.2.10"
    ingest(r, *burst)
    assert r.zscore(keys.dynamic_blacklist(), CALLEE) is not None  # the ingest blocked it itself

    fraud_events.persist()
    entry = DynamicBlacklistEntry.objects.get(number=CALLEE)
    control = DynamicBlacklistEntry.objects.get(number=OTHER)
    assert (entry.rule, entry.status, entry.node) == ("no_answer_callee", "awaiting_review", "ingest")
    assert len(entry.evidence) == 10

    reviewer = django_user_model.objects.create_user("reviewer", "r@example.com", "not-a-real-secret-42")
    reviewer.user_permissions.set(
        Permission.objects.filter(
            codename__in=("view_dynamicblacklistentry", "view_cdr", "review_dynamicblacklistentry")
        )
    )
    client.force_login(reviewer)
    page = client.get(entry.get_absolute_url()).content.decode()
    assert "10 of 10 calls have their CDR stored" in page and page.count(CALLEE) > 10

    review = reverse("security:dynamicblacklistentry_review", args=[entry.pk])
    client.post(review, {"action": "release_exempt", "days": "7", "note": "the customer's own IVR test line"})
    client.post(reverse("security:dynamicblacklistentry_review", args=[control.pk]), {"action": "release"})
    assert r.zscore(keys.dynamic_blacklist(), CALLEE) is None and r.zscore(keys.dynamic_blacklist(), OTHER) is None
    assert r.zscore(keys.fraud_exempt, CALLEE) is not None

    later = first + 300_000
    ingest(r, *[unanswered(100 + n + 20 * i, acme, later + n * 1000, c) for i, c in enumerate((CALLEE, OTHER))
                for n in range(10)])  # fmt: skip

    assert r.zscore(keys.dynamic_blacklist(), OTHER) is not None  # released only: the rule blocks it again
    assert r.zscore(keys.dynamic_blacklist(), CALLEE) is None  # exempt
    events = [decode_event(fields[b"e"]) for _, fields in r.xrange(keys.fraud_events)]
    exempt = [e for e in events if e.subject == CALLEE and e.severity == "critical"][-1]
    assert exempt.figures.get("not_blocked") == "exempt" and not exempt.blocked
    fraud_events.persist()
    assert DynamicBlacklistEntry.objects.filter(number=CALLEE).count() == 1  # nothing new awaits review
    assert DynamicBlacklistEntry.objects.filter(number=OTHER, status="awaiting_review").count() == 1
