"""Keyset pagination: the next page starts after the last row's (sort value, id), not at an offset.

OFFSET n makes PostgreSQL read and throw away n rows, so page 20,000 of a
10-million-row CDR table reads a million rows; a keyset page reads an index
range from the key, however deep it is. The price: no page numbers, only
first / previous / next. The id breaks ties, so rows sharing a start time
are neither skipped nor repeated.

A key travels in the URL as ``?after=<key>`` (the page after that row, in the
list's order) or ``?before=<key>`` (the page before it).
"""

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q

KEY_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def encode_key(value, pk):
    return f"{value.astimezone(dt.UTC).strftime(KEY_FORMAT)}_{pk}"


def decode_key(text):
    """(aware datetime, id), or None for anything malformed: a bad key shows the first page, not an error."""
    try:
        stamp, pk = (text or "").rsplit("_", 1)
        return dt.datetime.strptime(stamp, KEY_FORMAT).replace(tzinfo=dt.UTC), int(pk)
    except ValueError:
        return None


@dataclass
class KeysetPage:
    rows: list
    has_previous: bool
    has_next: bool
    previous_key: str | None
    next_key: str | None
    is_first: bool
    per_page: int

    def __len__(self):
        return len(self.rows)


def keyset_page(queryset, field, *, descending, per_page, after=None, before=None):
    """One page of ``queryset`` ordered by (``field``, id), descending or ascending.

    ``after``/``before`` are keys from a previous page's links; with neither,
    the first page. Fetches ``per_page + 1`` rows to know whether another page follows.
    """
    after_key, before_key = decode_key(after), decode_key(before)
    forward = before_key is None
    key = after_key if forward else before_key
    # Walking backwards is the same walk with the order flipped, then reversed for display.
    reverse_scan = descending == forward
    if key is not None:
        value, pk = key
        if reverse_scan:
            # The redundant ``field <= value`` gives the planner an index range (and partition bound).
            queryset = queryset.filter(**{f"{field}__lte": value}).filter(Q(**{f"{field}__lt": value}) | Q(pk__lt=pk))
        else:
            queryset = queryset.filter(**{f"{field}__gte": value}).filter(Q(**{f"{field}__gt": value}) | Q(pk__gt=pk))
    order = (f"-{field}", "-pk") if reverse_scan else (field, "pk")
    rows = list(queryset.order_by(*order)[: per_page + 1])
    more = len(rows) > per_page
    rows = rows[:per_page]
    if not forward:
        rows.reverse()
    if forward:
        has_previous, has_next = key is not None, more
    else:
        has_previous, has_next = more, True
    if not rows:
        # Past either end (a stale link): offer the way back to the first page only.
        return KeysetPage([], key is not None, False, None, None, key is None, per_page)
    return KeysetPage(
        rows=rows,
        has_previous=has_previous,
        has_next=has_next,
        previous_key=encode_key(getattr(rows[0], field), rows[0].pk) if has_previous else None,
        next_key=encode_key(getattr(rows[-1], field), rows[-1].pk) if has_next else None,
        is_first=key is None,
        per_page=per_page,
    )
