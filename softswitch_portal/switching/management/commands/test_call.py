"""``manage.py test_call <routing gateway name> <number>``: an operator test call through one vendor, queued for
the test-call worker like one from the portal; waits for its result and prints it as JSON."""

import json
import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from softswitch_portal.switching.models import RoutingGateway, TestCall
from softswitch_portal.validators import validate_number

from ...testcalls import service


class Command(BaseCommand):
    help = "Place a test call through one routing gateway and print its result as JSON."

    def add_arguments(self, parser):
        parser.add_argument("gateway", help="The routing gateway's name.")
        parser.add_argument("number", help="The number to dial.")
        parser.add_argument("--timeout", type=float, default=180, help="Seconds to wait, queue included.")

    def handle(self, *args, gateway, number, timeout, **options):
        try:
            chosen = RoutingGateway.objects.get(name=gateway)
        except RoutingGateway.DoesNotExist:
            raise CommandError(f"No routing gateway is named {gateway!r}.") from None
        try:
            validate_number(number)
        except ValidationError as exc:
            raise CommandError(f"number: {' '.join(exc.messages)}") from None
        call = service.start(chosen, number)
        deadline = time.monotonic() + timeout
        while not call.done:
            if time.monotonic() > deadline:
                raise CommandError(f"Test call {call.pk} not finished after {timeout:g} s (is the test-call worker, "
                                   f"serving the test-call queue, running?).")  # fmt: skip
            time.sleep(0.5)
            call = TestCall.objects.get(pk=call.pk)
        self.stdout.write(json.dumps(service.as_json(call)))
        if call.status != "finished":
            raise CommandError(call.error or "The test call failed.")
