"""Who may call the VOS3000-compatible API by address alone, as VOS's own Web access control has it."""

import ipaddress

from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse

from softswitch_portal.validators import validate_ip_or_cidr

# Every action, as VOS's own "/external/server" scope means.
ALL_ACTIONS = "/external/server"


class VosAccessRule(models.Model):
    """A source network allowed to call the VOS3000-compatible API: every action, or one.

    VOS3000 knows no tokens: its Web access control lists allowed source IPs,
    each for ``/external/server`` (all actions) or ``/external/server/<Action>``.
    Scripts that can send a token use an API client instead (its VOS3000 API flag).
    """

    network = models.CharField(max_length=64, validators=[validate_ip_or_cidr], help_text="An IP or CIDR network.")
    directory = models.CharField(
        max_length=100,
        default=ALL_ACTIONS,
        help_text="/external/server for every action, or /external/server/<Action> for one (e.g. GetCdr).",
    )
    memo = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["network", "directory"]
        verbose_name = "VOS API access rule"
        constraints = [models.UniqueConstraint(fields=["network", "directory"], name="vosaccessrule_unique")]

    def __str__(self):
        return f"{self.network} → {self.directory}"

    def get_absolute_url(self):
        return reverse("vos:vosaccessrule", args=[self.pk])

    def clean(self):
        if self.directory.rstrip("/") != ALL_ACTIONS and not self.directory.startswith(ALL_ACTIONS + "/"):
            raise ValidationError({"directory": f"Use {ALL_ACTIONS} or {ALL_ACTIONS}/<Action>."})
        self.directory = self.directory.rstrip("/")

    def allows(self, address, action):
        try:
            if ipaddress.ip_address(address) not in ipaddress.ip_network(self.network, strict=False):
                return False
        except ValueError:
            return False
        return self.directory in (ALL_ACTIONS, f"{ALL_ACTIONS}/{action}")
