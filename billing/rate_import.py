"""Import a rate deck (CSV) into a rate table: every row is checked first, then all or nothing.

Columns: prefix, area, price_per_minute, first_period, next_period,
connect_fee, valid_from, valid_to. The header row is required; prefix and
price_per_minute are the only required columns, the others may be absent or
empty and then take the model's defaults.

A row whose prefix and valid_from equal an existing rate of the table
replaces it (an upsert: every price column and the area and valid_to are
overwritten); the table's other rates are kept. Carriers mostly send partial
decks (new prices for a few destinations), so replacing the whole table
would silently delete the destinations the file does not mention.
"""

import csv
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from softswitch_portal.core.publisher import schedule_publish

from .models import Rate, RateTable

COLUMNS = (
    "prefix",
    "area",
    "price_per_minute",
    "first_period",
    "next_period",
    "connect_fee",
    "valid_from",
    "valid_to",
)
REQUIRED_COLUMNS = ("prefix", "price_per_minute")
DECIMAL_COLUMNS = ("price_per_minute", "connect_fee")
INTEGER_COLUMNS = ("first_period", "next_period")
DATETIME_COLUMNS = ("valid_from", "valid_to")
UPDATED_FIELDS = [c for c in COLUMNS if c not in ("prefix", "valid_from")]
HEADER_ROW = 1


@dataclass
class RowError:
    """One problem: ``row`` counts the header as row 1, as a spreadsheet numbers the lines."""

    row: int
    column: str
    message: str


@dataclass
class ImportResult:
    errors: list[RowError] = field(default_factory=list)
    created: int = 0
    updated: int = 0

    @property
    def ok(self):
        return not self.errors


class CellError(Exception):
    pass


def parse_decimal(text):
    try:
        value = Decimal(text)
    except InvalidOperation:
        hint = " (use a dot for decimals)" if "," in text else ""
        raise CellError(f"{text!r} is not a number{hint}.") from None
    if not value.is_finite():
        raise CellError(f"{text!r} is not a number.")
    return value


def parse_integer(text):
    try:
        return int(text)
    except ValueError:
        raise CellError(f"{text!r} is not a whole number of seconds.") from None


def parse_when(text):
    """A date (midnight) or a date and time; without an offset it is in the switch's time zone."""
    message = f"{text!r} is not a date: use YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS]."
    try:
        value = parse_datetime(text)
        if value is None:
            day = parse_date(text)
            if day is None:
                raise CellError(message)
            value = dt.datetime(day.year, day.month, day.day)
    except ValueError:
        # Well-formed but impossible, such as 2026-02-30.
        raise CellError(message) from None
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


def parse_cell(column, text):
    if column in DECIMAL_COLUMNS:
        return parse_decimal(text)
    if column in INTEGER_COLUMNS:
        return parse_integer(text)
    if column in DATETIME_COLUMNS:
        return parse_when(text)
    return text


def read_header(reader, result):
    header = next(reader, None)
    if header is None or not any(cell.strip() for cell in header):
        result.errors.append(RowError(HEADER_ROW, "", "The file is empty: the first row must be the header."))
        return None
    columns = [cell.strip().lower() for cell in header]
    for column in columns:
        if column not in COLUMNS:
            result.errors.append(
                RowError(
                    HEADER_ROW,
                    column,
                    f"Unknown column {column!r}: the first row must be the header, with columns from "
                    f"{', '.join(COLUMNS)}.",
                )
            )
        elif columns.count(column) > 1:
            result.errors.append(RowError(HEADER_ROW, column, "This column appears more than once."))
    for column in REQUIRED_COLUMNS:
        if column not in columns:
            result.errors.append(RowError(HEADER_ROW, column, "This required column is missing."))
    return None if result.errors else columns


def read_rate(rate_table, columns, cells, row, result):
    """The row as an unsaved Rate, or None after recording its errors in ``result``."""
    if len(cells) > len(columns):
        result.errors.append(RowError(row, "", f"{len(cells)} cells, but the header has {len(columns)} columns."))
        return None
    values = {}
    failed = []
    for column, raw in zip(columns, cells, strict=False):
        text = raw.strip()
        if text == "":
            if column in REQUIRED_COLUMNS:
                result.errors.append(RowError(row, column, "This value is required."))
                failed.append(column)
            continue
        try:
            values[column] = parse_cell(column, text)
        except CellError as exc:
            result.errors.append(RowError(row, column, str(exc)))
            failed.append(column)
    for column in REQUIRED_COLUMNS:
        if column not in columns[: len(cells)] and column not in failed:
            result.errors.append(RowError(row, column, "This value is required."))
            failed.append(column)
    rate = Rate(rate_table=rate_table, **values)
    try:
        # Uniqueness is not an error here: a row matching an existing rate replaces it.
        rate.full_clean(exclude=failed, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        for column, messages in exc.message_dict.items():
            for message in messages:
                result.errors.append(RowError(row, "" if column == "__all__" else column, message))
        return None
    return None if failed else rate


def import_rates(rate_table: RateTable, stream) -> ImportResult:
    """Validate every row of the CSV text ``stream``; import them all in one transaction, or none.

    Raises ValidationError, for the upload form to show, when the file is not readable as CSV or has more than
    RATE_IMPORT_MAX_ROWS rows.
    """
    try:
        return _import_rates(rate_table, stream)
    except _CSVError as exc:
        raise ValidationError(f"Not readable as CSV (line {exc.line_num}): {exc}") from None


class _CSVError(csv.Error):
    def __init__(self, exc, line_num):
        super().__init__(str(exc))
        self.line_num = line_num


def _rows(reader):
    """The reader's rows, with the line of a row the csv module cannot read."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _CSVError(exc, reader.line_num) from None


def _import_rates(rate_table, stream):
    result = ImportResult()
    reader = _rows(csv.reader(stream))
    columns = read_header(reader, result)
    if columns is None:
        return result

    rates = []
    first_row_of_key = {}
    # Rows are counted as a spreadsheet shows them (header = 1, blank rows included), not
    # as text lines: a quoted cell may span lines.
    max_rows = settings.RATE_IMPORT_MAX_ROWS
    for row, cells in enumerate(reader, start=HEADER_ROW + 1):
        if row - HEADER_ROW > max_rows:
            raise ValidationError(
                f"More than {max_rows} rows (RATE_IMPORT_MAX_ROWS): split the deck into several files."
            )
        if not any(cell.strip() for cell in cells):
            continue
        rate = read_rate(rate_table, columns, cells, row, result)
        if rate is None:
            continue
        key = (rate.prefix, rate.valid_from)
        if key in first_row_of_key:
            result.errors.append(
                RowError(row, "prefix", f"Same prefix and valid_from as row {first_row_of_key[key]}: keep one.")
            )
            continue
        first_row_of_key[key] = row
        rates.append(rate)
    if result.errors:
        return result
    if not rates:
        result.errors.append(RowError(HEADER_ROW + 1, "", "The file has a header but no rates."))
        return result

    with transaction.atomic():
        # One import at a time per table, so the created/updated counts are true.
        RateTable.objects.select_for_update().filter(pk=rate_table.pk).first()
        existing = set(Rate.objects.filter(rate_table=rate_table).values_list("prefix", "valid_from"))
        result.updated = sum(1 for key in first_row_of_key if key in existing)
        result.created = len(rates) - result.updated
        Rate.objects.bulk_create(
            rates,
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["rate_table", "prefix", "valid_from"],
            update_fields=UPDATED_FIELDS,
        )
        # bulk_create sends no post_save, so the snapshot publisher must be told.

        schedule_publish()
    return result
