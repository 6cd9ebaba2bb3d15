"""Lookup kinds of the switching models: gateways and phones are picked by typing (generic.lookups)."""

from softswitch_portal.generic.lookups import register

from .models import MappingGateway, Phone, RoutingGateway

register(
    "mapping-gateway",
    # An operator may know a trunk by its source IP rather than its name.
    lambda: MappingGateway.objects.select_related("account"),
    ("name__icontains", "remote_ips__icontains"),
    hint=lambda gateway: " · ".join([gateway.account.name, *gateway.remote_ips[:1]]),
    default=True,
)
register(
    "routing-gateway",
    lambda: RoutingGateway.objects.all(),
    ("name__icontains", "host__icontains"),
    hint=lambda gateway: gateway.host,
    default=True,
)
register(
    "phone",
    lambda: Phone.objects.select_related("account"),
    ("username__startswith",),
    order_by=("username",),
    hint=lambda phone: phone.account.name,
    default=True,
)
