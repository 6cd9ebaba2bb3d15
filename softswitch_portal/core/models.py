"""The models every app reads and none owns: the system parameters."""

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
