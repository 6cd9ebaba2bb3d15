"""Fee rate groups (rate tables) and their rates.

A group is a rate table (``name``, ``memo`` its description; ``fakeMinute``
has no counterpart). A rate: ``feePrefix`` and ``areaCode`` its prefix,
``areaName`` its area, ``period`` its next period in seconds and ``fee`` the
price of one such period (VOS charges ``fee`` per ``period``); the first
period and the connect fee are the first and second ``infoFeeRateSections``
when they differ from it. ``type`` (E2 call level) has no counterpart: 0.
"""

from decimal import Decimal

from django.db import transaction

from billing.models import Rate, RateTable
from security.api_clients import APIScope

from . import fields
from .codes import RetCode, VosError, not_found
from .customers import save
from .gateways import delete
from .registry import action


def find_group(name, field="name"):
    table = RateTable.objects.filter(name=name).first()
    if table is None:
        raise not_found(f"no fee rate group {name!r} ({field})")
    return table


@action("GetFeeRateGroup")
def get_fee_rate_group(call, body):
    names = fields.strings(body, "names", default=None)
    queryset = RateTable.objects.order_by("name")
    if names:
        queryset = queryset.filter(name__in=names)
    return {"infoFeeRateGroups": [{"name": t.name, "memo": t.description} for t in queryset]}


@action("CreateFeeRateGroup", APIScope.WRITE)
def create_fee_rate_group(call, body):
    name = fields.string(body, "name", allow_empty=False)
    fields.integer(body, "fakeMinute", default=None)
    if RateTable.objects.filter(name=name).exists():
        raise VosError(RetCode.ALREADY_EXISTS, f"fee rate group {name!r} already exists.")
    save(RateTable(name=name, description=fields.string(body, "memo", default="")))
    return {}


@action("ModifyFeeRateGroup", APIScope.WRITE)
def modify_fee_rate_group(call, body):
    table = find_group(fields.string(body, "name", allow_empty=False))
    if "memo" in body:
        table.description = fields.string(body, "memo")
    save(table)
    return {}


@action("DeleteFeeRateGroup", APIScope.WRITE)
def delete_fee_rate_group(call, body):
    table = find_group(fields.string(body, "name", allow_empty=False))
    with transaction.atomic():
        return delete(table)


def per_period(rate, seconds):
    return float((rate.price_per_minute * Decimal(seconds) / 60).quantize(Decimal("0.000001")))


def info_fee_rate(rate):
    sections = []
    if rate.first_period != rate.next_period:
        sections.append({"fee": per_period(rate, rate.first_period), "time": rate.first_period, "position": 0})
    if rate.connect_fee:
        sections.append({"fee": float(rate.connect_fee), "time": 0, "position": len(sections)})
    return {
        "feePrefix": rate.prefix,
        "areaCode": rate.prefix,
        "type": 0,
        "areaName": rate.area,
        "infoFeeRateSections": sections,
        "fee": per_period(rate, rate.next_period),
        "period": rate.next_period,
        "lockType": 0,
        "ivrFee": 0.0,
        "ivrPeriod": 0,
    }


@action("GetFeeRate")
def get_fee_rate(call, body):
    table = find_group(fields.string(body, "feeRateGroup", allow_empty=False), "feeRateGroup")
    codes = fields.strings(body, "areaCodes", default=None)
    rates = Rate.objects.filter(rate_table=table).order_by("prefix", "valid_from")
    if codes:
        rates = rates.filter(prefix__in=codes)
    return {"infoFeeRates": [info_fee_rate(rate) for rate in rates]}
