"""The routing simulator and a CDR's decision trace in a real browser (Debian's Chromium): an operator simulates a
call from a trunk and reads every vendor kept or skipped with why; a bad source address is a form error; a CDR's
page shows the vendors its call skipped and the limit it got. Screenshots go to BROWSER_SCREENSHOTS."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from billing.models import CDR, Account, Rate, RateTable
from softswitch_portal.core import publisher
from softswitch_portal.switching.models import MappingGateway, RoutingGateway, RoutingSchedule

from .test_audit_browser import PASSWORD, SCREENSHOTS, browser_page, log_in, pytestmark, role_groups  # noqa: F401


def small_world():
    retail = RateTable.objects.create(name="Retail")
    Rate.objects.create(
        rate_table=retail, prefix="44", price_per_minute=Decimal("0.0200"), first_period=6, next_period=6
    )
    cost = RateTable.objects.create(name="Cost")
    Rate.objects.create(rate_table=cost, prefix="44", price_per_minute=Decimal("0.0100"), first_period=1, next_period=1)
    dear = RateTable.objects.create(name="Dear")
    Rate.objects.create(rate_table=dear, prefix="44", price_per_minute=Decimal("0.0500"), first_period=1, next_period=1)
    customer = Account.objects.create(name="Acme Telecom", rate_table=retail)
    vendor = Account.objects.create(name="Carrier One", account_type="vendor", rate_table=cost)
    dear_vendor = Account.objects.create(name="Carrier Dear", account_type="vendor", rate_table=dear)
    trunk = MappingGateway.objects.create(name="Acme trunk", account=customer, remote_ips=["192.0.2.10"])
    night = RoutingSchedule.objects.create(
        name="Another day", weekdays=[(timezone.localtime().weekday() + 2) % 7], start_time=dt.time(0, 0),
        end_time=dt.time(23, 59),
    )  # fmt: skip
    gateways = {
        "first": RoutingGateway.objects.create(name="UK direct", host="198.51.100.1", priority=10,
                                               clearing_account=vendor, conversation_limit=1800),
        "margin": RoutingGateway.objects.create(name="UK premium", host="198.51.100.2", priority=5,
                                                clearing_account=dear_vendor),
        "schedule": RoutingGateway.objects.create(name="UK nights", host="198.51.100.3", priority=1,
                                                  clearing_account=vendor),
        "kept": RoutingGateway.objects.create(name="UK backup", host="198.51.100.4", priority=20,
                                              clearing_account=vendor),
        "prefix": RoutingGateway.objects.create(name="China", host="198.51.100.5", prefixes=["86"],
                                                clearing_account=vendor),
    }  # fmt: skip
    gateways["schedule"].schedules.add(night)
    publisher.publish(force=True)
    return trunk, gateways


def no_favicon(page):
    # The portal has no icon: Chromium's own request for one is no problem of the page.
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204))


def table_rows(page):
    rows = page.locator("table tbody tr")
    return [rows.nth(i).locator("td").all_inner_texts() for i in range(rows.count())]


@pytest.mark.django_db(transaction=True)
def test_an_operator_simulates_a_call_and_reads_why_each_vendor_was_kept_or_skipped(
    browser_page,  # noqa: F811 - the audit tests' fixture
    live_server,
    django_user_model,
):
    page = browser_page
    trunk, gateways = small_world()
    noc = django_user_model.objects.create_user("nina", password=PASSWORD)
    noc.groups.add(Group.objects.get(name="NOC"))
    no_favicon(page)
    log_in(page, live_server, "nina", PASSWORD)

    page.goto(f"{live_server.url}/switching/simulator/")
    page.fill("input[name=source_ip]", "192.0.2.999")
    page.fill("input[name=callee]", "447700900123")
    page.click("button:has-text('Simulate')")
    assert "is not an IP address" in page.inner_text(".filter-panel")

    page.fill("input[name=source_ip]", "192.0.2.10")
    page.click("button:has-text('Simulate')")
    page.wait_for_selector("text=Candidate vendors")
    rows = {cells[1]: " ".join(cells) for cells in table_rows(page)}
    assert "first" in rows["UK direct"] and "kept" in rows["UK backup"]
    assert "margin" in rows["UK premium"] and "schedule" in rows["UK nights"] and "prefix" in rows["China"]
    outcome = page.inner_text("section[aria-label=Outcome]")
    assert "UK direct" in outcome and "1800 s" in outcome and "0.0200/min" in outcome
    page.screenshot(path=str(SCREENSHOTS / "routing-simulator.png"), full_page=True)
    # The table sorts, as every table of the portal does.
    page.click("th a:has-text('Priority')")
    page.wait_for_url("**sort=priority**")
    assert table_rows(page)[0][1] == "UK nights"
    assert page.console_problems == []


@pytest.mark.django_db(transaction=True)
def test_a_cdr_page_shows_the_vendors_its_call_skipped_and_its_limit(
    browser_page,  # noqa: F811 - the audit tests' fixture
    live_server,
    django_user_model,
):
    page = browser_page
    _trunk, gateways = small_world()
    g = gateways
    cdr = CDR.objects.create(
        call_uuid="trace-1", start_time=timezone.now(), billing_mode=1, end_reason="normal_clearing",
        routing_gateway=g["first"], routing_gateway_name="UK direct",
        decision_trace=f"policy=priority;routes={g['first'].pk},{g['kept'].pk};"
        f"skip={g['schedule'].pk}:schedule,{g['margin'].pk}:margin;busy=999;max=1800:route",
    )  # fmt: skip
    noc = django_user_model.objects.create_user("nina", password=PASSWORD)
    noc.groups.add(Group.objects.get(name="NOC"))
    no_favicon(page)
    log_in(page, live_server, "nina", PASSWORD)
    page.goto(f"{live_server.url}/billing/cdrs/{cdr.pk}/")
    panel = page.inner_text("section:has(h2:has-text('Routing decision'))")
    assert "UK nights" in panel and "outside its routing schedules" in panel
    assert "UK premium" in panel and "dearer" in panel
    assert "#999" in panel and "busy" in panel  # a gateway deleted since keeps its id
    assert "1800 s" in panel and "the first vendor's conversation limit" in panel
    page.screenshot(path=str(SCREENSHOTS / "cdr-decision-trace.png"), full_page=True)
    assert page.console_problems == []
