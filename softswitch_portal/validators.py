"""Field validators shared by the apps: numbers, prefixes, IPs, SIP codes.

Each raises ValidationError with a message an operator can act on.
"""

import ipaddress
import re

from django.core.exceptions import ValidationError

DIGITS_RE = re.compile(r"^\+?[0-9]+$")  # a lone "+" is no number
# Prefixes may carry the tech-prefix characters carriers use (# and *).
PREFIX_RE = re.compile(r"^[0-9#*+]*$")


def validate_number(value):
    if not value or not DIGITS_RE.match(value):
        raise ValidationError(
            "%(value)r is not a phone number: use digits only, optionally after a leading +.",
            params={"value": value},
        )


def validate_prefix(value):
    if not PREFIX_RE.match(value or ""):
        raise ValidationError(
            "%(value)r is not a prefix: use digits, # or * only.",
            params={"value": value},
        )


def validate_prefix_list(values):
    for value in values or ():
        validate_prefix(value)


def validate_ip_or_cidr(value):
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValidationError(
            "%(value)r is not an IP address or CIDR network (e.g. 192.0.2.10 or 192.0.2.0/24).",
            params={"value": value},
        ) from None


def validate_ip_list(values):
    for value in values or ():
        validate_ip_or_cidr(value)


def validate_host(value):
    """A routing gateway's host: an IP address or a DNS name."""
    try:
        ipaddress.ip_address(value)
        return
    except ValueError:
        pass
    if not re.match(
        r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$",
        value or "",
    ):
        raise ValidationError("%(value)r is neither an IP address nor a host name.", params={"value": value})


def validate_sip_status_list(values):
    for value in values or ():
        if not 300 <= int(value) <= 699:
            raise ValidationError("%(value)s is not a final SIP failure status (300-699).", params={"value": value})
