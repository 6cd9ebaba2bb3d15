"""Mapping gateways (customers' trunks) and routing gateways (vendors' trunks), and their online state.

Mapping: ``remoteIps`` the source IPs and networks; ``account`` its
account's name; ``capacity``; ``lockType`` 3 when disabled; the callee
prefix allow list (``calloutCalleePrefixesAllow`` true) or forbid list
(false); ``sipAuthenticationMethod`` 0 by IP, 1 by IP and port;
``firstRoutePolicy`` 0 priority, 1 best answer ratio, 2 least cost;
``maxCallDurationUpper`` the conversation limit (0 unlimited);
``dynamicBlackListInStandalone``. Routing: ``remoteIp`` the host,
``signalPort`` the port, ``protocol`` 1 (SIP only), ``prefix`` the callee
prefixes served, ``priority``, ``capacity``, ``clearingAccount``,
``lockType``. Fields without a counterpart (gateway groups, H.323, Q.931,
dial-rule syntax, timers) are ignored on writes and answered with VOS's
neutral values. Static (IP-authenticated) gateways are always online in VOS,
so the online lists give every enabled gateway with its live calls.
"""

import redis
from django.db import transaction
from django.db.models.deletion import ProtectedError

from billing.choices import AccountType
from billing.models import Account
from security.api_clients import APIScope
from softswitch_portal.switching.choices import AuthMode, RoutePolicy, Transport
from softswitch_portal.switching.models import MappingGateway, RoutingGateway

from . import fields
from .codes import RetCode, VosError, invalid, not_found
from .customers import save
from .livecalls import live_calls
from .registry import action

LOCKED = 3
ROUTE_POLICIES = {0: RoutePolicy.PRIORITY, 1: RoutePolicy.ASR, 2: RoutePolicy.LEAST_COST}
POLICY_OF = {value: key for key, value in ROUTE_POLICIES.items()}


def account_named(body, name, vendor=False):
    value = fields.string(body, name, default="")
    if not value:
        return None
    queryset = Account.objects.filter(name=value)
    if vendor:
        queryset = queryset.filter(account_type=AccountType.VENDOR)
    account = queryset.first()
    if account is None:
        raise not_found(f"no {'clearing ' if vendor else ''}account {value!r} ({name})")
    return account


def info_mapping(gateway):
    allow = bool(gateway.prefix_allow)
    return {
        "name": gateway.name,
        "lockType": 0 if gateway.enabled else LOCKED,
        "callLevel": 0,
        "capacity": gateway.capacity,
        "priority": 0,
        "gatewayGroups": "",
        "routingGatewayGroupsAllow": False,
        "routingGatewayGroups": "",
        "registerType": 0,
        "remoteIps": ",".join(gateway.remote_ips),
        "allowPhoneBilling": False,
        "allowBindedE164Billing": False,
        "enablePhoneSetting": False,
        "calloutCalleePrefixesAllow": allow,
        "calloutCalleePrefixes": ",".join(gateway.prefix_allow if allow else gateway.prefix_forbid),
        "calloutCallerPrefixesAllow": False,
        "calloutCallerPrefixes": "",
        "rewriteRulesOutCallee": "",
        "rewriteRulesOutCaller": "",
        "timeoutCallProceeding": -1,
        "account": gateway.account.name,
        "accountName": gateway.account.name,
        "sipAuthenticationMethod": 1 if gateway.auth_mode == AuthMode.IP_PORT else 0,
        "firstRoutePolicy": POLICY_OF.get(gateway.route_policy, 0),
        "secondRoutePolicy": 0,
        "maxCallDurationUpper": gateway.conversation_limit,
        "dynamicBlackListInStandalone": gateway.dynamic_blacklist_standalone,
        "memo": gateway.description,
    }


