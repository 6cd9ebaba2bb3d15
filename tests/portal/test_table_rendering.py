"""The list tables' rows, built in Python for speed, carry the same markup django-tables2's loop gave."""

import datetime as dt

import django_tables2 as tables
import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import timezone

from billing.models import CDR
from billing.tables import CDRTable
from softswitch_portal.generic.tables import DateTimeColumn


def rendered(table):
    request = RequestFactory().get("/")
    table.paginate(page=1, per_page=50)
    return table.as_html(request)


class Plain(tables.Table):
    name = tables.Column(attrs={"td": {"class": "mono", "data-x": "1"}})
    size = tables.Column(attrs={"td": {"class": lambda record: "big" if record["size"] > 5 else "small"}})

    class Meta:
        template_name = "generic/table.html"
        row_attrs = {"data-name": lambda record: record["name"]}


def test_cells_keep_their_column_attributes_and_row_dependent_ones_per_row():
    html = rendered(Plain([{"name": "a<b", "size": 9}, {"name": "c", "size": 1}]))
    assert (
        '<tr data-name="a&lt;b" class="even"><td class="mono" data-x="1">a&lt;b</td><td class="big">9</td></tr>' in html
    )
    assert '<tr data-name="c" class="odd"><td class="mono" data-x="1">c</td><td class="small">1</td></tr>' in html


@pytest.mark.django_db
def test_the_start_time_is_the_local_time_the_date_filter_would_show(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    start = dt.datetime(2026, 7, 1, 22, 30, 5, tzinfo=dt.UTC)
    cdr = CDR.objects.create(call_uuid="tz-1", start_time=start, billing_mode=1, hold_time_ms=1500)
    with timezone.override("Europe/Berlin"):
        html = rendered(CDRTable([cdr]))
        expected = Template('{{ value|date:"Y-m-d H:i:s" }}').render(Context({"value": start}))
    assert expected == "2026-07-02 00:30:05"
    assert f'<td class="nowrap"><a href="/billing/cdrs/{cdr.pk}/">{expected}</a></td>' in html
    assert '<td class="num">1.5</td>' in html


def test_a_date_column_without_a_format_uses_the_short_format_as_the_library_does():
    value = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)
    library = tables.DateTimeColumn()
    expected = Template(library.template_code).render(Context({"value": value, "default": ""}))
    assert DateTimeColumn().render(value) == expected.strip() != ""
