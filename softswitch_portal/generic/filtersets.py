"""The base of every FilterSet: one per model, shared by the list pages and the REST API."""

import datetime as dt

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from .forms import style_widgets
from .lookups import LookupField, LookupFilter, default_kind

ANY_YES_NO = (("", "Any"), ("true", "Yes"), ("false", "No"))
# PostgreSQL takes UTC offsets up to 15:59; Python parses up to 23:59, and a query with more fails in the database.
MAX_UTC_OFFSET = dt.timedelta(hours=15, minutes=59)


def validate_utc_offset(value):
    offset = value.utcoffset() if value is not None else None
    if offset is not None and abs(offset) > MAX_UTC_OFFSET:
        raise ValidationError("The time zone offset must be within ±15:59.")


class NumberInFilter(django_filters.BaseInFilter, django_filters.NumberFilter):
    """``?id=3,7,9``."""


class BaseFilterSet(django_filters.FilterSet):
    """Adds ``q`` (quick search over ``search_fields``) and ``id``.

    ``unfiltered_fields = {"field": "reason"}`` names the model fields that
    deliberately have no filter; tests fail for any other field without one,
    so adding a model field forces a decision here.

    A foreign key onto a model with a default lookup kind (accounts, gateways,
    phones: generic.lookups) is filtered through a LookupFilter, picked by
    typing, instead of a select listing every row.
    """

    q = django_filters.CharFilter(method="search", label="Search")
    id = NumberInFilter(field_name="id", label="IDs", widget=forms.HiddenInput)

    search_fields = ()
    unfiltered_fields = {}

    @classmethod
    def filter_for_lookup(cls, field, lookup_type):
        filter_class, params = super().filter_for_lookup(field, lookup_type)
        is_plain_foreign_key = isinstance(field, models.ForeignKey) and not field.remote_field.limit_choices_to
        if filter_class is django_filters.ModelChoiceFilter and is_plain_foreign_key:
            kind = default_kind(field.remote_field.model)
            if kind is not None:
                params.pop("queryset", None)
                return LookupFilter, {**params, "lookup": kind}
        return filter_class, params

    def search(self, queryset, name, value):
        value = value.strip()
        if not value or not self.search_fields:
            return queryset
        query = Q()
        for lookup in self.search_fields:
            query |= Q(**{lookup: value})
        return queryset.filter(query)

    @property
    def form(self):
        if not hasattr(self, "_form"):
            form = super().form
            style_widgets(form.fields)
            for field in form.fields.values():
                if isinstance(field, forms.DateTimeField):
                    # Per form: the fields are the form's own copies.
                    field.validators.append(validate_utc_offset)
                if isinstance(field, LookupField):
                    field.empty_label = "Any"
                elif isinstance(field, forms.NullBooleanField):
                    # django-filter's default offers "Unknown", which reads as a value, not as "no filter".
                    field.widget = forms.Select(choices=ANY_YES_NO)
                elif getattr(field, "empty_label", None) is not None:
                    field.empty_label = "Any"
                    # The widget's choices iterator still points at the declared field, not this copy.
                    field.widget.choices = field.choices
            form.fields["q"].widget.attrs.setdefault("placeholder", "Search…")
        return self._form

    @property
    def is_filtered(self):
        """Whether the request set any filter (so the page can say the list is filtered)."""
        if not self.is_bound:
            return False
        return any(self.data.get(name) not in (None, "") for name in self.filters)


class IPAddressFilter(django_filters.CharFilter):
    """An exact IP; validated in the form so a typo is an error, not a database exception."""

    field_class = forms.GenericIPAddressField


class ArrayContainsFilter(django_filters.CharFilter):
    """Rows whose list field holds this entry (``remote_ips`` holding ``192.0.2.10``)."""

    def filter(self, qs, value):
        if value in (None, ""):
            return qs
        return self.get_method(qs)(**{f"{self.field_name}__contains": [value]})


class IntArrayContainsFilter(ArrayContainsFilter):
    field_class = forms.IntegerField


# Reasons shared by many filtersets' ``unfiltered_fields``.
FREE_TEXT = "free text: the quick search (q) covers it"
BOOKKEEPING = "bookkeeping timestamp: sort the list by it instead"
SORT_INSTEAD = "a figure to sort by, not to look up"
