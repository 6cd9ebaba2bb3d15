"""The current-calls page in a real browser (Debian's Chromium through Playwright): a call held by SIPp appears
without a reload (htmx polling), is disconnected from its row, and vanishes; no Content-Security-Policy complaint.

Screenshots go to BROWSER_SCREENSHOTS (else a temporary folder), to look at after a run."""

import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from django.utils import timezone

from billing.models import CDR

from .conftest import VENDOR_A, needs_sip, wait_for_cdrs

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("BROWSER_SCREENSHOTS") or tempfile.mkdtemp(prefix="portal-screens-"))

pytestmark = [
    pytest.mark.sip,
    pytest.mark.browser,
    needs_sip,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="scripts/setup.sh --test installs Debian's chromium"),
]


@pytest.fixture
def browser_page(live_server):
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        page = browser.new_context(viewport={"width": 1500, "height": 950}).new_page()
        page.set_default_timeout(15000)
        page.console_problems = []
        page.on("console", lambda m: m.type in ("error", "warning") and page.console_problems.append(m.text))
        page.failed_responses = []
        page.on("response", lambda r: r.status >= 400 and page.failed_responses.append(f"{r.status} {r.url}"))
        yield page
        browser.close()
        from django.db import connections

        connections.close_all()


def test_a_held_call_appears_is_disconnected_from_its_row_and_vanishes(
    callcore, switch_config, sipp, live_redis, browser_page, live_server, django_user_model
):
    from playwright.sync_api import expect

    page = browser_page
    switch_config.publish()
    django_user_model.objects.create_superuser("alice", "alice@example.com", "pw-not-real-42")
    page.goto(f"{live_server.url}/login/?next=/calls/current/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "pw-not-real-42")
    page.click("button[type=submit]")
    count = page.locator("[data-testid=live-count]")
    expect(count).to_have_text("0")
    # Typed and not submitted: a full reload would clear it, an htmx refresh of the table leaves it.
    page.fill("input[name=node]", "typed, not sent")

    sipp.vendor("uas_answer.xml", VENDOR_A)
    held = sipp.customer("uac_wait_bye.xml", "12125550100", background=True, timeout=40)
    expect(count).to_have_text("1")
    row = page.locator("tr[data-call-id]")
    expect(row).to_contain_text("Answered")
    expect(row).to_contain_text("E2E trunk")
    expect(row).to_contain_text("Vendor A")
    expect(page.locator("input[name=node]")).to_have_value("typed, not sent")
    page.screenshot(path=str(SCREENSHOTS / "live-current-calls.png"), full_page=True)

    row.get_by_role("button", name="Disconnect").click()
    expect(page.locator(".alert-success")).to_contain_text("to end the call")
    expect(count).to_have_text("0")  # gone within a refresh or two, by itself
    assert held.wait(timeout=30) == 0
    [record] = wait_for_cdrs(live_redis, 1)
    assert (record["end_reason"], record["disconnected_by"]) == ("operator_disconnect", "portal:alice")
    page.screenshot(path=str(SCREENSHOTS / "live-current-calls-after.png"), full_page=True)

    for minutes, hold in ((3, 61_000), (12, 0), (40, 125_000), (90, 30_000)):
        CDR.objects.create(call_uuid=f"s{minutes}", start_time=timezone.now() - dt.timedelta(minutes=minutes),
                           billing_mode=1, mapping_gateway=switch_config.gateway, hold_time_ms=hold,
                           routing_gateway=switch_config.route_a, pdd_ms=1500, sip_status=200 if hold else 486,
                           vendors_tried=[{"gateway_id": switch_config.route_a.pk, "gateway": "Vendor A",
                                           "ip": "127.0.0.1", "status": 200 if hold else 486}])  # fmt: skip
    page.goto(f"{live_server.url}/calls/statistics/")
    expect(page.locator("table").first).to_contain_text("E2E trunk")
    page.screenshot(path=str(SCREENSHOTS / "live-statistics.png"), full_page=True)
    page.goto(f"{live_server.url}/calls/registrations/")
    page.screenshot(path=str(SCREENSHOTS / "live-registrations.png"), full_page=True)
    page.goto(f"{live_server.url}/")
    page.screenshot(path=str(SCREENSHOTS / "home-traffic.png"), full_page=True)
    # The browser's own favicon request may 404 (the portal has none); every response the pages asked for
    # succeeded, and nothing was refused by the Content-Security-Policy (htmx included).
    assert not page.failed_responses, page.failed_responses
    refused = [p for p in page.console_problems if "Content Security Policy" in p or "Refused" in p]
    assert not refused, refused
