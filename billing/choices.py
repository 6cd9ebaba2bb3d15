"""Choices of the billing app; the CDR codes come from the call core's contract."""

from django.db import models

from callcore.contract import PRODUCED_BILLING_MODES, BillingMode, EndDirection, EndReason


class AccountType(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    VENDOR = "vendor", "Vendor clearing account"


class PaymentKind(models.TextChoices):
    RECHARGE = "recharge", "Recharge"
    DEDUCT = "deduct", "Deduct"


BILLING_MODE_CHOICES = [(m.value, m.label) for m in BillingMode]  # every stored CDR keeps its label
# What the CDR filter offers: only the modes a call can be recorded under.
BILLING_MODE_FILTER_CHOICES = [(m.value, m.label) for m in PRODUCED_BILLING_MODES]
END_DIRECTION_CHOICES = [(d.value, d.label) for d in EndDirection]
END_REASON_CHOICES = [(r.code, r.description) for r in EndReason]
