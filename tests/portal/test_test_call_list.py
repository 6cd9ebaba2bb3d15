"""The list of operators' test calls (issue 20): the usual table and filter form, sortable columns, each row
linked to its result page; linked from the navigation and from each routing gateway's page. Seeing results
needs the model's view permission, placing a call the permission to change routing gateways."""

import html

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from tests.switching.testcall_rows import make_call, routing_gateways

pytestmark = pytest.mark.django_db

LIST = "/switching/test-calls/"


def text(response):
    return html.unescape(response.content.decode())


@pytest.fixture
def gateways(db):
    return routing_gateways()


@pytest.fixture
def calls(gateways, operator, django_user_model):
    alice = django_user_model.objects.create_user("alice", password="x-not-used-3e4r")
    finished = dict(status="finished", finished=timezone.now(), answered=True, sip_status=200, sip_reason="OK")
    return {
        "heard": make_call(
            gateways["one"],
            "4930111",
            30,
            **finished,
            pdd_ms=900,
            talk_ms=5000,
            rtp_tx_packets=250,
            rtp_rx_packets=248,
            rtp_rx_loss=2,
            audio_heard=True,
            audio_verdict="tone",
            requested_by=operator,
        ),
        "silent": make_call(
            gateways["one"],
            "4930222",
            20,
            **finished,
            pdd_ms=300,
            audio_heard=False,
            audio_verdict="no audio",
            requested_by=alice,
        ),
        "busy": make_call(
            gateways["two"], "4420333", 10, status="finished", sip_status=486, sip_reason="Busy Here", pdd_ms=1500
        ),
        "failed": make_call(gateways["two"], "4420444", 0, status="failed", error="The agent gave no result"),
    }


def rows(response):
    assert response.status_code == 200
    return [row.record.pk for row in response.context["table"].page.object_list]


def test_the_list_shows_each_call_linked_to_its_result_page(operator_client, calls, gateways):
    response = operator_client.get(LIST)
    assert rows(response) == [calls[name].pk for name in ("failed", "busy", "silent", "heard")]
    page = text(response)
    for call in calls.values():
        assert f'href="{call.get_absolute_url()}"' in page
    assert f'href="{gateways["one"].get_absolute_url()}"' in page
    assert "486 Busy Here" in page and "900 ms" in page
    assert '<span class="badge badge-yes">tone</span>' in page
    assert '<span class="badge badge-danger">no audio</span>' in page
    assert '<span class="badge badge-danger" title="failed">Failed</span>' in page
    assert "248" in page and 'title="lost">−2<' in page  # packets in, and the two lost
    headers = [column.header for column in response.context["table"].columns]
    assert headers == ["When", "Gateway", "Number", "Status", "SIP answer", "PDD", "Talk", "Audio heard", "RTP out",
                       "RTP in", "Placed by"]  # fmt: skip


def test_the_navigation_links_the_list(operator_client, calls):
    assert f'href="{LIST}"' in text(operator_client.get("/"))


def test_a_deleted_gateways_calls_keep_its_name_without_a_link(operator_client, calls, gateways):
    gateway = gateways["two"]
    url = gateway.get_absolute_url()
    gateway.delete()
    page = text(operator_client.get(LIST))
    assert "carrier-two" in page and f'href="{url}"' not in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "failed"}, ["failed"]),
        ({"audio_heard": "false"}, ["silent"]),
        ({"audio_heard": "true"}, ["heard"]),
        ({"number": "4930"}, ["silent", "heard"]),
        ({"sip_status": "486"}, ["busy"]),
        ({"q": "carrier-two"}, ["failed", "busy"]),
        ({"answered": "true"}, ["silent", "heard"]),
    ],
    ids=str,
)
def test_the_filters_narrow_the_list(operator_client, calls, query, expected):
    assert rows(operator_client.get(LIST, query)) == [calls[name].pk for name in expected]


def test_the_gateway_and_requester_filters(operator_client, calls, gateways, operator):
    assert rows(operator_client.get(LIST, {"gateway": gateways["two"].pk})) == [calls["failed"].pk, calls["busy"].pk]
    assert rows(operator_client.get(LIST, {"requested_by": operator.pk})) == [calls["heard"].pk]


