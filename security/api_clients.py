"""API clients: the scripts that call the REST and VOS APIs, each with a hashed token, networks, scopes and a rate.

A token is shown once, when it is made; only its SHA-256 is stored, so a
copy of the database gives nobody a usable token. Tokens are 40 random
URL-safe characters (240 bits): a plain hash needs no salt or stretching at
that entropy, and checking one costs a lookup by its first characters.
"""

import datetime as dt
import hashlib
import hmac
import ipaddress
import secrets

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils import timezone

from softswitch_portal.validators import validate_ip_list

# The characters of a token that find its row; the rest is only ever compared as a hash.
TOKEN_PREFIX_LENGTH = 8
DEFAULT_LIFETIME = dt.timedelta(days=365)


class APIScope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Write configuration"
    MONEY = "money", "Move money (payments)"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def default_expiry():
    return timezone.now() + DEFAULT_LIFETIME


class APIClient(models.Model):
    """A script allowed to call the API: as its owner, within its scopes, from its networks, at its rate.

    A client never does more than its owner (an operator) may: every request
    needs both the client's scope and the owner's model permission.
    """

    name = models.CharField(max_length=100, unique=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="api_clients",
        help_text="The operator the client acts as: it has at most their permissions.",
    )
    token_prefix = models.CharField(max_length=TOKEN_PREFIX_LENGTH, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, editable=False)
    scopes = ArrayField(
        models.CharField(max_length=8, choices=APIScope.choices),
        default=list,
        blank=True,
        help_text="read: list and read; write: change configuration; money: payments (recharge, deduct).",
    )
    allowed_networks = ArrayField(
        models.CharField(max_length=64),
        validators=[validate_ip_list],
        help_text="Source IPs or CIDR networks the client may call from.",
    )
    throttle_per_minute = models.PositiveIntegerField(default=600, help_text="Requests per minute. 0 = no limit.")
    vos_api = models.BooleanField(
        "VOS3000 API", default=False, help_text="May also call the VOS3000-compatible API (/external/server/...)."
    )
    expires_at = models.DateTimeField(default=default_expiry)
    enabled = models.BooleanField(default=True)
    description = models.TextField(blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "API client"

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("security:apiclient", args=[self.pk])

    def clean(self):
        unknown = sorted(set(self.scopes or ()) - set(APIScope.values))
        if unknown:
            raise ValidationError(
                {"scopes": f"Unknown scopes: {', '.join(unknown)} (use {', '.join(APIScope.values)})."}
            )
        if not self.allowed_networks:
            raise ValidationError(
                {"allowed_networks": "Name at least one network: a client may call from nowhere else."}
            )

    def issue_token(self) -> str:
        """A new token for this client, replacing any before it; returned once, stored only as a hash."""
        while True:
            token = secrets.token_urlsafe(30)
            prefix = token[:TOKEN_PREFIX_LENGTH]
            if not APIClient.objects.filter(token_prefix=prefix).exclude(pk=self.pk).exists():
                break
        self.token_prefix = prefix
        self.token_hash = hash_token(token)
        return token

    @classmethod
    def for_token(cls, token: str):
        """The client this token belongs to, or None."""
        if len(token) <= TOKEN_PREFIX_LENGTH:
            return None
        client = cls.objects.select_related("owner").filter(token_prefix=token[:TOKEN_PREFIX_LENGTH]).first()
        if client is None or not hmac.compare_digest(client.token_hash, hash_token(token)):
            return None
        return client

    @property
    def expired(self):
        return self.expires_at <= timezone.now()

    def allows_address(self, address: str) -> bool:
        try:
            source = ipaddress.ip_address(address)
        except ValueError:
            return False
        for network in self.allowed_networks or ():
            try:
                if source in ipaddress.ip_network(network, strict=False):
                    return True
            except ValueError:
                continue
        return False


class APIRequestLog(models.Model):
    """One request to the REST or VOS API: who (client or portal user), from where, what, and the answer."""

    created = models.DateTimeField(auto_now_add=True, db_index=True)
    client = models.ForeignKey(APIClient, on_delete=models.SET_NULL, null=True, blank=True, related_name="requests")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    method = models.CharField(max_length=8)
    endpoint = models.CharField(max_length=200)
    status = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name = "API request"
        indexes = [models.Index(fields=["client", "created"], name="apirequest_client_created")]

    def __str__(self):
        return f"{self.method} {self.endpoint} {self.status}"

    def get_absolute_url(self):
        return reverse("security:apirequestlog", args=[self.pk])
