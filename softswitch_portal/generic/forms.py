"""Form building blocks: list fields typed as text, and widgets that suit an operator's browser."""

import re

from django import forms
from django.core.exceptions import ValidationError

from .attributes import nice_label

# Operators paste lists from e-mails and spreadsheets: accept commas, semicolons, any whitespace.
LIST_SEPARATORS = re.compile(r"[\s,;]+")


class ArrayTextField(forms.Field):
    """A list (an ArrayField) edited as comma- or newline-separated text.

    Every entry is checked on its own and every bad one is reported by name,
    so an operator who pasted fifty IPs sees which two are wrong.
    """

    widget = forms.Textarea(attrs={"rows": 2, "class": "list-input"})

    def __init__(self, *, item_validator=None, coerce=None, normalize=None, **kwargs):
        self.item_validator = item_validator
        self.coerce = coerce
        self.normalize = normalize
        kwargs.setdefault("help_text", "")
        super().__init__(**kwargs)
        suffix = "Separate entries with commas or new lines."
        self.help_text = f"{self.help_text} {suffix}".strip()

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(str(item) for item in value)
        return value

    def to_python(self, value):
        if isinstance(value, list | tuple):
            return list(value)
        items = []
        errors = []
        for raw in LIST_SEPARATORS.split(value or ""):
            if not raw:
                continue
            item = self.normalize(raw) if self.normalize else raw
            if self.coerce:
                try:
                    item = self.coerce(item)
                except (TypeError, ValueError):
                    errors.append(ValidationError("%(value)r is not a whole number.", params={"value": raw}))
                    continue
            if self.item_validator:
                try:
                    self.item_validator(item)
                except ValidationError as exc:
                    errors.extend(exc.error_list)
                    continue
            # A repeated entry means nothing more; keep the first.
            if item not in items:
                items.append(item)
        if errors:
            raise ValidationError(errors)
        return items

    def validate(self, value):
        if self.required and not value:
            raise ValidationError(self.error_messages["required"], code="required")


def style_widgets(fields, checkbox_lists=False):
    """Give the stock widgets the HTML5 input types browsers render natively (no JS date pickers).

    ``checkbox_lists``: many-to-many choices as a scrollable list of checkboxes,
    which operators tick with the mouse instead of ctrl-clicking a multi-select.
    """
    for field in fields.values():
        field.label = nice_label(field.label) if field.label else field.label
        widget = field.widget
        if checkbox_lists and type(widget) is forms.SelectMultiple:
            field.widget = forms.CheckboxSelectMultiple(attrs={"class": "checkbox-list"})
            field.widget.choices = field.choices
            continue
        if isinstance(field, forms.SplitDateTimeField):
            continue
        if isinstance(field, forms.DateTimeField) and type(widget) is forms.DateTimeInput:
            field.widget = forms.DateTimeInput(
                attrs={"type": "datetime-local", **widget.attrs}, format="%Y-%m-%dT%H:%M"
            )
        elif isinstance(field, forms.DateField) and type(widget) is forms.DateInput:
            field.widget = forms.DateInput(attrs={"type": "date", **widget.attrs}, format="%Y-%m-%d")
        elif isinstance(field, forms.TimeField) and type(widget) is forms.TimeInput:
            field.widget = forms.TimeInput(attrs={"type": "time", **widget.attrs}, format="%H:%M")
        elif isinstance(widget, forms.Textarea) and widget.attrs.get("rows") == "10":
            # Django's default of ten rows pushes the rest of the form off the screen.
            widget.attrs["rows"] = 3
        elif isinstance(widget, forms.SelectMultiple) and not isinstance(widget, forms.CheckboxSelectMultiple):
            widget.attrs.setdefault("size", 6)
        if isinstance(field, forms.DecimalField | forms.IntegerField):
            widget.attrs.setdefault("class", "num")


def refuse_without_permission(form, field, permission, message):
    """A form error on ``field`` when it changed and the form's user (set by the edit view) lacks ``permission``.

    Forms built without a user (the admin, scripts) are not checked here: the admin is for administrators.
    """
    user = getattr(form, "user", None)
    if user is not None and field in form.changed_data and not user.has_perm(permission):
        form.add_error(field, message)


class BaseModelForm(forms.ModelForm):
    """A ModelForm with operator-friendly widgets and optional fieldsets.

    ``fieldsets = (("Title", ("field", ...)), ...)`` groups the fields on the
    page; fields not named in any fieldset are shown at the end so none is lost.
    """

    fieldsets = ()
    error_css_class = "has-error"
    required_css_class = "required"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style_widgets(self.fields, checkbox_lists=True)

    def grouped_fields(self):
        placed = set()
        groups = []
        for title, names in self.fieldsets:
            bound = [self[name] for name in names if name in self.fields]
            placed.update(names)
            groups.append((title, bound))
        rest = [self[name] for name in self.fields if name not in placed]
        if rest:
            groups.append(("" if not groups else "Other", rest))
        return groups

    def _update_errors(self, errors):
        # A field the form already rejected gets no second, model-level complaint
        # about the empty value the model saw in its place.
        if hasattr(errors, "error_dict"):
            kept = {name: errs for name, errs in errors.error_dict.items() if name not in self._errors}
            if not kept:
                return
            errors = ValidationError(kept)
        super()._update_errors(errors)
