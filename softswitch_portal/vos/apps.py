from django.apps import AppConfig


class VosConfig(AppConfig):
    name = "softswitch_portal.vos"
    label = "vos"
    verbose_name = "VOS3000 API"
