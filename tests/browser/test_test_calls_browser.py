"""The list of operators' test calls in a real browser (Debian's Chromium): reached from the navigation, sorted
by a column's header, filtered by status, a row opens its result page; a routing gateway's page lists its recent
calls. No call is placed: the rows are made as the worker would leave them. Screenshots go to
BROWSER_SCREENSHOTS."""

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from tests.switching.testcall_rows import make_call, routing_gateways

from .test_audit_browser import PASSWORD, SCREENSHOTS, browser_page, log_in, pytestmark, role_groups  # noqa: F401


@pytest.mark.django_db(transaction=True)
def test_the_test_call_list_sorts_filters_and_opens_a_result(
    browser_page,  # noqa: F811 - the audit tests' fixture
    live_server,
    django_user_model,
    role_groups,  # noqa: F811
):
    page = browser_page
    engineer = django_user_model.objects.create_user("erin", password=PASSWORD)
    engineer.groups.add(Group.objects.get(name="Switching engineer"))
    one, two = routing_gateways().values()
    answered = dict(status="finished", finished=timezone.now(), answered=True, sip_status=200, sip_reason="OK")
    heard = make_call(one, "4930111", 50, requested_by=engineer, **answered, pdd_ms=840, ringing_ms=2100, talk_ms=5020,
                      rtp_tx_packets=251, rtp_rx_packets=249, rtp_rx_loss=2, jitter_tx_ms=0.4, jitter_rx_ms=1.6,
                      audio_heard=True, audio_verdict="tone")  # fmt: skip
    make_call(one, "4930222", 40, requested_by=engineer, **answered, pdd_ms=310, talk_ms=5000, rtp_tx_packets=250,
              rtp_rx_packets=0, audio_heard=False, audio_verdict="no audio")  # fmt: skip
    make_call(two, "+442071234567", 30, requested_by=engineer, status="finished", sip_status=486,
              sip_reason="Busy Here", pdd_ms=1520)  # fmt: skip
    make_call(
        two, "442079876543", 20, requested_by=engineer, status="failed", error="The test-call agent gave no result"
    )
    make_call(one, "4930333", 0, requested_by=engineer)

    log_in(page, live_server, "erin", PASSWORD)
    page.click("nav >> text=Test calls")
    page.wait_for_url("**/switching/test-calls/")
    rows = page.locator("table tbody tr")
    assert rows.count() == 5
    assert "4930333" in rows.first.inner_text() and "Queued" in rows.first.inner_text()
    page.screenshot(path=str(SCREENSHOTS / "test-calls.png"), full_page=True)

    page.click("table thead >> text=PDD")
    page.wait_for_url("**sort=pdd_ms**")
    assert "4930222" in rows.first.inner_text()  # the shortest PDD first

    page.select_option("select[name=status]", "failed")
    page.click("text=Apply filters")
    page.wait_for_url("**status=failed**")
    assert rows.count() == 1 and "442079876543" in rows.first.inner_text()

    page.goto(f"{live_server.url}/switching/routing-gateways/{one.pk}/")
    assert "Recent test calls" in page.inner_text("main")
    page.screenshot(path=str(SCREENSHOTS / "routing-gateway-test-calls.png"), full_page=True)
    page.click(f"a[href='{heard.get_absolute_url()}']")
    page.wait_for_url(f"**{heard.get_absolute_url()}")
    assert page.inner_text("[data-testid=testcall-status]") == "Finished"
    assert page.inner_text("[data-testid=rtp-rx]") == "249"
    assert not [text for text in page.console_problems if "Content Security Policy" in text], page.console_problems
