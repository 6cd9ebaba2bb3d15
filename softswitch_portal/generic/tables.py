"""The base table and the column types the list pages share."""

import django_tables2 as tables
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from django.utils.timezone import template_localtime
from django_tables2.paginators import LazyPaginator

from .utils import object_url, user_can

YES = mark_safe('<span class="badge badge-yes">Yes</span>')
NO = mark_safe('<span class="badge badge-no">No</span>')


class BooleanColumn(tables.Column):
    """Yes/No as a coloured badge; a bare check mark is hard to scan in a dense table."""

    def render(self, value):
        return YES if value else NO

    def value(self, value):
        return "1" if value else "0"


class DateTimeColumn(tables.DateTimeColumn):
    """django-tables2's DateTimeColumn, formatted in Python: the same text (local time, the
    ``date`` filter's format) without rendering a template for every cell of a long list."""

    def __init__(self, format=None, short=True, *args, **kwargs):
        self.format = format or ("SHORT_DATETIME_FORMAT" if short else "DATETIME_FORMAT")
        super().__init__(format, short, *args, **kwargs)

    def render(self, value):
        return date_format(template_localtime(value), self.format)


class ArrayColumn(tables.Column):
    """A list field, its first entries joined; the full list is on the detail page."""

    def __init__(self, *args, limit=4, **kwargs):
        self.limit = limit
        kwargs.setdefault("orderable", False)
        super().__init__(*args, **kwargs)

    def render(self, value):
        shown = ", ".join(str(item) for item in value[: self.limit])
        if len(value) > self.limit:
            return format_html('{} <span class="muted">+{} more</span>', shown, len(value) - self.limit)
        return shown

    def value(self, value):
        return ", ".join(str(item) for item in value or ())


class ManyToManyColumn(tables.ManyToManyColumn):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("orderable", False)
        kwargs.setdefault("linkify_item", True)
        super().__init__(*args, **kwargs)


class ChoiceColumn(tables.Column):
    """A choice shown by its label, with the stored code in a tooltip for operators who think in codes."""

    def __init__(self, *args, badges=None, **kwargs):
        self.badges = badges or {}
        super().__init__(*args, **kwargs)

    def render(self, value, record, bound_column):
        # django-tables2 hands over the choice's label; the badge and tooltip need the stored code.
        raw = bound_column.accessor.resolve(record)
        css = self.badges.get(raw)
        if css:
            return format_html('<span class="badge badge-{}" title="{}">{}</span>', css, raw, value)
        return format_html('<span title="{}">{}</span>', raw, value)


class TextColumn(tables.Column):
    """Free text (descriptions, reasons): may wrap, cut short; the detail page has it whole."""

    def __init__(self, *args, length=120, **kwargs):
        self.length = length
        kwargs.setdefault("attrs", {"td": {"class": "wrap"}})
        super().__init__(*args, **kwargs)

    def render(self, value):
        return Truncator(value).chars(self.length)

    def value(self, value):
        return value


class MoneyColumn(tables.Column):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("attrs", {"td": {"class": "num"}, "th": {"class": "num"}})
        super().__init__(*args, **kwargs)

    def render(self, value):
        if value < 0:
            return format_html('<span class="negative">{}</span>', value)
        return value

    def value(self, value):
        return value


class NumberColumn(tables.Column):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("attrs", {"td": {"class": "num"}, "th": {"class": "num"}})
        super().__init__(*args, **kwargs)


class ActionsColumn(tables.Column):
    """Edit and delete links for each row, shown only where the page exists and the user may use it."""

    def __init__(self, *args, **kwargs):
        kwargs.update(
            empty_values=(),
            orderable=False,
            verbose_name="",
            exclude_from_export=True,
            attrs={"td": {"class": "actions"}},
        )
        super().__init__(*args, **kwargs)

    def render(self, record, table):
        user = getattr(getattr(table, "request", None), "user", None)
        links = []
        for action, label, css in (("edit", "Edit", "btn-xs"), ("delete", "Delete", "btn-xs btn-danger-outline")):
            url = object_url(type(record), action, record.pk)
            if url and user is not None and user_can(user, type(record), action):
                links.append((url, css, label))
        return format_html_join(" ", '<a href="{}" class="btn {}">{}</a>', links)


class PageInfoMixin:
    """What the pager shows; a LazyPaginator knows no total, so none is asked for.

    A view that pages by keyset (generic.keyset) sets ``table.keyset`` instead
    of paginating: the pager then offers first / previous / next only.
    """

    per_page_choices = (25, 50, 100, 250, 500, 1000)
    keyset = None

    @property
    def page_info(self):
        if self.keyset is not None:
            shown = len(self.keyset.rows)
            return {
                "keyset": self.keyset,
                "shown": shown,
                "per_page": self.keyset.per_page,
                "lazy": True,
                "total": None,
                "multiple_pages": self.keyset.has_previous or self.keyset.has_next,
            }
        page = getattr(self, "page", None)
        if page is None:
            return None
        shown = len(page.object_list)
        start = (page.number - 1) * self.paginator.per_page + 1 if shown else 0
        lazy = isinstance(self.paginator, LazyPaginator)
        return {
            "start": start,
            "end": start + shown - 1 if shown else 0,
            "total": None if lazy else self.paginator.count,
            "lazy": lazy,
            "multiple_pages": page.has_previous() or page.has_next(),
            "per_page": self.paginator.per_page,
        }


class BaseTable(PageInfoMixin, tables.Table):
    """Dense, sortable; every list page's table derives from this."""

    actions = ActionsColumn()

    class Meta:
        attrs = {"class": "table table-hover"}
        empty_text = "Nothing found."
        template_name = "generic/table.html"
        sequence = ("...", "actions")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.empty_text == "Nothing found." and self._meta.model is not None:
            self.empty_text = f"No {self._meta.model._meta.verbose_name_plural} found."
