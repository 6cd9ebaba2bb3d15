"""The review queue in a real browser (Debian's Chromium through Playwright): tick all, release, see it recorded."""

import datetime as dt
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
import redis
from django.utils import timezone

from billing.models import CDR
from callcore.contract import Keys
from security.models import DynamicBlacklistEntry

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("BROWSER_SCREENSHOTS") or tempfile.mkdtemp(prefix="portal-screens-"))

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="scripts/setup.sh --test installs Debian's chromium"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def keys(settings):
    settings.REDIS_PREFIX = f"sstest-h1-{uuid.uuid4().hex[:8]}"
    yield Keys(settings.REDIS_PREFIX)
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(f"{settings.REDIS_PREFIX}:*"):
        client.delete(key)
    client.close()


@pytest.fixture
def page(live_server):
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        page = browser.new_context(viewport={"width": 1500, "height": 1000}).new_page()
        page.set_default_timeout(15000)
        yield page
        browser.close()
        from django.db import connections

        connections.close_all()


def test_an_admin_ticks_the_queue_and_releases_it(page, live_server, django_user_model, keys, customer):
    django_user_model.objects.create_superuser("admin", "admin@example.com", "admin-pass-1")
    now = timezone.now()
    burst = DynamicBlacklistEntry.objects.create(
        subject_kind="account_high_risk", account=customer, rule="high_risk_rate", node="cc1", created=now,
        reason="High-risk destination rate: 5 in 60 s (critical 5)", expires_at=now + dt.timedelta(hours=1),
        figures={"count": 5, "window_s": 60, "warning": 3, "critical": 5},
        evidence=[f"hr-{n}@192.0.2.10" for n in range(5)],
    )  # fmt: skip
    for n in range(5):
        CDR.objects.create(call_uuid=f"hr-{n}", caller_call_id=f"hr-{n}@192.0.2.10", billing_mode=1,
                           start_time=now - dt.timedelta(seconds=50 - n * 11), callee_number=f"88163000000{n}",
                           caller_number="4930555", account=customer)  # fmt: skip
    for n in range(2):
        DynamicBlacklistEntry.objects.create(
            number=f"4930555000{n}", rule="malicious_caller", node="cc2", expires_at=now + dt.timedelta(hours=1),
            figures={"count": 6, "window_s": 600, "warning": 4, "critical": 6},
        )  # fmt: skip
    DynamicBlacklistEntry.objects.create(number="15550009999", status="confirmed", reason="by hand")

    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "admin-pass-1")
    page.click("button[type=submit]")
    page.wait_for_load_state()

    page.goto(f"{live_server.url}/security/dynamic-blacklist/")
    page.screenshot(path=str(SCREENSHOTS / "review-queue.png"), full_page=True)
    rows = page.locator("tbody tr")
    assert rows.count() == 4
    assert "Awaiting review" in rows.nth(0).inner_text() and "Confirmed" in rows.nth(3).inner_text()

    page.goto(f"{live_server.url}{burst.get_absolute_url()}")
    page.screenshot(path=str(SCREENSHOTS / "review-entry.png"), full_page=True)
    assert page.locator("svg.timeline line[stroke-width]").count() == 5

    page.goto(f"{live_server.url}/security/dynamic-blacklist/")
    page.check("input.select-all")
    assert page.locator('tbody input[name="entries"]:checked').count() == 4
    page.select_option("select[name=action]", "release")
    page.fill("input[name=note]", "test traffic of our own")
    page.click("text=Apply to the ticked entries")
    page.wait_for_load_state()
    page.screenshot(path=str(SCREENSHOTS / "review-released.png"), full_page=True)

    # The confirmed entry was blocking too: tick all releases every entry still blocking.
    assert "Released 4 entries" in page.content()
    assert set(DynamicBlacklistEntry.objects.values_list("status", flat=True)) == {"released"}
    assert set(DynamicBlacklistEntry.objects.values_list("reviewed_by__username", flat=True)) == {"admin"}
