"""Lookup kinds of the billing models: accounts are picked by typing their name (generic.lookups)."""

from softswitch_portal.generic.lookups import register

from .choices import AccountType
from .models import Account


def account_hint(account):
    return account.get_account_type_display()


register("account", lambda: Account.objects.all(), ("name__icontains",), hint=account_hint, default=True)
register(
    "customer-account",
    lambda: Account.objects.filter(account_type=AccountType.CUSTOMER),
    ("name__icontains",),
    hint=account_hint,
)
register(
    "vendor-account",
    lambda: Account.objects.filter(account_type=AccountType.VENDOR),
    ("name__icontains",),
    hint=account_hint,
)
