"""Alarms, IP limits and the switch's nodes.

GetAlarmCurrent answers the open alarms (security's Alarm model) as
InfoAlarmCurrent: ``type`` the E11 code of the alarm's kind where VOS has
one (0 otherwise), ``level`` 0 info, 1 warning, 3 critical, ``name`` what it
is about, ``confirmUser``/``confirmTime`` its acknowledgement. IP limits
(CreateIpLimit, DeleteIpLimit) are the operators' IP-country ranges of the
phones' geofence (security's IpCountryRange): ``ip`` the start, ``count``
the addresses (1 if left out), ``area`` the two-letter country code (VOS's
area name has no other counterpart, so it is required), ``memo``; each
change is published with the IP-country table. DeleteIpLimit's ``ips`` takes
one start IP or several, comma-separated. GetSoftSwitch lists the call-core nodes
by their heartbeats; GetPerformance counts the live calls and the CDRs
waiting in the stream.
"""

import ipaddress

import redis
from django.core.exceptions import ValidationError
from django.db import transaction

from callcore.contract import Keys
from security.api_clients import APIScope
from security.models import Alarm, IpCountryRange
from softswitch_portal.core.redis import Waiter, prefix, redis_client

from . import fields
from .codes import RetCode, VosError, invalid, not_found
from .registry import action

# E11 codes of the alarm kinds that have one.
ALARM_TYPES = {
    "illegal_call_burst": 20020,
    "asr_drop": 20000,
    "acd_drop": 20001,
    "traffic_spike": 20023,
    "long_call": 20016,
    "low_balance": 20007,
    "ingest_lag": 20006,
    "node_silent": 20018,
}
ALARM_LEVELS = {"info": 0, "warning": 1, "critical": 3}


def info_alarm(alarm):
    figures = alarm.figures if isinstance(alarm.figures, dict) else {}
    value = figures.get("value", figures.get("seen", 0))
    return {
        "id": alarm.pk,
        "type": ALARM_TYPES.get(alarm.kind, 0),
        "level": ALARM_LEVELS.get(alarm.severity, 0),
        "name": str(alarm),
        "startTime": fields.ms(alarm.first_seen),
        "stopTime": fields.ms(alarm.resolved_at),
        "value": float(value) if isinstance(value, int | float) else 0.0,
        "upper": None,
        "lower": None,
        "confirmUser": alarm.acknowledged_by.get_username() if alarm.acknowledged_by_id else None,
        "confirmTime": fields.ms(alarm.acknowledged_at),
        "memo": alarm.subject,
    }


@action("GetAlarmCurrent")
def get_alarm_current(call, body):
    alarms = Alarm.objects.filter(resolved_at__isnull=True).select_related("acknowledged_by").order_by("-last_seen")
    return {"infoAlarmCurrents": [info_alarm(alarm) for alarm in alarms[:1000]]}


# VOS's field names for the model's, in the errors the model's validation raises.
IP_LIMIT_FIELDS = {"start_ip": "ip", "count": "count", "country": "area", "memo": "memo"}


def ipv4(text, name):
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise invalid(name, f"{text!r} is not an IPv4 address.") from None


@action("CreateIpLimit", APIScope.WRITE)
def create_ip_limit(call, body):
    start = ipv4(fields.string(body, "ip", allow_empty=False), "ip")
    count = fields.integer(body, "count", minimum=1, maximum=1 << 32, default=1)
    area = fields.string(body, "area", default="")
    if not area:
        raise invalid("area", "is required here: the two-letter country code the range is placed in.")
    if IpCountryRange.objects.filter(start_ip=start).exists():
        raise VosError(RetCode.ALREADY_EXISTS, f"an IP limit starting at {start} already exists.")
    limit = IpCountryRange(start_ip=start, count=count, country=area, memo=fields.string(body, "memo", default=""))
    try:
        limit.full_clean()
    except ValidationError as exc:
        parts = [f"{IP_LIMIT_FIELDS.get(f, f)}: {' '.join(m)}" for f, m in exc.message_dict.items()]
        raise VosError(RetCode.INVALID_FIELD, "; ".join(parts)) from None
    limit.save()
    return {}


@action("DeleteIpLimit", APIScope.WRITE)
def delete_ip_limit(call, body):
    starts = [ipv4(ip.strip(), "ips") for ip in fields.string(body, "ips", allow_empty=False).split(",") if ip.strip()]
    if not starts:
        raise invalid("ips", "name the start IP of at least one range.")
    with transaction.atomic():
        found = {r.start_ip: r for r in IpCountryRange.objects.select_for_update().filter(start_ip__in=starts)}
        missing = [ip for ip in starts if ip not in found]
        if missing:
            raise not_found(f"no IP limit starting at {', '.join(missing)} (ips)")
        for limit in found.values():
            limit.delete()
    return {}


def _read(*commands):
    client = redis_client(Waiter.PAGE, name="vos-api")
    try:
        pipe = client.pipeline(transaction=False)
        for name, *args in commands:
            getattr(pipe, name)(*args)
        return pipe.execute()
    except redis.RedisError as exc:
        raise VosError(RetCode.UNAVAILABLE, f"the live state did not answer: {exc}") from None
    finally:
        client.close()


@action("GetSoftSwitch")
def get_soft_switch(call, body):
    (beats,) = _read(("hgetall", Keys(prefix()).heartbeats))
    rows = []
    for node, last_ms in sorted(beats.items()):
        rows.append({"name": node.decode(), "identification": node.decode(), "createTime": 0,
                     "accessTime": int(last_ms), "accessAddress": None, "memo": ""})  # fmt: skip
    return {"infoSoftSwitches": rows}


@action("GetPerformance")
def get_performance(call, body):
    keys = Keys(prefix())
    calls, waiting = _read(("hlen", keys.live_calls), ("xlen", keys.cdr_stream))
    return {"infoPerformance": {"callSize": calls, "cdrQueueSize": waiting}}
