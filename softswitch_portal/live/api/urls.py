from softswitch_portal.api.routers import PortalRouter

from . import views

app_name = "live-api"

router = PortalRouter()
router.register("calls", views.LiveCallViewSet, basename="livecall")

urlpatterns = router.urls
