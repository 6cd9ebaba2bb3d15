from softswitch_portal.api.routers import PortalRouter

from . import views

app_name = "vos-api"

router = PortalRouter()
router.register("access-rules", views.VosAccessRuleViewSet)

urlpatterns = router.urls
