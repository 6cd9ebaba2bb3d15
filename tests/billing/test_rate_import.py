"""Rate deck import: every row is checked first, every problem reported by row and column, all or nothing."""

import io
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Rate, RateTable
from billing.rate_import import import_rates


@pytest.fixture
def deck(db):
    return RateTable.objects.create(name="Import target")


def run(table, text):
    return import_rates(table, io.StringIO(text, newline=""))


def problems(result):
    return {(error.row, error.column) for error in result.errors}


def test_a_good_file_imports_every_row(deck):
    result = run(
        deck,
        "prefix,area,price_per_minute,first_period,next_period,connect_fee,valid_from,valid_to\n"
        "4930,Germany Berlin,0.0125,60,60,0,2026-01-01,\n"
        "4989,Germany Munich,0.02,30,6,0.01,,2027-01-01 12:00\n",
    )
    assert result.ok and (result.created, result.updated) == (2, 0)
    berlin = Rate.objects.get(rate_table=deck, prefix="4930")
    assert (berlin.area, berlin.price_per_minute, berlin.first_period) == ("Germany Berlin", Decimal("0.0125"), 60)
    assert timezone.localtime(berlin.valid_from).date().isoformat() == "2026-01-01" and berlin.valid_to is None
    munich = Rate.objects.get(rate_table=deck, prefix="4989")
    assert (munich.first_period, munich.next_period, munich.connect_fee) == (30, 6, Decimal("0.01"))
    assert munich.valid_from is None and munich.valid_to.year == 2027


def test_optional_columns_may_be_left_out(deck):
    result = run(deck, "Prefix , Price_per_minute\n44,0.05\n\n33,0.04\n")
    assert result.ok and result.created == 2
    uk = Rate.objects.get(rate_table=deck, prefix="44")
    assert (uk.first_period, uk.next_period, uk.connect_fee, uk.area) == (60, 60, Decimal("0"), "")


def test_a_row_with_the_prefix_and_start_of_an_existing_rate_replaces_it(deck):
    Rate.objects.create(rate_table=deck, prefix="4930", price_per_minute=Decimal("0.01"), area="old")
    Rate.objects.create(rate_table=deck, prefix="44", price_per_minute=Decimal("0.05"))
    result = run(deck, "prefix,area,price_per_minute\n4930,Berlin,0.02\n4940,Hamburg,0.03\n")
    assert result.ok and (result.created, result.updated) == (1, 1)
    assert Rate.objects.get(rate_table=deck, prefix="4930").price_per_minute == Decimal("0.02")
    assert Rate.objects.get(rate_table=deck, prefix="4930").area == "Berlin"
    assert set(Rate.objects.filter(rate_table=deck).values_list("prefix", flat=True)) == {"4930", "4940", "44"}


def test_the_same_prefix_from_another_date_is_a_new_rate(deck):
    Rate.objects.create(rate_table=deck, prefix="4930", price_per_minute=Decimal("0.01"))
    result = run(deck, "prefix,price_per_minute,valid_from\n4930,0.02,2026-06-01\n")
    assert result.ok and (result.created, result.updated) == (1, 0)
    assert Rate.objects.filter(rate_table=deck, prefix="4930").count() == 2


def test_bad_rows_are_each_reported_and_nothing_is_imported(deck):
    Rate.objects.create(rate_table=deck, prefix="1", price_per_minute=Decimal("0.01"))
    result = run(
        deck,
        "prefix,area,price_per_minute,first_period,next_period,valid_from\n"
        "4930,Berlin,0.01,60,60,\n"
        "49AB,Letters,0.01,60,60,\n"
        "4989,Munich,-0.02,60,60,\n"
        "4940,Hamburg,0.01,0,60,\n"
        "4969,Frankfurt,0.01,60,60,2026-13-01\n"
        "4921,Bonn,cheap,60,x,\n",
    )
    assert not result.ok and (result.created, result.updated) == (0, 0)
    assert problems(result) == {
        (3, "prefix"),
        (4, "price_per_minute"),
        (5, "first_period"),
        (6, "valid_from"),
        (7, "price_per_minute"),
        (7, "next_period"),
    }
    messages = {(e.row, e.column): e.message for e in result.errors}
    assert "'49AB' is not a prefix" in messages[(3, "prefix")]
    assert "greater than or equal to 0" in messages[(4, "price_per_minute")]
    assert "greater than or equal to 1" in messages[(5, "first_period")]
    assert "'2026-13-01' is not a date" in messages[(6, "valid_from")]
    assert "'cheap' is not a number" in messages[(7, "price_per_minute")]
    assert list(Rate.objects.filter(rate_table=deck).values_list("prefix", flat=True)) == ["1"]


def test_a_missing_header_is_reported_on_row_one(deck):
    result = run(deck, "4930,0.01\n")
    assert not result.ok
    assert (1, "4930") in problems(result)
    assert "the first row must be the header" in result.errors[0].message
    assert not Rate.objects.exists()


def test_a_header_without_a_required_column_is_refused(deck):
    result = run(deck, "prefix,area\n4930,Berlin\n")
    assert problems(result) == {(1, "price_per_minute")}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("prefix,price_per_minute\n4930,0.01\n4930,0.02\n", {(3, "prefix")}),
        ("prefix,price_per_minute\n4930,\n", {(2, "price_per_minute")}),
        ("prefix,price_per_minute\n,0.01\n", {(2, "prefix")}),
        ('prefix,price_per_minute\n4930,"0,05"\n', {(2, "price_per_minute")}),
        ("prefix,price_per_minute\n4930,0.01,extra\n", {(2, "")}),
        ("prefix,price_per_minute\n4930,0.00001\n", {(2, "price_per_minute")}),
        ("prefix,price_per_minute,valid_from,valid_to\n4930,0.01,2026-02-01,2026-01-01\n", {(2, "valid_to")}),
        ("prefix,price_per_minute,valid_from\n4930,0.01,2026-02-30\n", {(2, "valid_from")}),
        ("prefix,price_per_minute,price_per_minute\n4930,0.01,0.02\n", {(1, "price_per_minute")}),
        ("", {(1, "")}),
        ("prefix,price_per_minute\n", {(2, "")}),
    ],
    ids=[
        "duplicate row",
        "missing price",
        "missing prefix",
        "decimal comma",
        "too many cells",
        "too many decimals",
        "valid_to before valid_from",
        "impossible date",
        "repeated column",
        "empty file",
        "header only",
    ],
)
def test_each_kind_of_bad_file_is_reported_where_it_is(deck, text, expected):
    result = run(deck, text)
    assert problems(result) == expected, result.errors
    assert not Rate.objects.exists()


def test_a_decimal_comma_gets_a_hint(deck):
    result = run(deck, 'prefix,price_per_minute\n4930,"0,05"\n')
    assert "use a dot for decimals" in result.errors[0].message
