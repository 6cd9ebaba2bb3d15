from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        from softswitch_portal.switching import publisher

        from . import models

        publisher.watch(models.Account, models.RateTable, models.Rate)