def test_a_bad_filter_shows_no_rows_and_says_so(operator_client, calls):
    response = operator_client.get(LIST, {"status": "ringing"})
    assert rows(response) == [] and "Some filters are not valid" in text(response)


@pytest.mark.parametrize(
    ("sort", "field", "expected"),
    [
        ("pdd_ms", "pdd_ms", [300, 900, 1500, None]),  # PostgreSQL: NULLs last ascending, first descending
        ("-pdd_ms", "pdd_ms", [None, 1500, 900, 300]),
        ("created", "number", ["4930111", "4930222", "4420333", "4420444"]),
        ("number", "number", ["4420333", "4420444", "4930111", "4930222"]),
        ("gateway", "gateway_name", ["carrier-one", "carrier-one", "carrier-two", "carrier-two"]),
        ("-gateway", "gateway_name", ["carrier-two", "carrier-two", "carrier-one", "carrier-one"]),
        ("status", "status", ["failed", "finished", "finished", "finished"]),
        ("audio_heard", "audio_heard", [False, True, None, None]),
        ("-audio_heard", "audio_heard", [None, None, True, False]),
        ("requested_by", "requested_by", ["alice", "operator", None, None]),
    ],
)
def test_the_columns_sort(operator_client, calls, sort, field, expected):
    response = operator_client.get(LIST, {"sort": sort})
    assert response.status_code == 200
    shown = [getattr(row.record, field) for row in response.context["table"].page.object_list]
    assert [value.username if hasattr(value, "username") else value for value in shown] == expected


def test_every_sortable_column_sorts_both_ways(operator_client, calls):
    table = operator_client.get(LIST).context["table"]
    sortable = {column.name for column in table.columns if column.orderable}
    assert {"created", "gateway", "number", "status", "pdd_ms", "audio_heard", "requested_by"} <= sortable
    for name in sortable:
        for sort in (name, f"-{name}"):
            assert rows(operator_client.get(LIST, {"sort": sort})), sort


def test_the_export_leaves_the_audio_out(operator_client, calls):
    export = operator_client.get(LIST, {"export": "csv"})
    header = b"".join(export.streaming_content).decode().splitlines()[0]
    assert "number" in header.lower() and "recording" not in header.lower() and "waveform" not in header.lower()


def test_a_routing_gateways_page_shows_its_recent_test_calls(operator_client, calls, gateways):
    page = text(operator_client.get(gateways["one"].get_absolute_url()))
    assert "Recent test calls" in page
    assert f'href="{calls["heard"].get_absolute_url()}"' in page
    assert f'href="{calls["busy"].get_absolute_url()}"' not in page  # the other gateway's
    assert f'href="{LIST}?gateway={gateways["one"].pk}"' in page


def member(django_user_model, username, *roles):
    user = django_user_model.objects.create_user(username, password="x-not-used-7q2w")
    user.groups.add(*Group.objects.filter(name__in=roles))
    return user


def test_a_noc_user_sees_the_calls_and_their_results_but_places_none(client, django_user_model, calls, gateways):
    client.force_login(member(django_user_model, "noc", "NOC"))
    assert rows(client.get(LIST))
    result = client.get(calls["heard"].get_absolute_url())
    assert result.status_code == 200 and "Call again" not in text(result)
    assert client.get(reverse("switching:testcall_start", args=[gateways["one"].pk])).status_code == 403
    assert "Recent test calls" in text(client.get(gateways["one"].get_absolute_url()))


def test_a_result_page_leads_back_to_the_list_and_a_switching_engineer_may_call_again(
    client, django_user_model, calls, gateways
):
    client.force_login(member(django_user_model, "engineer", "Switching engineer"))
    page = text(client.get(calls["heard"].get_absolute_url()))
    assert "Call again" in page
    assert f'href="{LIST}"' in page and f'href="{gateways["one"].get_absolute_url()}"' in page


def test_a_user_without_the_view_permission_sees_neither_list_nor_result(client, django_user_model, calls, gateways):
    client.force_login(member(django_user_model, "nobody"))
    assert client.get(LIST).status_code == 403
    assert client.get(calls["heard"].get_absolute_url()).status_code == 403
