from softswitch_portal.api.routers import PortalRouter

from . import views

app_name = "billing-api"

router = PortalRouter()
router.register("accounts", views.AccountViewSet)
router.register("payments", views.PaymentViewSet)
router.register("rate-tables", views.RateTableViewSet)
router.register("rates", views.RateViewSet)
router.register("cdrs", views.CDRViewSet)
router.register("rerating-jobs", views.RerateJobViewSet)
router.register("rerating-changes", views.RerateChangeViewSet)

urlpatterns = router.urls
