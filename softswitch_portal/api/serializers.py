"""The base of every API serializer: the model's own validation, so the API refuses what the portal's forms refuse."""

import copy

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.settings import api_settings


def as_drf_error(exc: DjangoValidationError) -> serializers.ValidationError:
    """A model or service ValidationError as DRF's, keyed by field where it names one (400 naming the field)."""
    if hasattr(exc, "error_dict"):
        return serializers.ValidationError(
            {
                (api_settings.NON_FIELD_ERRORS_KEY if field == "__all__" else field): messages
                for field, messages in exc.message_dict.items()
            }
        )
    return serializers.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: exc.messages})


class ValidatedModelSerializer(serializers.ModelSerializer):
    """Runs ``full_clean()`` on the object as it would be saved, before saving it.

    Field validators, ``clean()`` (a gateway's claimed addresses, a rate's
    validity) and unique constraints all answer here, as a 400 whose keys are
    the fields at fault. Many-to-many values cannot sit on an unsaved object,
    so they are checked by their own fields only.
    """

    display = serializers.SerializerMethodField(help_text="How the portal names the object.")

    def get_display(self, obj) -> str:
        return str(obj)

    def validate(self, data):
        data = super().validate(data)
        model = self.Meta.model
        many_to_many = {field.name for field in model._meta.many_to_many}
        attrs = {name: value for name, value in data.items() if name not in many_to_many}
        if self.instance is None:
            instance = model(**attrs)
        else:
            # A copy: a refused change must not linger on the object the view holds.
            instance = copy.copy(self.instance)
            for name, value in attrs.items():
                setattr(instance, name, value)
        try:
            instance.full_clean()
        except DjangoValidationError as exc:
            raise as_drf_error(exc) from None
        # clean() may normalise values (a parameter's canonical name): save what it settled on.
        for name in attrs:
            data[name] = getattr(instance, name)
        return data
