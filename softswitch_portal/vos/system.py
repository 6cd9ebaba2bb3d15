"""Alarms, IP limits and the switch's nodes.

GetAlarmCurrent answers the open alarms (security's Alarm model) as
InfoAlarmCurrent: ``type`` the E11 code of the alarm's kind where VOS has
one (0 otherwise), ``level`` 0 info, 1 warning, 3 critical, ``name`` what it
is about, ``confirmUser``/``confirmTime`` its acknowledgement. IP limits
(CreateIpLimit, DeleteIpLimit) have no counterpart yet: source bans are
made by the call core itself and a portal-managed range list does not
exist, so both answer NOT_SUPPORTED. GetSoftSwitch lists the call-core nodes
by their heartbeats; GetPerformance counts the live calls and the CDRs
waiting in the stream.
"""

import redis

from callcore.contract import Keys
from security.api_clients import APIScope
from security.models import Alarm
from softswitch_portal.core.redis import Waiter, prefix, redis_client

from . import fields
from .codes import RetCode, VosError
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


IP_LIMITS = (
    "IP limits have no counterpart yet: this switch bans sources by itself (floods, scanners, guessing) and keeps "
    "no list of address ranges managed from outside."
)


@action("CreateIpLimit", APIScope.WRITE)
def create_ip_limit(call, body):
    fields.string(body, "ip", allow_empty=False)
    raise VosError(RetCode.NOT_SUPPORTED, IP_LIMITS)


@action("DeleteIpLimit", APIScope.WRITE)
def delete_ip_limit(call, body):
    fields.string(body, "ips", allow_empty=False)
    raise VosError(RetCode.NOT_SUPPORTED, IP_LIMITS)


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
