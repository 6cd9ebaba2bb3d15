from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "security"
    verbose_name = "Security"

    def ready(self):
        from softswitch_portal.switching import publisher

        from . import dynamic_blacklist, models

        publisher.watch(models.BlackWhiteListGroup, models.ListEntry)
        dynamic_blacklist.connect()