def apply_mapping(gateway, body):
    if "account" in body:
        gateway.account = account_named(body, "account")
    if "remoteIps" in body:
        gateway.remote_ips = fields.comma_list(fields.string(body, "remoteIps"))
    if "capacity" in body:
        gateway.capacity = fields.integer(body, "capacity", minimum=0)
    if "lockType" in body:
        gateway.enabled = fields.integer(body, "lockType", minimum=0, maximum=3) != LOCKED
    if "calloutCalleePrefixes" in body or "calloutCalleePrefixesAllow" in body:
        prefixes = fields.comma_list(fields.string(body, "calloutCalleePrefixes", default=""))
        if fields.boolean(body, "calloutCalleePrefixesAllow", default=True):
            gateway.prefix_allow, gateway.prefix_forbid = prefixes, []
        else:
            gateway.prefix_allow, gateway.prefix_forbid = [], prefixes
    if "sipAuthenticationMethod" in body:
        by_port = fields.integer(body, "sipAuthenticationMethod", minimum=0, maximum=1) == 1
        gateway.auth_mode = AuthMode.IP_PORT if by_port else AuthMode.IP
    if "firstRoutePolicy" in body:
        gateway.route_policy = ROUTE_POLICIES[fields.integer(body, "firstRoutePolicy", minimum=0, maximum=2)]
    if "maxCallDurationUpper" in body:
        gateway.conversation_limit = max(0, fields.integer(body, "maxCallDurationUpper", minimum=-1))
    if "dynamicBlackListInStandalone" in body:
        gateway.dynamic_blacklist_standalone = fields.boolean(body, "dynamicBlackListInStandalone")
    if "memo" in body:
        gateway.description = fields.string(body, "memo")


def info_routing(gateway):
    return {
        "name": gateway.name,
        "prefix": ",".join(gateway.prefixes),
        "prefixStyle": 0,
        "gatewayGroups": "",
        "capacity": gateway.capacity,
        "priority": gateway.priority,
        "lockType": 0 if gateway.enabled else LOCKED,
        "registerType": 0,
        "remoteIp": gateway.host,
        "encrypt": False,
        "protocol": 1,
        "signalPort": gateway.port,
        "signalPortLocal": 0,
        "localIp": "",
        "rewriteRulesInCaller": "",
        "rewriteRulesInCallee": "",
        "clearingAccount": gateway.clearing_account.name if gateway.clearing_account_id else "",
        "feerateRestrict": False,
        "leastCostRouting": False,
        "maxCallDurationUpper": gateway.conversation_limit,
        "dynamicBlackListInStandalone": gateway.dynamic_blacklist_standalone,
        "memo": gateway.description,
    }


def apply_routing(gateway, body):
    if "remoteIp" in body:
        gateway.host = fields.string(body, "remoteIp")
    if "signalPort" in body:
        gateway.port = fields.integer(body, "signalPort", minimum=1, maximum=65535)
    if "protocol" in body and fields.integer(body, "protocol") != 1:
        raise invalid("protocol", "only 1 (SIP): this switch speaks no H.323.")
    if "prefix" in body:
        gateway.prefixes = fields.comma_list(fields.string(body, "prefix"))
    if "capacity" in body:
        gateway.capacity = fields.integer(body, "capacity", minimum=0)
    if "priority" in body:
        gateway.priority = fields.integer(body, "priority", minimum=0)
    if "lockType" in body:
        gateway.enabled = fields.integer(body, "lockType", minimum=0, maximum=3) != LOCKED
    if "clearingAccount" in body:
        gateway.clearing_account = account_named(body, "clearingAccount", vendor=True)
    if "maxCallDurationUpper" in body:
        gateway.conversation_limit = max(0, fields.integer(body, "maxCallDurationUpper", minimum=-1))
    if "dynamicBlackListInStandalone" in body:
        gateway.dynamic_blacklist_standalone = fields.boolean(body, "dynamicBlackListInStandalone")
    if "memo" in body:
        gateway.description = fields.string(body, "memo")


def find(model, name, what):
    obj = model.objects.filter(name=name).first()
    if obj is None:
        raise not_found(f"no {what} {name!r} (name)")
    return obj


def delete(obj):
    try:
        with transaction.atomic():
            obj.delete()
    except ProtectedError as exc:
        users = ", ".join(f"{o._meta.verbose_name} {o}" for o in list(exc.protected_objects)[:10])
        raise VosError(RetCode.IN_USE, f"{obj} is still used by {users}.") from None
    return {}


@action("CreateGatewayMapping", APIScope.WRITE)
def create_gateway_mapping(call, body):
    name = fields.string(body, "name", allow_empty=False)
    if MappingGateway.objects.filter(name=name).exists():
        raise VosError(RetCode.ALREADY_EXISTS, f"mapping gateway {name!r} already exists.")
    if not fields.string(body, "account", default=""):
        raise invalid("account", "is required: a mapping gateway bills an account.")
    gateway = MappingGateway(name=name)
    apply_mapping(gateway, body)
    save(gateway)
    return {}


