"""The dashboard leads with what needs an operator: open alarms by severity, the most pressing few, and the
dynamic blacklist entries awaiting review, each linked to its list."""

import html

import pytest
from django.urls import reverse

from security import alarms
from security.choices import BlacklistStatus
from security.models import DynamicBlacklistEntry

pytestmark = pytest.mark.django_db


def page(client):
    response = client.get(reverse("home"))
    assert response.status_code == 200
    return response, html.unescape(response.content.decode())


def test_the_dashboard_counts_open_alarms_by_severity_and_links_them(operator_client, portal_objects):
    # portal_objects holds one open warning (an illegal-call burst from 203.0.113.99).
    node = alarms.raise_alarm("node_silent", "critical", "node", "cc-east")
    alarms.raise_alarm("dead_letters", "warning", "switch", "cdr-ingest")
    cleared = alarms.raise_alarm("asr_drop", "warning", "routing_gateway", "1")
    alarms.reconcile("asr_drop", [])
    alarms.acknowledge([node], None)

    response, text = page(operator_client)
    counts = response.context["alarm_counts"]
    assert (counts["total"], counts["critical"], counts["warning"], counts["info"]) == (3, 1, 2, 0)
    assert counts["unacknowledged"] == 2
    latest = [alarm.pk for alarm in response.context["latest_alarms"]]
    assert latest[0] == node and cleared not in latest  # the most severe first, cleared ones not at all
    assert "Call-core node silent" in text and "cc-east" in text and "203.0.113.99" in text
    assert f'href="{reverse("security:alarm", args=[node])}"' in text
    assert f"{reverse('security:alarm_list')}?state=open&severity=critical" in text

    # The link leads to exactly the alarms counted.
    listed = operator_client.get(reverse("security:alarm_list"), {"state": "open", "severity": "critical"})
    assert [row.record.pk for row in listed.context["table"].rows] == [node]


def test_no_open_alarms_says_so(operator_client, portal_objects):
    alarms.reconcile("illegal_call_burst", [])
    response, text = page(operator_client)
    assert response.context["alarm_counts"]["total"] == 0
    assert "No open alarms." in text


def test_the_dashboard_counts_blacklist_entries_awaiting_review_and_links_the_queue(operator_client, portal_objects):
    DynamicBlacklistEntry.objects.filter(pk=portal_objects.blocked.pk).update(status=BlacklistStatus.AWAITING_REVIEW)
    response, text = page(operator_client)
    assert response.context["awaiting_review"] == 1
    queue = f"{reverse('security:dynamicblacklistentry_list')}?status=awaiting_review"
    assert queue in text
    DynamicBlacklistEntry.objects.filter(pk=portal_objects.blocked.pk).update(status=BlacklistStatus.RELEASED)
    assert page(operator_client)[0].context["awaiting_review"] == 0
