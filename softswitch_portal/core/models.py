"""The models every app reads and none owns: the system parameters and the record of logins."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse

from callcore.contract import PARAMETERS_BY_NAME


class SystemParameter(models.Model):
    """The stored value of one declared system parameter (callcore.contract.PARAMETERS)."""

    # Its pages stay under the switching menu and URL names (softswitch_portal.generic.utils.viewname).
    url_namespace = "switching"

    name = models.CharField(max_length=64, unique=True)
    value = models.CharField(max_length=64)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        # The table kept its name when the model moved here from the switching app.
        db_table = "switching_systemparameter"
        ordering = ["name"]

    def __str__(self):
        return f"{self.name}={self.value}"

    def get_absolute_url(self):
        return reverse("switching:systemparameter", args=[self.pk])

    @property
    def declaration(self):
        return PARAMETERS_BY_NAME.get(self.name)

    def clean(self):
        declaration = self.declaration
        if declaration is None:
            raise ValidationError({"name": f"{self.name!r} is not a known system parameter."})
        # Accept VOS's spelling on import but store the canonical name.
        self.name = declaration.name
        try:
            self.value = declaration.format(declaration.parse(self.value))
        except ValueError as exc:
            raise ValidationError({"value": str(exc)}) from None

    @property
    def typed_value(self):
        return self.declaration.parse(self.value)

    @classmethod
    def current(cls, name: str):
        """Parameter ``name`` as stored and typed; its default when unset or unreadable."""
        declaration = PARAMETERS_BY_NAME[name]
        stored = cls.objects.filter(name=declaration.name).values_list("value", flat=True).first()
        try:
            return declaration.parse(stored) if stored is not None else declaration.default
        except ValueError:
            return declaration.default

    @property
    def description(self):
        return self.declaration.description if self.declaration else ""


class LoginEvent(models.Model):
    """One login to the portal or the admin: who, from where, and whether it was let in."""

    class Outcome(models.TextChoices):
        SUCCESS = "success", "Logged in"
        FAILED = "failed", "Wrong credentials"
        LOCKED_OUT = "locked_out", "Locked out"
        LOGOUT = "logout", "Logged out"

    time = models.DateTimeField(auto_now_add=True, db_index=True)
    # As typed: a failed login may name no user at all, and a user may be deleted later.
    username = models.CharField(max_length=150, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    ip_address = models.GenericIPAddressField(null=True, blank=True, verbose_name="IP address")
    user_agent = models.CharField(max_length=255, blank=True)
    path = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-time"]
        verbose_name = "login"

    def __str__(self):
        return f"{self.username} {self.get_outcome_display()} {self.time:%Y-%m-%d %H:%M:%S}"
