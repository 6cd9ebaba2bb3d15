"""Test-call rows as the worker leaves them, and two routing gateways to place them on: shared by the API, list
page and browser tests of test calls, none of which places a real call."""

import datetime as dt

from django.utils import timezone

from softswitch_portal.switching import models


def routing_gateways():
    return {
        "one": models.RoutingGateway.objects.create(name="carrier-one", host="198.51.100.7", prefixes=["49"]),
        "two": models.RoutingGateway.objects.create(name="carrier-two", host="198.51.100.8", prefixes=["44"]),
    }


def make_call(gateway, number, minutes_ago=0, **fields):
    call = models.TestCall.objects.create(gateway=gateway, gateway_name=gateway.name, number=number, **fields)
    # created is auto_now_add: set afterwards, so the rows have an order of their own.
    models.TestCall.objects.filter(pk=call.pk).update(created=timezone.now() - dt.timedelta(minutes=minutes_ago))
    return call
