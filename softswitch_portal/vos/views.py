"""POST /external/server/<Action>."""

from django.http import JsonResponse
from django.views import View


class ExternalServerView(View):
    def post(self, request, action):
        return JsonResponse({"retCode": -1, "exception": "Not implemented."})
