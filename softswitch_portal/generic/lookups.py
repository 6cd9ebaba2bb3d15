"""Choosing one row among thousands (accounts, gateways, phones) by typing instead of from a list.

A ``<select>`` of every account is unusable at a few thousand rows and costs
the page its rendering time (850 ``<option>``s took ~200 ms of the CDR list).
Instead an app registers a *lookup kind* in its ``lookups`` module (found
like ``admin.py``, on first use): the rows it offers and how to search them.
Then:

- ``GET /api/lookup/<kind>/?q=acm`` (softswitch_portal.api.views.LookupView)
  answers the best ``LIMIT`` matches as JSON, for ``static/js/lookup.js`` and
  scripts alike;
- ``LookupField`` (a form field) and ``LookupFilter`` (a filterset filter)
  still take the row's id (``?account=42``, so bookmarks and drill-down links
  keep working), validate it against the same rows the endpoint offers, and
  render a text box holding the chosen row's name: one query, never a list.

``BaseFilterSet`` turns every foreign-key filter onto a model with a default
kind into a ``LookupFilter`` by itself.
"""

from dataclasses import dataclass, field

from django import forms
from django.db.models import Case, Q, Value, When
from django.forms.utils import flatatt
from django.urls import reverse
from django.utils.html import format_html
from django.utils.module_loading import autodiscover_modules
from django_filters import ModelChoiceFilter
from django_filters.fields import ModelChoiceField

# Matches the endpoint answers at most: enough to pick from, small enough to stay instant.
LIMIT = 20
# Longer than any name or IP an operator types; a longer ``q`` is a mistake or a probe.
MAX_QUERY = 100
# A bigint primary key has at most 19 digits; more would overflow in PostgreSQL, not just miss.
MAX_ID_DIGITS = 18


@dataclass(frozen=True)
class Lookup:
    """The rows one kind offers and how to find them.

    ``queryset``: every row a form may accept (a callable, evaluated per use).
    ``search_fields``: ORM lookups OR-ed with the typed text; the first one's
    field also ranks rows that start with the text first. A text of digits
    also matches the id. ``hint``: a row's secondary text in the menu (its
    account, its IP). ``default``: the kind for every foreign key to the model.
    """

    kind: str
    queryset: object
    search_fields: tuple
    order_by: tuple = ("name",)
    hint: object = None
    default: bool = False
    model: object = field(init=False, default=None)

    def __post_init__(self):
        object.__setattr__(self, "model", self.get_queryset().model)

    def get_queryset(self):
        return self.queryset()

    @property
    def url(self):
        return reverse("api:lookup", args=[self.kind])

    def label(self, obj):
        return str(obj)

    def search(self, text):
        """The rows matching ``text``, best first: the id, then names starting with it, then the rest."""
        queryset = self.get_queryset()
        if not text:
            return queryset.order_by(*self.order_by)
        matches = Q()
        for lookup in self.search_fields:
            matches |= Q(**{lookup: text})
        ranks = [When(**{f"{self.search_fields[0].split('__')[0]}__istartswith": text}, then=Value(1))]
        if text.isascii() and text.isdigit() and len(text) <= MAX_ID_DIGITS:
            matches |= Q(pk=int(text))
            ranks.insert(0, When(pk=int(text), then=Value(0)))
        rank = Case(*ranks, default=Value(2))
        return queryset.filter(matches).annotate(lookup_rank=rank).order_by("lookup_rank", *self.order_by)

    def as_json(self, obj):
        return {"id": obj.pk, "text": self.label(obj), "hint": self.hint(obj) if self.hint else ""}


_REGISTRY = {}
_discovered = False


def register(kind, queryset, search_fields, **options):
    """Declare a lookup kind, from an app's ``lookups`` module."""
    _REGISTRY[kind] = Lookup(kind, queryset, tuple(search_fields), **options)
    return _REGISTRY[kind]


def registry():
    """Every kind, the apps' ``lookups`` modules imported first: forms and filtersets that name a
    kind may be imported before the apps' ready() (the admin imports forms while it discovers)."""
    global _discovered
    if not _discovered:
        autodiscover_modules("lookups")
        _discovered = True
    return _REGISTRY


