"""An operator's first minutes in the portal, in a real browser (Debian's Chromium through Playwright)."""

import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from billing.models import CDR, Account
from softswitch_portal.switching.models import MappingGateway

CHROMIUM = "/usr/bin/chromium"
# Where the screenshots go, to look at after a run (BROWSER_SCREENSHOTS; else a temporary folder).
SCREENSHOTS = Path(os.environ.get("BROWSER_SCREENSHOTS") or tempfile.mkdtemp(prefix="portal-screens-"))

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="scripts/setup.sh --test installs Debian's chromium"),
]


@pytest.fixture
def page(live_server):
    # Playwright's sync API runs an event loop in this thread; the ORM calls
    # the test makes around it are plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15000)
        yield page
        browser.close()
        # The ORM calls the test made while Playwright's loop ran got a database connection of their
        # own context, which the test database's teardown does not see: close it here, or the test
        # database cannot be dropped at the end ("being accessed by other users").
        from django.db import connections

        connections.close_all()


@pytest.fixture
def operator_browser_login(page, live_server, django_user_model):
    def login():
        django_user_model.objects.create_superuser("operator", "ops@example.com", "operator-pass-1")
        page.goto(f"{live_server.url}/login/")
        page.fill("input[name=username]", "operator")
        page.fill("input[name=password]", "operator-pass-1")
        page.click("button[type=submit]")
        page.wait_for_load_state()
        assert "/login" not in page.url

    return login


@pytest.mark.django_db(transaction=True)
def test_an_operator_logs_in_adds_a_vendor_and_finds_illegal_calls(page, live_server, django_user_model, tmp_path):
    django_user_model.objects.create_superuser("operator", "ops@example.com", "operator-pass-1")
    Account.objects.create(name="Carrier X", account_type="vendor")
    now = dt.datetime.now(dt.UTC)
    CDR.objects.create(call_uuid="legal-1", start_time=now, billing_mode=1, caller_ip="192.0.2.10",
                       callee_number="4420794960", end_reason="normal_clearing")  # fmt: skip
    CDR.objects.create(call_uuid="illegal-1", start_time=now, billing_mode=-2, caller_ip="203.0.113.66",
                       callee_number="972599000111", end_reason="illegal_source")  # fmt: skip

    page.goto(f"{live_server.url}/switching/routing-gateways/")
    assert "/login" in page.url  # anonymous operators are sent to log in first
    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", "operator-pass-1")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/login" not in page.url

    page.goto(f"{live_server.url}/switching/routing-gateways/add/")
    page.fill("input[name=name]", "Carrier X Premium")
    page.fill("input[name=host]", "198.51.100.20")
    page.fill("input[name=port]", "5060")
    page.fill("[name=prefixes]", "44, 4420")
    page.select_option("select[name=clearing_account]", label="Carrier X")
    page.click("button[type=submit]:has-text('Create')")
    page.wait_for_load_state()
    assert page.locator("text=Carrier X Premium").first.is_visible()

    page.goto(f"{live_server.url}/switching/routing-gateways/")
    row = page.locator("table tbody tr", has_text="Carrier X Premium")
    assert row.count() == 1
    assert "198.51.100.20" in row.inner_text()

    page.goto(f"{live_server.url}/billing/cdrs/")
    assert page.locator("table tbody tr").count() == 2
    page.select_option("select[name=billing_mode]", value="-2")
    page.click("button[type=submit]:has-text('Apply filters')")
    page.wait_for_load_state()
    rows = page.locator("table tbody tr")
    assert rows.count() == 1
    assert "203.0.113.66" in rows.first.inner_text()
    assert "billing_mode=-2" in page.url
    page.screenshot(path=str(tmp_path / "cdr-illegal.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_an_operator_finds_an_accounts_calls_by_typing_part_of_its_name(page, live_server, operator_browser_login):
    from playwright.sync_api import expect

    # Enough accounts that a select would be a long list; the operator types instead.
    Account.objects.bulk_create(Account(name=f"Filler {i:03d}") for i in range(60))
    acme = Account.objects.create(name="Acme Telecom")
    beta = Account.objects.create(name="Beta Voice")
    MappingGateway.objects.create(name="acme-sbc", account=acme, remote_ips=["192.0.2.10"])
    now = dt.datetime.now(dt.UTC)
    CDR.objects.create(call_uuid="acme-1", start_time=now, billing_mode=1, account=acme, account_name=acme.name,
                       caller_ip="192.0.2.10", callee_number="4420794960", end_reason="normal_clearing")  # fmt: skip
    CDR.objects.create(call_uuid="beta-1", start_time=now, billing_mode=1, account=beta, account_name=beta.name,
                       caller_ip="192.0.2.20", callee_number="4989000111", end_reason="normal_clearing")  # fmt: skip
    operator_browser_login()

    page.goto(f"{live_server.url}/billing/cdrs/")
    assert page.locator("table tbody tr").count() == 2
    box = page.locator("input#id_account")
    assert box.get_attribute("placeholder") == "Any"
    box.click()
    box.press_sequentially("cme tel")
    # The first rows show on focus; the matches of the typed text replace them.
    expect(page.locator(".lookup-menu .lookup-option")).to_have_count(1)
    option = page.locator(".lookup-menu .lookup-option", has_text="Acme Telecom")
    page.screenshot(path=str(SCREENSHOTS / "cdr-lookup-menu.png"))
    option.click()
    assert box.input_value() == "Acme Telecom"
    assert page.locator("input[name=account]").input_value() == str(acme.pk)

    page.click("button[type=submit]:has-text('Apply filters')")
    page.wait_for_load_state()
    assert f"account={acme.pk}" in page.url
    rows = page.locator("table tbody tr")
    assert rows.count() == 1
    assert "192.0.2.10" in rows.first.inner_text()
    # Back on the page, the box shows the chosen account's name, not its id.
    assert page.locator("input#id_account").input_value() == "Acme Telecom"

    # Typing without picking and leaving the box keeps the filter that is applied; Enter picks the first match.
    box = page.locator("input#id_account")
    box.fill("beta")
    page.locator("input#id_caller_prefix").click()
    assert box.input_value() == "Acme Telecom"
    box.click()
    box.fill("Beta")
    box.press("Enter")
    # Playwright's own assertion: a wait_for_function string is eval'd in the page, which the portal's CSP forbids.
    expect(page.locator("input[name=account]")).to_have_value(str(beta.pk))
    box.press("Enter")
    page.wait_for_load_state()
    assert f"account={beta.pk}" in page.url
    assert "192.0.2.20" in page.locator("table tbody tr").first.inner_text()
    page.screenshot(path=str(SCREENSHOTS / "cdr-lookup-filtered.png"), full_page=True)
