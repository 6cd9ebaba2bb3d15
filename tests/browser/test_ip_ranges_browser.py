"""The operators' IP-country ranges in a real browser (Debian's Chromium): an administrator places a range in a
country from the form (a range overlapping another is refused beside the field), finds it by an address it holds,
and a call core's loader places that address in the new country. Screenshots go to BROWSER_SCREENSHOTS."""

import pytest
from django.contrib.auth.models import Group

from callcore import geo
from callcore.contract import IpCountryKeys
from security.models import IpCountryRange
from softswitch_portal.core.redis import prefix

from .test_audit_browser import PASSWORD, SCREENSHOTS, browser_page, log_in, pytestmark, role_groups  # noqa: F401


@pytest.fixture
def ip_country_keys(redis_client):
    keys = IpCountryKeys(prefix())
    redis_client.delete(keys.version, keys.blob)
    yield keys
    redis_client.delete(keys.version, keys.blob)


@pytest.mark.django_db(transaction=True)
def test_a_range_added_on_the_page_places_its_addresses_for_the_call_cores(
    browser_page,  # noqa: F811 - the audit tests' fixture
    live_server,
    django_user_model,
    role_groups,  # noqa: F811
    ip_country_keys,
    redis_client,
):
    page = browser_page
    admin = django_user_model.objects.create_user("ann", password=PASSWORD)
    admin.groups.add(Group.objects.get(name="Administrator"))
    IpCountryRange.objects.create(start_ip="198.51.100.0", count=256, country="NL", memo="Amsterdam PoP")
    log_in(page, live_server, "ann", PASSWORD)

    page.goto(f"{live_server.url}/security/ip-country-ranges/add/")
    page.fill("input[name=start_ip]", "198.51.100.128")
    page.fill("input[name=count]", "64")
    page.fill("input[name=country]", "fr")
    page.fill("input[name=memo]", "Paris PoP")
    page.click("button.btn-primary[type=submit]")
    assert "Overlaps 198.51.100.0-198.51.100.255 (NL)" in page.inner_text("main")
    page.screenshot(path=str(SCREENSHOTS / "ip-country-range-overlap.png"), full_page=True)

    page.fill("input[name=start_ip]", "203.0.113.64")
    page.click("button.btn-primary[type=submit]")
    page.wait_for_url("**/security/ip-country-ranges/*/")
    assert "203.0.113.127" in page.inner_text("main")  # the end address, worked out from the count
    page.screenshot(path=str(SCREENSHOTS / "ip-country-range-detail.png"), full_page=True)

    page.goto(f"{live_server.url}/security/ip-country-ranges/?address=203.0.113.100")
    rows = page.locator("table tbody tr")
    assert rows.count() == 1 and "Paris PoP" in rows.first.inner_text()
    page.goto(f"{live_server.url}/security/ip-country-ranges/")
    assert page.locator("table tbody tr").count() == 2
    page.screenshot(path=str(SCREENSHOTS / "ip-country-ranges.png"), full_page=True)

    loader = geo.CountryLoader(redis_client.execute_command, prefix())
    loader.refresh()
    assert loader.table.country("203.0.113.100") == "FR" and loader.table.country("198.51.100.7") == "NL"
    assert not [text for text in page.console_problems if "Content Security Policy" in text], page.console_problems
