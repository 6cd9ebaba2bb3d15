from django.apps import AppConfig


class SwitchingConfig(AppConfig):
    name = "softswitch_portal.switching"
    label = "switching"
    verbose_name = "Switching"
