"""Renders a model's fields for the detail pages, each by its kind: links, lists, JSON tables."""

import datetime as dt
import json
from decimal import Decimal

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from .utils import object_url

EMPTY = mark_safe('<span class="muted">—</span>')
LEADING_JSON_KEYS = ("gateway", "name", "number")
SECRET = mark_safe('<span class="muted">•••••••• (hidden)</span>')


def model_fields(model):
    """The fields a page shows or a test checks: concrete ones and forward many-to-many."""
    return [*model._meta.concrete_fields, *model._meta.many_to_many]


def render_datetime(value):
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return format_html('<span class="mono">{}</span>', value.strftime("%Y-%m-%d %H:%M:%S"))


def render_json(value):
    """A list of flat objects (vendors tried) as a small table; anything else pretty-printed."""
    if value in (None, "", [], {}):
        return EMPTY
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        keys = []
        for item in value:
            keys.extend(key for key in item if key not in keys)
        # jsonb keeps keys in its own order (shortest first); put the naming key first.
        keys.sort(key=lambda key: key not in LEADING_JSON_KEYS)
        head = format_html_join("", "<th>{}</th>", ((key,) for key in ["#", *keys]))
        rows = format_html_join(
            "",
            "<tr>{}</tr>",
            (
                (
                    format_html_join(
                        "",
                        "<td>{}</td>",
                        ((cell,) for cell in [index, *(_json_cell(item.get(key)) for key in keys)]),
                    ),
                )
                for index, item in enumerate(value, start=1)
            ),
        )
        return format_html(
            '<table class="table table-inner"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', head, rows
        )
    if isinstance(value, list) and all(not isinstance(item, dict | list) for item in value):
        return format_html_join(" ", '<span class="chip mono">{}</span>', ((item,) for item in value))
    if isinstance(value, dict) and all(not isinstance(v, dict | list) for v in value.values()):
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", ((k, _json_cell(v)) for k, v in value.items()))
        return format_html('<table class="table table-inner"><tbody>{}</tbody></table>', rows)
    return format_html('<pre class="json">{}</pre>', json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _json_cell(value):
    if value is None:
        return "—"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


def render_foreign_key(obj, field):
    pk = getattr(obj, field.attname)
    if pk is None:
        return EMPTY
    if not field.db_constraint:
        # No database constraint: the row may be gone. Show the name copied in at the time
        # (CDRs keep account_name etc.), never load the row here; a select_related done by
        # the view tells whether it still exists (a dangling id joins to None).
        stored = getattr(obj, f"{field.name}_name", "")
        if field.is_cached(obj):
            related = field.get_cached_value(obj)
            if related is None:
                return format_html('{} <span class="badge badge-muted">deleted (#{})</span>', stored or "", pk)
            stored = stored or str(related)
        url = object_url(field.related_model, "detail", pk)
        name = stored or f"#{pk}"
        return format_html('<a href="{}">{}</a>', url, name) if url else name
    related = getattr(obj, field.name)
    url = object_url(field.related_model, "detail", related.pk)
    return format_html('<a href="{}">{}</a>', url, related) if url else str(related)


def render_many_to_many(obj, field):
    items = list(getattr(obj, field.name).all())
    if not items:
        return EMPTY
    links = []
    for item in items:
        url = object_url(type(item), "detail", item.pk)
        links.append(format_html('<a href="{}">{}</a>', url, item) if url else str(item))
    return format_html_join(", ", "{}", ((link,) for link in links))


def render_value(obj, name, secret=False):
    """One attribute of ``obj`` as safe HTML. ``name`` is a model field or a plain attribute."""
    try:
        field = obj._meta.get_field(name)
    except FieldDoesNotExist:
        field = None
    if secret:
        return SECRET if getattr(obj, name) else EMPTY
    if field is None:
        value = getattr(obj, name)
        return render_plain(value() if callable(value) else value)
    if field.many_to_many:
        return render_many_to_many(obj, field)
    if field.is_relation:
        return render_foreign_key(obj, field)
    value = getattr(obj, field.attname)
    if value is None or value == "":
        return EMPTY
    if field.choices:
        label = getattr(obj, f"get_{field.name}_display")()
        if str(label) == str(value):
            return str(label)
        return format_html('{} <span class="muted mono">({})</span>', label, value)
    if isinstance(field, ArrayField):
        if not value:
            return EMPTY
        labels = dict(field.base_field.choices or ())
        return format_html_join(" ", '<span class="chip mono">{}</span>', ((labels.get(item, item),) for item in value))
    if isinstance(field, models.JSONField):
        return render_json(value)
    if isinstance(field, models.TextField):
        return format_html('<div class="text">{}</div>', value)
    return render_plain(value)


def render_plain(value):
    if value is None or value == "":
        return EMPTY
    if isinstance(value, bool):
        css, label = ("badge-yes", "Yes") if value else ("badge-no", "No")
        return format_html('<span class="badge {}">{}</span>', css, label)
    if isinstance(value, dt.datetime):
        return render_datetime(value)
    if isinstance(value, Decimal | int | float):
        return format_html('<span class="mono">{}</span>', value)
    if isinstance(value, list | tuple):
        return format_html_join(", ", "{}", ((item,) for item in value)) if value else EMPTY
    return str(value)


# Words Django's generated labels get wrong ("Caller ip", "Pdd ms").
LABEL_WORDS = {
    "ip": "IP",
    "ips": "IPs",
    "sip": "SIP",
    "pdd": "PDD",
    "uuid": "UUID",
    "id": "ID",
    "cps": "CPS",
    "ms": "(ms)",
    "cidr": "CIDR",
}


def nice_label(label):
    words = [LABEL_WORDS.get(word.lower(), word) for word in str(label).split(" ")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def field_label(model, name):
    try:
        label = model._meta.get_field(name).verbose_name
    except FieldDoesNotExist:
        label = name.replace("_", " ")
    return nice_label(label)


def is_wide(model, name):
    """Values shown across the whole panel rather than beside their label (JSON tables)."""
    try:
        return isinstance(model._meta.get_field(name), models.JSONField)
    except FieldDoesNotExist:
        return False


def field_help(model, name):
    try:
        return str(model._meta.get_field(name).help_text)
    except (FieldDoesNotExist, AttributeError):
        return ""
