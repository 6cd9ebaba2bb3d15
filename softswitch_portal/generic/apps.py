from django.apps import AppConfig


class GenericConfig(AppConfig):
    name = "softswitch_portal.generic"
    label = "generic"
    verbose_name = "Portal base"
