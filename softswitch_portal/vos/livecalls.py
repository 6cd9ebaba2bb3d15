"""Current calls (GetCurrentCall) and forced disconnects (DisconnectCurrentCall), from the live-call registry.

VOS names a call by an int ``callId``; this switch by its SIP Call-ID. The
callId answered is a stable 31-bit hash of the Call-ID (CRC-32), so the id
GetCurrentCall gives is the one DisconnectCurrentCall takes. A disconnect is
a request written to the node holding the call (``Keys.disconnects``); the
portal never signals SIP itself. Codecs, RTP counters and DTMF modes are not
tracked by the registry: answered as "" and 0, and the RTP flow structures
are left out; ``callerLocalIp``/``calleeLocalIp`` name the node holding the call.
"""

import zlib

import redis
from django.utils import timezone

from callcore.contract import EndReason, Keys, encode_disconnect
from security.api_clients import APIScope
from softswitch_portal.core.redis import Waiter, prefix, redis_client
from softswitch_portal.live.calls import answer_ms_of
from softswitch_portal.live.calls import live_calls as registry_calls
from softswitch_portal.switching.models import MappingGateway, RoutingGateway

from . import fields
from .codes import RetCode, VosError, invalid
from .registry import action

# E8's "setup" for a call not yet answered: VOS's keepTime < 0 is a state.
STATE_SETUP = -1


def vos_call_id(call_id: str) -> int:
    return zlib.crc32(call_id.encode()) & 0x7FFFFFFF


def _client():
    return redis_client(Waiter.PAGE, name="vos-api")


def live_calls(answered=None):
    """Every live call: Call-ID -> registry entry; ``answered`` (a dict) is filled with Call-ID -> answer ms."""
    kept = None if answered is None else {}
    calls = registry_calls(kept)
    if answered is not None:
        answered.update({call_id: answer_ms_of(value) for call_id, value in kept.items()})
    return calls


def info_current_call(call_id, entry, answer_ms, now_ms, names):
    return {
        "callerE164": entry.get("caller", ""),
        "calleeE164": entry.get("callee", ""),
        "callerGatewayId": names["mgw"].get(entry.get("mapping_gateway_id"), ""),
        "calleeGatewayId": ",".join(names["rgw"].get(i, "") for i in entry.get("route_gateway_ids") or ()),
        "connectedTime": answer_ms if answer_ms else entry.get("start_ms", 0),
        "keepTime": max(0, now_ms - answer_ms) if answer_ms else STATE_SETUP,
        "callCodec": "",
        "callerCodec": "",
        "calleeCodec": "",
        "callerRtpIp": "",
        "calleeRtpIp": "",
        "callerReceiveDtmf": 0,
        "callerSendDtmf": 0,
        "calleeReceiveDtmf": 0,
        "calleeSendDtmf": 0,
        "callerTerminal": "",
        "calleeTerminal": "",
        "callerCryptoType": 0,
        "calleeCryptoType": 0,
        "callerLocalIp": entry.get("node", ""),
        "calleeLocalIp": entry.get("node", ""),
        "callId": vos_call_id(call_id),
    }


@action("GetCurrentCall")
def get_current_call(call, body):
    callers = set(fields.strings(body, "callerE164s", default=[]))
    callees = set(fields.strings(body, "calleeE164s", default=[]))
    mapping_name = fields.string(body, "gatewayMappingName", default="")
    routing_name = fields.string(body, "gatewayRoutingName", default="")
    answered = {}
    try:
        calls = live_calls(answered)
    except redis.RedisError as exc:
        raise VosError(RetCode.UNAVAILABLE, f"the live state did not answer: {exc}") from None
    names = {
        "mgw": dict(MappingGateway.objects.values_list("id", "name")),
        "rgw": dict(RoutingGateway.objects.values_list("id", "name")),
    }
    now_ms = fields.ms(timezone.now())
    rows = []
    for call_id, entry in sorted(calls.items(), key=lambda item: item[1].get("start_ms", 0)):
        if callers and entry.get("caller") not in callers:
            continue
        if callees and entry.get("callee") not in callees:
            continue
        if mapping_name and names["mgw"].get(entry.get("mapping_gateway_id")) != mapping_name:
            continue
        routes = [names["rgw"].get(i) for i in entry.get("route_gateway_ids") or ()]
        if routing_name and routing_name not in routes:
            continue
        rows.append(info_current_call(call_id, entry, answered.get(call_id), now_ms, names))
    return {"infoCurrentCalls": rows}


@action("DisconnectCurrentCall", APIScope.WRITE)
def disconnect_current_call(call, body):
    raw = body.get("callIds")
    if not isinstance(raw, list) or not raw or not all(isinstance(i, int) and not isinstance(i, bool) for i in raw):
        raise invalid("callIds", "must be a non-empty array of integers (callId from GetCurrentCall).")
    wanted = set(raw)
    keys = Keys(prefix())
    try:
        calls = live_calls()
        found = {vos_call_id(call_id): (call_id, entry) for call_id, entry in calls.items()}
        missing = sorted(wanted - set(found))
        if missing:
            raise VosError(RetCode.NOT_FOUND, f"Not found, operation failed: no current call {missing[0]} (callIds).")
        client = _client()
        try:
            pipe = client.pipeline(transaction=False)
            for vos_id in sorted(wanted):
                call_id, entry = found[vos_id]
                request = encode_disconnect(call_id, EndReason.OPERATOR_DISCONNECT.code, f"vos:{call.who}")
                pipe.rpush(keys.disconnects(entry.get("node", "")), request)
            pipe.execute()
        finally:
            client.close()
    except redis.RedisError as exc:
        raise VosError(RetCode.UNAVAILABLE, f"the live state did not answer: {exc}") from None
    return {}
