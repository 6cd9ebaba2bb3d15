"""The test-call page in a real browser (Debian's Chromium through Playwright): from a routing gateway's page an
operator places a test call, the result page follows it without a reload until it is done, then shows the SIP
answer, audio heard, RTP both ways, the waveform and a playable recording; nothing refused by the CSP."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from .conftest import needs_sip
from .test_live_browser import CHROMIUM, browser_page  # noqa: F401, F811 - the fixture
from .test_test_calls import ready_test_phone, test_call_worker, tone_vendor  # noqa: F401, F811 - the fixture

SCREENSHOTS = Path(os.environ.get("BROWSER_SCREENSHOTS") or tempfile.mkdtemp(prefix="portal-screens-"))

pytestmark = [
    pytest.mark.sip,
    pytest.mark.browser,
    needs_sip,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="scripts/setup.sh --test installs Debian's chromium"),
]


def test_a_test_call_placed_from_the_gateway_page_shows_its_result_and_recording(
    callcore,
    switch_config,
    live_redis,
    test_call_worker,  # noqa: F811 - the fixture imported above
    browser_page,  # noqa: F811 - the fixture imported above
    live_server,
    django_user_model,
    tmp_path,
):
    from playwright.sync_api import expect

    page = browser_page
    ready_test_phone(switch_config, switch_config.route_b)
    vendor = tone_vendor(tmp_path)
    django_user_model.objects.create_superuser("alice", "alice@example.com", "pw-not-real-42")
    page.goto(f"{live_server.url}/login/?next=/switching/routing-gateways/{switch_config.route_b.pk}/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "pw-not-real-42")
    page.click("button[type=submit]")
    # The gateway's own button, not the navigation's "Test calls" list nor its recent test calls.
    page.get_by_role("link", name="Test call", exact=True).click()
    page.fill("input[name=number]", "12125550100")
    page.click("text=Place test call")
    expect(page.locator("[data-testid=testcall-status]")).to_have_text("Finished", timeout=90000)
    vendor.kill()
    vendor.wait()
    expect(page.locator("[data-testid=testcall-audio]")).to_contain_text("heard")
    assert int(page.locator("[data-testid=rtp-tx]").inner_text()) > 50
    assert int(page.locator("[data-testid=rtp-rx]").inner_text()) > 50
    expect(page.locator(".waveform-picture svg")).to_be_visible()
    duration = page.locator("audio").evaluate(
        "a => new Promise(done => a.readyState >= 1 ? done(a.duration) : a.addEventListener('loadedmetadata', "
        "() => done(a.duration)))"
    )
    assert duration > 1  # the browser loaded the recording and found seconds of audio in it
    page.screenshot(path=str(SCREENSHOTS / "test-call-result.png"), full_page=True)
    assert not [p for p in page.console_problems if "Content Security Policy" in p], page.console_problems