def get_lookup(kind):
    try:
        return registry()[kind]
    except KeyError:
        raise LookupError(f"no lookup kind {kind!r}: register it in the app's lookups module") from None


def default_kind(model):
    """The kind registered as the default for ``model``, or None (then a plain select is fine)."""
    for lookup in registry().values():
        if lookup.default and lookup.model is model:
            return lookup.kind
    return None


class LookupWidget(forms.Widget):
    """A hidden input with the id, and a text box showing the chosen row's name; lookup.js adds the menu.

    Rendered with format_html rather than a template: it is on every list page's filter form.
    """

    # Not "hidden", so the form lays it out as a visible field.
    input_type = "text"

    class Media:
        js = (forms.Script("js/lookup.js", defer=True),)

    def __init__(self, attrs=None):
        super().__init__(attrs)
        self.lookup = None
        self.placeholder = ""
        # The row the field validated, so rendering does not ask the database for it again.
        self.chosen = None

    def label_for(self, value):
        if value in (None, ""):
            return ""
        if self.chosen is not None and str(self.chosen.pk) == str(value):
            return self.lookup.label(self.chosen)
        text = str(value)
        if not (text.isascii() and text.isdigit() and len(text) <= MAX_ID_DIGITS):
            return text
        obj = self.lookup.get_queryset().filter(pk=int(text)).first()
        # An id the form rejects stays visible as typed, beside its error.
        return self.lookup.label(obj) if obj is not None else f"#{text}"

    def render(self, name, value, attrs=None, renderer=None):
        attrs = self.build_attrs(self.attrs, attrs)
        # The label's "for" and the error's aria attributes belong to the box the operator types in.
        input_id = attrs.pop("id", None) or f"id_{name}"
        attrs.setdefault("placeholder", self.placeholder)
        return format_html(
            '<div class="lookup" data-lookup-url="{}">'
            '<input type="hidden" name="{}" value="{}" id="{}_value">'
            '<input type="text" id="{}" value="{}" autocomplete="off" spellcheck="false" role="combobox" '
            'aria-autocomplete="list" aria-expanded="false"{}>'
            "</div>",
            self.lookup.url,
            name,
            "" if value is None else value,
            input_id,
            input_id,
            self.label_for(value),
            flatatt(attrs),
        )


class LookupField(ModelChoiceField):
    """A ModelChoiceField over a lookup kind's rows, rendered as a text box with a search menu.

    The value is still the row's id; an unknown id is a form error. The empty
    label becomes the box's placeholder ("Any", "All customers").
    """

    widget = LookupWidget

    def __init__(self, lookup, queryset=None, **kwargs):
        # ModelChoiceField's "---------" reads as a value in a text box; say what to do instead.
        kwargs.setdefault("empty_label", "Type a name or id")
        self.lookup = get_lookup(lookup)
        super().__init__(queryset=self.lookup.get_queryset() if queryset is None else queryset, **kwargs)
        self.widget.lookup = self.lookup
        self.widget.placeholder = self._empty_label or ""
        name = self.lookup.model._meta.verbose_name
        self.error_messages["invalid_choice"] = f"No {name} has the id %(value)s: pick one from the list."

    # A property so that a form changing the empty label later (BaseFilterSet's "Any") changes the placeholder.
    @property
    def empty_label(self):
        return self._empty_label

    @empty_label.setter
    def empty_label(self, value):
        self._empty_label = value
        if isinstance(getattr(self, "widget", None), LookupWidget):
            self.widget.placeholder = value or ""

    def to_python(self, value):
        obj = super().to_python(value)
        self.widget.chosen = obj
        return obj


class LookupFilter(ModelChoiceFilter):
    """``?account=42`` filtered through a lookup kind: validated against the kind's rows, chosen by typing."""

    field_class = LookupField

    def __init__(self, lookup, *args, **kwargs):
        # The kind's rows, read when a form is built: the registry fills once the apps are ready.
        kwargs.setdefault("queryset", lambda request: get_lookup(lookup).get_queryset())
        kwargs["lookup"] = lookup
        super().__init__(*args, **kwargs)
