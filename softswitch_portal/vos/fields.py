"""Reading VOS request fields and writing VOS values: types checked, names in every error, times as VOS has them.

Instants are milliseconds since 1970 UTC; query ranges are ``yyyyMMdd`` or
``yyyyMMddHHmmss`` in the switch's time zone (settings.TIME_ZONE), as VOS
reads them in its server's.
"""

import datetime as dt
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.utils import timezone

from .codes import RetCode, VosError, invalid

MISSING = object()


def required(body, name):
    value = body.get(name, MISSING)
    if value is MISSING or value is None:
        raise invalid(name, "is required.")
    return value


def string(body, name, *, default=MISSING, allow_empty=True):
    value = body.get(name, MISSING)
    if value is MISSING or value is None:
        if default is MISSING:
            raise invalid(name, "is required.")
        return default
    if not isinstance(value, str):
        raise invalid(name, "must be a string.")
    if not allow_empty and not value.strip():
        raise invalid(name, "must not be empty.")
    if len(value) > 65535:
        raise invalid(name, "is longer than 65535 characters.")
    return value.strip()


def integer(body, name, *, default=MISSING, minimum=None, maximum=None):
    value = body.get(name, MISSING)
    if value is MISSING or value is None:
        if default is MISSING:
            raise invalid(name, "is required.")
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(name, "must be an integer.")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise invalid(name, f"must be between {minimum} and {maximum}.")
    return value


def boolean(body, name, *, default=MISSING):
    value = body.get(name, MISSING)
    if value is MISSING or value is None:
        if default is MISSING:
            raise invalid(name, "is required.")
        return default
    if not isinstance(value, bool):
        raise invalid(name, "must be true or false.")
    return value


def money(body, name, *, default=MISSING):
    """A VOS double as an exact Decimal (from its JSON text, so 0.1 stays 0.1)."""
    value = body.get(name, MISSING)
    if value is MISSING or value is None:
        if default is MISSING:
            raise invalid(name, "is required.")
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise invalid(name, "must be a number.")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise invalid(name, "must be a number.") from None
    if not amount.is_finite():
        raise invalid(name, "must be a finite number.")
    return amount


def strings(body, name, *, default=MISSING):
    """A ``String[]``."""
    value = body.get(name, MISSING)
    if value is MISSING or value is None:
        if default is MISSING:
            raise invalid(name, "is required.")
        return default
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid(name, "must be an array of strings.")
    return [item.strip() for item in value]


def comma_list(text):
    """VOS's comma-separated String fields (IPs, prefixes) as a list."""
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def ms(moment):
    """An aware datetime as VOS's long milliseconds; None stays None."""
    return None if moment is None else int(moment.timestamp() * 1000)


def _local(text, name, fmt, length):
    if not isinstance(text, str) or len(text) != length or not text.isdigit():
        raise invalid(name, f"must be a time as {fmt.replace('%Y', 'yyyy').replace('%m', 'MM').replace('%d', 'dd')}"
                      .replace("%H", "HH").replace("%M", "mm").replace("%S", "ss") + ".")  # fmt: skip
    try:
        naive = dt.datetime.strptime(text, fmt)
    except ValueError:
        raise invalid(name, f"{text!r} is not a valid date.") from None
    return timezone.make_aware(naive, timezone.get_default_timezone())


def day(body, name):
    """``yyyyMMdd`` as the start of that day in the switch's time zone."""
    return _local(required(body, name), name, "%Y%m%d", 8)


def stamp(body, name):
    """``yyyyMMddHHmmss`` in the switch's time zone."""
    return _local(required(body, name), name, "%Y%m%d%H%M%S", 14)


def as_vos_error(exc: ValidationError) -> VosError:
    """A model's ValidationError as INVALID_FIELD naming the model field(s) and why."""
    if hasattr(exc, "error_dict"):
        parts = [f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items()]
        return VosError(RetCode.INVALID_FIELD, "; ".join(parts))
    return VosError(RetCode.INVALID_FIELD, " ".join(exc.messages))
