from softswitch_portal.api.routers import PortalRouter

from . import views

app_name = "security-api"

router = PortalRouter()
router.register("list-groups", views.BlackWhiteListGroupViewSet)
router.register("list-entries", views.ListEntryViewSet)
router.register("dynamic-blacklist", views.DynamicBlacklistEntryViewSet)
router.register("blacklist-exemptions", views.BlacklistExemptionViewSet)
router.register("ip-country-ranges", views.IpCountryRangeViewSet)
router.register("alarms", views.AlarmViewSet)
router.register("api-requests", views.APIRequestLogViewSet)

urlpatterns = router.urls
