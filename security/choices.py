from django.db import models


class ListKind(models.TextChoices):
    BLACK = "black", "Black list"
    WHITE = "white", "White list"


class MatchKind(models.TextChoices):
    EXACT = "exact", "Full number"
    PREFIX = "prefix", "Prefix"


class BlacklistScope(models.TextChoices):
    GATEWAY = "gateway", "One gateway (standalone)"
    CENTRAL = "central", "Switch-wide (central)"


class BlacklistStatus(models.TextChoices):
    ACTIVE = "active", "Active, not reviewed"
    CONFIRMED = "confirmed", "Confirmed by an admin"
    RELEASED = "released", "Released"
    WHITELISTED = "whitelisted", "Released and whitelisted"