@action("ModifyGatewayMapping", APIScope.WRITE)
def modify_gateway_mapping(call, body):
    gateway = find(MappingGateway, fields.string(body, "name", allow_empty=False), "mapping gateway")
    if "account" in body and not fields.string(body, "account"):
        raise invalid("account", "must name an account.")
    apply_mapping(gateway, body)
    save(gateway)
    return {}


@action("DeleteGatewayMapping", APIScope.WRITE)
def delete_gateway_mapping(call, body):
    return delete(find(MappingGateway, fields.string(body, "name", allow_empty=False), "mapping gateway"))


@action("GetGatewayMapping")
def get_gateway_mapping(call, body):
    names = fields.strings(body, "names", default=None)
    queryset = MappingGateway.objects.select_related("account").order_by("name")
    if names:
        queryset = queryset.filter(name__in=names)
    return {"infoGatewayMappings": [info_mapping(gateway) for gateway in queryset]}


@action("CreateGatewayRouting", APIScope.WRITE)
def create_gateway_routing(call, body):
    name = fields.string(body, "name", allow_empty=False)
    if RoutingGateway.objects.filter(name=name).exists():
        raise VosError(RetCode.ALREADY_EXISTS, f"routing gateway {name!r} already exists.")
    gateway = RoutingGateway(name=name, transport=Transport.UDP)
    apply_routing(gateway, body)
    save(gateway)
    return {}


@action("ModifyGatewayRouting", APIScope.WRITE)
def modify_gateway_routing(call, body):
    gateway = find(RoutingGateway, fields.string(body, "name", allow_empty=False), "routing gateway")
    apply_routing(gateway, body)
    save(gateway)
    return {}


@action("DeleteGatewayRouting", APIScope.WRITE)
def delete_gateway_routing(call, body):
    return delete(find(RoutingGateway, fields.string(body, "name", allow_empty=False), "routing gateway"))


@action("GetGatewayRouting")
def get_gateway_routing(call, body):
    names = fields.strings(body, "names", default=None)
    queryset = RoutingGateway.objects.select_related("clearing_account").order_by("name")
    if names:
        queryset = queryset.filter(name__in=names)
    return {"infoGatewayRoutings": [info_routing(gateway) for gateway in queryset]}


def calls_per(key):
    """Live calls per mapping (``mapping_gateway_id``) or routing gateway (``route_gateway_ids``)."""
    counts = {}
    for call in live_calls().values():
        ids = call.get(key)
        for gateway_id in ids if isinstance(ids, list) else [ids]:
            if gateway_id is not None:
                counts[gateway_id] = counts.get(gateway_id, 0) + 1
    return counts


def online(model, body, key, extra):
    names = fields.strings(body, "names", default=None)
    fields.string(body, "softswitchName", default="")
    queryset = model.objects.filter(enabled=True).order_by("name")
    if names:
        queryset = queryset.filter(name__in=names)
    try:
        counts = calls_per(key)
    except redis.RedisError as exc:
        raise VosError(RetCode.UNAVAILABLE, f"the live state did not answer: {exc}") from None
    rows = []
    for gateway in queryset:
        row = {
            "id": gateway.pk,
            "name": gateway.name,
            "currentCall": counts.get(gateway.pk, 0),
            "capacity": gateway.capacity,
            "asr": 0.0,
            "acd": 0,
            "localIp": "",
            "registerTime": 0,
            "updateTime": 0,
            "keepTime": 0,
            "cryptoType": 0,
            "softswitchName": "",
            "softswitchIp": "",
        }
        row.update(extra(gateway))
        rows.append(row)
    return rows


@action("GetGatewayMappingOnline")
def get_gateway_mapping_online(call, body):
    rows = online(MappingGateway, body, "mapping_gateway_id", lambda g: {"remoteIps": ",".join(g.remote_ips)})
    return {"infoGatewayMappingOnlines": rows}


@action("GetGatewayRoutingOnline")
def get_gateway_routing_online(call, body):
    def extra(gateway):
        return {"remoteIp": gateway.host, "prefix": ",".join(gateway.prefixes), "responseRatio": 0.0,
                "connectedRatio": 0.0, "retryAfter": 0}  # fmt: skip

    return {"infoGatewayRoutingOnlines": online(RoutingGateway, body, "route_gateway_ids", extra)}
