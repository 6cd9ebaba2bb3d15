from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "security"
    verbose_name = "Security"

    def ready(self):
        from . import dynamic_blacklist, ip_countries

        dynamic_blacklist.connect()
        ip_countries.connect()
