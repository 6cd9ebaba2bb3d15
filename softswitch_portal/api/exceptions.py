"""API errors as JSON naming the field: a model's ValidationError that escapes a view is a 400, not a 500."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.views import exception_handler as drf_exception_handler

from .serializers import as_drf_error


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = as_drf_error(exc)
    return drf_exception_handler(exc, context)
