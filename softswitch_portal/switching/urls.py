from django.urls import path

from softswitch_portal.generic.urls import model_urls

from . import simulator_views, testcall_views, views

app_name = "switching"

urlpatterns = [
    *model_urls(
        "mapping-gateways",
        list_view=views.MappingGatewayListView,
        detail_view=views.MappingGatewayView,
        edit_view=views.MappingGatewayEditView,
        delete_view=views.MappingGatewayDeleteView,
    ),
    *model_urls(
        "routing-gateways",
        list_view=views.RoutingGatewayListView,
        detail_view=views.RoutingGatewayView,
        edit_view=views.RoutingGatewayEditView,
        delete_view=views.RoutingGatewayDeleteView,
    ),
    *model_urls(
        "phones",
        list_view=views.PhoneListView,
        detail_view=views.PhoneView,
        edit_view=views.PhoneEditView,
        delete_view=views.PhoneDeleteView,
    ),
    *model_urls(
        "number-transforms",
        list_view=views.NumberTransformRuleListView,
        detail_view=views.NumberTransformRuleView,
        edit_view=views.NumberTransformRuleEditView,
        delete_view=views.NumberTransformRuleDeleteView,
    ),
    *model_urls(
        "routing-schedules",
        list_view=views.RoutingScheduleListView,
        detail_view=views.RoutingScheduleView,
        edit_view=views.RoutingScheduleEditView,
        delete_view=views.RoutingScheduleDeleteView,
    ),
    *model_urls(
        "caller-number-pools",
        list_view=views.CallerNumberPoolListView,
        detail_view=views.CallerNumberPoolView,
        edit_view=views.CallerNumberPoolEditView,
        delete_view=views.CallerNumberPoolDeleteView,
    ),
    *model_urls(
        "parameters",
        list_view=views.SystemParameterListView,
        detail_view=views.SystemParameterView,
        edit_view=views.SystemParameterEditView,
        delete_view=views.SystemParameterDeleteView,
    ),
    *model_urls("test-calls", list_view=views.TestCallListView),
    path("simulator/", simulator_views.SimulatorView.as_view(), name="simulator"),
    path("routing-gateways/<int:pk>/test-call/", testcall_views.TestCallStartView.as_view(), name="testcall_start"),
    path("test-calls/<int:pk>/", testcall_views.TestCallView.as_view(), name="testcall"),
    path(
        "test-calls/<int:pk>/recording.wav", testcall_views.TestCallRecordingView.as_view(), name="testcall_recording"
    ),
]
