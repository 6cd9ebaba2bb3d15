"""Choices of the billing app; the CDR codes come from the call core's contract."""

from django.db import models

from callcore.contract import BillingMode, EndDirection, EndReason


class AccountType(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    VENDOR = "vendor", "Vendor clearing account"


class PaymentKind(models.TextChoices):
    RECHARGE = "recharge", "Recharge"
    DEDUCT = "deduct", "Deduct"


BILLING_MODE_CHOICES = [(m.value, m.label) for m in BillingMode]
END_DIRECTION_CHOICES = [(d.value, d.label) for d in EndDirection]
END_REASON_CHOICES = [(r.code, r.description) for r in EndReason]
