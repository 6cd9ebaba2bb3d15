from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "softswitch_portal.live"
    label = "live"
    verbose_name = "Live operations"
