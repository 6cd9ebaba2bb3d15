from django.apps import AppConfig, apps


class CoreConfig(AppConfig):
    name = "softswitch_portal.core"
    label = "core"
    verbose_name = "Core"

    def ready(self):
        from . import audit, publisher

        publisher.watch(*(apps.get_model(label) for label in publisher.CONFIGURATION_MODELS))
        audit.register_models()
