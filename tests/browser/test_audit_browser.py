"""The audit trail and the lockout in a real browser (Debian's Chromium): an administrator changes a credit limit
and reads it on the account's History tab and the audit page; a user locked out sees why; no page breaks the
Content-Security-Policy."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from django.contrib.auth.models import Group

from billing.models import Account, RateTable
from softswitch_portal.core import roles
from softswitch_portal.core.models import SystemParameter

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("BROWSER_SCREENSHOTS") or tempfile.mkdtemp(prefix="portal-screens-"))
PASSWORD = "amber-trunk-route-71"

pytestmark = [
    pytest.mark.browser,
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
        page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
        page.set_default_timeout(15000)
        page.console_problems = []

        def keep_problem(message):
            if message.type in ("error", "warning"):
                page.console_problems.append(message.text)

        page.on("console", keep_problem)
        yield page
        browser.close()
        from django.db import connections

        connections.close_all()


@pytest.fixture(autouse=True)
def role_groups(transactional_db):
    # A transactional test's database is emptied after each test, the roles' groups with it: make them again.
    roles.sync_roles()


def log_in(page, live_server, username, password):
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


@pytest.mark.django_db(transaction=True)
def test_a_credit_limit_change_is_on_the_history_tab_and_the_audit_page(browser_page, live_server, django_user_model):
    page = browser_page
    admin = django_user_model.objects.create_user("ann", password=PASSWORD)
    admin.groups.add(Group.objects.get(name="Administrator"))
    account = Account.objects.create(name="Acme Telecom", rate_table=RateTable.objects.create(name="Retail"))

    log_in(page, live_server, "ann", PASSWORD)
    page.goto(f"{live_server.url}/billing/accounts/{account.pk}/edit/")
    page.fill("input[name=credit_limit]", "250")
    page.click("button[type=submit]:has-text('Save')")
    page.click("nav.tabs >> text=History")
    page.wait_for_selector("text=credit_limit")
    assert "250" in page.inner_text(".card-table")
    page.screenshot(path=str(SCREENSHOTS / "account-history.png"), full_page=True)

    page.goto(f"{live_server.url}/audit/")
    row = page.locator("tbody tr", has_text="Acme Telecom").first
    assert "ann" in row.inner_text() and "250" in row.inner_text()
    page.screenshot(path=str(SCREENSHOTS / "audit-log.png"), full_page=True)
    page.goto(f"{live_server.url}/audit/logins/")
    assert "Logged in" in page.inner_text("tbody")
    page.screenshot(path=str(SCREENSHOTS / "logins.png"), full_page=True)
    assert not [text for text in page.console_problems if "Content Security Policy" in text], page.console_problems


@pytest.mark.django_db(transaction=True)
def test_a_locked_out_user_is_told_and_a_reviewer_releases_the_lock(browser_page, live_server, django_user_model):
    page = browser_page
    SystemParameter.objects.create(name="SS_MAX_LOGIN_FAILED", value="2")
    django_user_model.objects.create_user("clerk", password=PASSWORD)
    reviewer = django_user_model.objects.create_user("rita", password=PASSWORD)
    reviewer.groups.add(Group.objects.get(name="Security reviewer"))

    # The lock is on the user and on the address, so the reviewer, on the same machine, logged in before it.
    reviewer_page = page.context.browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    log_in(reviewer_page, live_server, "rita", PASSWORD)

    for _ in range(2):
        log_in(page, live_server, "clerk", "wrong-password")
    log_in(page, live_server, "clerk", PASSWORD)
    assert "Too many failed logins" in page.inner_text("body")
    page.screenshot(path=str(SCREENSHOTS / "locked-out.png"), full_page=True)

    reviewer_page.goto(f"{live_server.url}/audit/lockouts/")
    assert "Locked until" in reviewer_page.inner_text("tbody")
    reviewer_page.screenshot(path=str(SCREENSHOTS / "lockouts.png"), full_page=True)
    reviewer_page.click("text=Release")
    reviewer_page.click("button[type=submit]:has-text('Delete')")
    log_in(page, live_server, "clerk", PASSWORD)
    assert page.url.rstrip("/") == live_server.url
    assert not [text for text in page.console_problems if "Content Security Policy" in text], page.console_problems
