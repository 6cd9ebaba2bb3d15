"""CSV export of a filtered list, streamed so a month of CDRs never sits in memory."""

import csv
import datetime as dt
import json
import re

from django.db import models
from django.http import StreamingHttpResponse
from django.utils import timezone

# Spreadsheets run a cell that starts with one of these as a formula. Caller numbers and
# User-Agents come from strangers' SIP packets, so neutralise them; a plain signed number
# (+4930..., -2, -1.25) is data and stays as it is.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SIGNED_NUMBER = re.compile(r"^[+-][0-9.]*$")


class _Echo:
    """A file-like sink: csv.writer hands back each line instead of buffering it."""

    def write(self, value):
        return value


def csv_safe(text):
    if text.startswith(FORMULA_START) and not SIGNED_NUMBER.match(text):
        return "'" + text
    return text


def format_cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, dt.datetime):
        return (timezone.localtime(value) if timezone.is_aware(value) else value).isoformat()
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, list | tuple):
        if all(not isinstance(item, dict | list) for item in value):
            return ", ".join(str(item) for item in value)
        return json.dumps(value, ensure_ascii=False, default=str)
    return csv_safe(str(value))


class ModelColumns:
    """Every concrete field of a model as a CSV column.

    Related objects are written by name (loaded with select_related /
    prefetch_related, so one query per chunk); a relation without a database
    constraint (CDRs) is written by id, as it may point at a deleted row.
    """

    def __init__(self, model, exclude=()):
        self.columns = []
        self.select_related = []
        self.prefetch_related = []
        for field in model._meta.concrete_fields:
            if field.name in exclude:
                continue
            if field.is_relation and field.db_constraint:
                self.select_related.append(field.name)
                self.columns.append((field.name, self._related(field.name)))
            elif field.is_relation:
                self.columns.append((field.attname, self._attribute(field.attname)))
            else:
                self.columns.append((field.name, self._attribute(field.attname)))
        for field in model._meta.many_to_many:
            if field.name in exclude:
                continue
            self.prefetch_related.append(field.name)
            self.columns.append((field.name, self._many(field.name)))
        self.json_fields = {f.name for f in model._meta.concrete_fields if isinstance(f, models.JSONField)}

    @staticmethod
    def _attribute(name):
        return lambda obj: getattr(obj, name)

    @staticmethod
    def _related(name):
        def get(obj):
            related = getattr(obj, name)
            return str(related) if related is not None else None

        return get

    @staticmethod
    def _many(name):
        return lambda obj: "; ".join(str(item) for item in getattr(obj, name).all())

    @property
    def header(self):
        return [name for name, _ in self.columns]

    def prepare(self, queryset):
        if self.select_related:
            queryset = queryset.select_related(*self.select_related)
        if self.prefetch_related:
            queryset = queryset.prefetch_related(*self.prefetch_related)
        return queryset

    def row(self, obj):
        cells = []
        for name, get in self.columns:
            value = get(obj)
            if name in self.json_fields:
                cells.append(json.dumps(value, ensure_ascii=False, default=str) if value not in (None, "") else "")
            else:
                cells.append(format_cell(value))
        return cells


def stream_csv(filename, header, rows):
    """A streamed CSV download: ``rows`` is any iterable of lists of already formatted cells.

    Every text cell is made formula-safe here too, whoever formatted it: one writer, one place to get it right.
    """
    writer = csv.writer(_Echo())

    def safe(row):
        return [csv_safe(cell) if isinstance(cell, str) else cell for cell in row]

    def lines():
        yield writer.writerow(safe(header))
        for row in rows:
            yield writer.writerow(safe(row))

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
