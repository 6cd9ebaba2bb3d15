"""The CDR pages show the callee as received, as routed and as sent, and filter on each."""

import csv
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import CDR


@pytest.fixture
def calls(db):
    now = timezone.now()
    return {
        uuid: CDR.objects.create(
            call_uuid=uuid,
            start_time=now,
            billing_mode=1,
            callee_number=received,
            callee_number_routed=routed,
            callee_number_out=sent,
        )  # fmt: skip
        for uuid, received, routed, sent in (
            ("stripped", "00447911123456", "447911123456", "0101447911123456"),
            ("plain", "4930111222", "4930111222", "4930111222"),
        )
    }


def listed(client, **params):
    response = client.get(reverse("billing:cdr_list"), params)
    assert response.status_code == 200
    assert not response.context["filters_invalid"], response.context["filterset"].errors
    return response, {row.record.call_uuid for row in response.context["table"].paginated_rows}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"callee_prefix": "0044"}, {"stripped"}),
        ({"callee_routed_prefix": "447"}, {"stripped"}),
        ({"callee_routed_prefix": "0044"}, set()),
        ({"callee_out_prefix": "0101"}, {"stripped"}),
        ({"callee_routed_prefix": "49"}, {"plain"}),
    ],
    ids=lambda value: str(value) if isinstance(value, dict) else "",
)
def test_each_callee_has_its_filter_in_the_list_and_the_export(operator_client, calls, params, expected):
    assert listed(operator_client, **params)[1] == expected
    export = operator_client.get(reverse("billing:cdr_list"), {**params, "export": "csv"})
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert {row["call_uuid"] for row in rows} == expected
    assert all(row["callee_number_routed"] == calls[row["call_uuid"]].callee_number_routed for row in rows)


def test_the_list_and_the_detail_show_the_three_callees(operator_client, calls):
    response, _ = listed(operator_client)
    page = response.content.decode()
    for number in ("00447911123456", "447911123456", "0101447911123456"):
        assert f">{number}<" in page
    detail = operator_client.get(calls["stripped"].get_absolute_url()).content.decode()
    assert "Callee number routed" in detail
    assert ">447911123456<" in detail
