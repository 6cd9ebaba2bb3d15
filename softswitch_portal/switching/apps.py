from django.apps import AppConfig


class SwitchingConfig(AppConfig):
    name = "softswitch_portal.switching"
    label = "switching"
    verbose_name = "Switching"

    def ready(self):
        from . import models, publisher

        publisher.watch(
            models.MappingGateway,
            models.RoutingGateway,
            models.Phone,
            models.NumberTransformRule,
            models.RoutingSchedule,
            models.CallerNumberPool,
            models.SystemParameter,
        )
