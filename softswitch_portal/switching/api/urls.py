from django.urls import path

from softswitch_portal.api.routers import PortalRouter

from .. import simulator_views
from . import views

app_name = "switching-api"

router = PortalRouter()
router.register("mapping-gateways", views.MappingGatewayViewSet)
router.register("routing-gateways", views.RoutingGatewayViewSet)
router.register("phones", views.PhoneViewSet)
router.register("number-transforms", views.NumberTransformRuleViewSet)
router.register("routing-schedules", views.RoutingScheduleViewSet)
router.register("caller-number-pools", views.CallerNumberPoolViewSet)
router.register("parameters", views.SystemParameterViewSet)
router.register("test-calls", views.TestCallViewSet)

urlpatterns = [
    *router.urls,
    path("simulate/", simulator_views.SimulatorAPIView.as_view(), name="simulate"),
]
