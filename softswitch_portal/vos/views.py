"""POST /external/server/<Action>: a JSON object in, a JSON object out with ``retCode`` (0 = success).

As VOS's own handler: any content type is accepted and the raw body parsed
as JSON (an empty body is ``{}``); errors travel in ``retCode`` and
``exception`` with HTTP 200, and answers are sent as
``text/html;charset=UTF-8`` with ``Pragma: no-cache``, as VOS sends them.
"""

import json
import logging

from django.db import transaction
from django.http import HttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from . import customers, gateways, lists, livecalls, phones, rates, system  # noqa: F401  (they register the actions)
from .access import authorise
from .codes import RetCode, VosError
from .registry import ACTIONS

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/html;charset=UTF-8"


def answer(payload):
    response = HttpResponse(json.dumps(payload, ensure_ascii=False), content_type=CONTENT_TYPE)
    response["Pragma"] = "no-cache"
    response["Cache-Control"] = "no-store"
    return response


def failure(code, message):
    return answer({"retCode": int(code), "exception": message})


@method_decorator(csrf_exempt, name="dispatch")
class ExternalServerView(View):
    """Scripts written against VOS3000's Web API post here; no session, so no CSRF token."""

    http_method_names = ["post"]

    def http_method_not_allowed(self, request, *args, **kwargs):
        return failure(RetCode.BAD_REQUEST, "Use POST with a JSON object as the body.")

    def post(self, request, action):
        handler = ACTIONS.get(action)
        if handler is None:
            return failure(RetCode.UNKNOWN_ACTION, f"Unknown action {action!r}.")
        try:
            call = authorise(request, handler)
            body = self.body(request)
            with transaction.atomic():
                payload = handler.handler(call, body)
        except VosError as exc:
            return failure(exc.code, exc.message)
        return answer({"retCode": RetCode.SUCCESS.value, "exception": "", **payload})

    @staticmethod
    def body(request):
        raw = request.body.strip()
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise VosError(RetCode.BAD_REQUEST, f"The body is not JSON: {exc}.") from None
        if not isinstance(body, dict):
            raise VosError(RetCode.BAD_REQUEST, "The body must be a JSON object.")
        return body
