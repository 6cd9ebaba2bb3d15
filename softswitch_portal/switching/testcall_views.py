"""Operator test calls in the portal: the form on a routing gateway's page, the result page (refreshed by htmx
until the call is done) and its recording."""

from django import forms
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View

from softswitch_portal.validators import validate_number

from .models import RoutingGateway, TestCall
from .testcalls import service

# A test call is a real call billed to the test account: as much as changing the gateway.
PERMISSION = "switching.change_routinggateway"
# Its result is a record like any other, as the list of test calls and the API show it.
VIEW_PERMISSION = "switching.view_testcall"
REFRESH_S = 2


class TestCallForm(forms.Form):
    number = forms.CharField(max_length=64, validators=[validate_number],
                             help_text="Dialled through this gateway only, from the test-call phone.")  # fmt: skip


def _allowed(request, permission=PERMISSION, doing="place"):
    if not request.user.has_perm(permission):
        raise PermissionDenied(f"You may not {doing} test calls.")


class TestCallStartView(LoginRequiredMixin, View):
    template_name = "switching/testcall_start.html"

    def get(self, request, pk):
        _allowed(request)
        gateway = get_object_or_404(RoutingGateway, pk=pk)
        return render(request, self.template_name, {"gateway": gateway, "form": TestCallForm()})

    def post(self, request, pk):
        _allowed(request)
        gateway = get_object_or_404(RoutingGateway, pk=pk)
        form = TestCallForm(request.POST)
        if not form.is_valid():
            return render(request, self.template_name, {"gateway": gateway, "form": form}, status=400)
        call = service.start(gateway, form.cleaned_data["number"], request.user)
        return redirect(call.get_absolute_url())


class TestCallView(LoginRequiredMixin, View):
    def get(self, request, pk):
        _allowed(request, VIEW_PERMISSION, "see")
        call = get_object_or_404(TestCall.objects.defer("recording"), pk=pk)
        context = {"call": call, "refresh_s": REFRESH_S, "has_recording": call.waveform_svg != "",
                   "can_call": request.user.has_perm(PERMISSION)}  # fmt: skip
        if request.headers.get("HX-Request"):
            return render(request, "switching/_testcall_result.html", context)
        return render(request, "switching/testcall.html", context)


class TestCallRecordingView(LoginRequiredMixin, View):
    def get(self, request, pk):
        _allowed(request, VIEW_PERMISSION, "see")
        call = get_object_or_404(TestCall, pk=pk)
        if not call.recording:
            return HttpResponse("This test call has no recording.", status=404, content_type="text/plain")
        response = HttpResponse(bytes(call.recording), content_type="audio/wav")
        response["Content-Disposition"] = f'inline; filename="test-call-{call.pk}.wav"'
        return response
