"""The home page: what is configured, and what the switch did in the last day."""

import datetime as dt

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from billing.choices import AccountType
from billing.models import CDR, Account, Payment, Rate, RateTable
from callcore.contract import BillingMode
from security import alarms
from security.choices import BlacklistStatus
from security.models import BlackWhiteListGroup, DynamicBlacklistEntry, ListEntry
from softswitch_portal.core.models import SystemParameter
from softswitch_portal.generic.charts import svg_chart
from softswitch_portal.live import stats
from softswitch_portal.switching.models import (
    CallerNumberPool,
    MappingGateway,
    NumberTransformRule,
    Phone,
    RoutingGateway,
    RoutingSchedule,
)


def link(name, **params):
    url = reverse(name)
    return f"{url}?{urlencode(params)}" if params else url


def row(label, value, url, alert=False):
    return {"label": label, "value": value, "url": url, "alert": bool(alert)}


def enabled_of(counts):
    return f"{counts['enabled']} of {counts['total']} enabled"


def enabled_counts(model):
    return model.objects.aggregate(total=Count("pk"), enabled=Count("pk", filter=Q(enabled=True)))


@login_required
def home(request):
    now = timezone.now()
    since = now - dt.timedelta(hours=24)
    since_param = timezone.localtime(since).strftime("%Y-%m-%dT%H:%M")
    # Bounded by start_time so PostgreSQL reads only the last day's partitions.
    calls = CDR.objects.filter(start_time__gte=since).aggregate(
        total=Count("id"),
        answered=Count("id", filter=Q(hold_time_ms__gt=0)),
        illegal=Count("id", filter=Q(billing_mode=BillingMode.ILLEGAL)),
    )
    accounts = Account.objects.aggregate(
        customers=Count("pk", filter=Q(account_type=AccountType.CUSTOMER)),
        vendors=Count("pk", filter=Q(account_type=AccountType.VENDOR)),
        locked=Count("pk", filter=Q(locked=True)),
        negative=Count("pk", filter=Q(balance__lt=0)),
    )
    mapping = enabled_counts(MappingGateway)
    routing = enabled_counts(RoutingGateway)
    phones = enabled_counts(Phone)
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    recent = {"start_time_after": since_param}

    areas = [
        (
            "Traffic, last 24 hours",
            [
                row("Calls", calls["total"], link("billing:cdr_list", **recent)),
                row("Answered", calls["answered"], link("billing:cdr_list", **recent, min_hold_seconds=0.001)),
                row(
                    "Illegal calls",
                    calls["illegal"],
                    link("billing:cdr_list", **recent, billing_mode=BillingMode.ILLEGAL.value),
                    alert=calls["illegal"],
                ),
            ],
        ),
        (
            "Billing",
            [
                row("Customer accounts", accounts["customers"], link("billing:account_list", account_type="customer")),
                row("Vendor accounts", accounts["vendors"], link("billing:account_list", account_type="vendor")),
                row(
                    "Below zero",
                    accounts["negative"],
                    link("billing:account_list", balance_max=0),
                    alert=accounts["negative"],
                ),
                row("Locked", accounts["locked"], link("billing:account_list", locked="true")),
                row(
                    "Payments today",
                    Payment.objects.filter(created__gte=midnight).count(),
                    link("billing:payment_list", created_after=midnight.strftime("%Y-%m-%dT%H:%M")),
                ),
                row("Rate tables", RateTable.objects.count(), link("billing:ratetable_list")),
                row("Rates", Rate.objects.count(), link("billing:rate_list")),
            ],
        ),
        (
            "Switching",
            [
                row("Mapping gateways", enabled_of(mapping), link("switching:mappinggateway_list")),
                row("Routing gateways", enabled_of(routing), link("switching:routinggateway_list")),
                row("Phones", enabled_of(phones), link("switching:phone_list")),
                row(
                    "Number transforms", NumberTransformRule.objects.count(), link("switching:numbertransformrule_list")
                ),
                row("Routing schedules", RoutingSchedule.objects.count(), link("switching:routingschedule_list")),
                row("Caller number pools", CallerNumberPool.objects.count(), link("switching:callernumberpool_list")),
                row("Parameters set", SystemParameter.objects.count(), link("switching:systemparameter_list")),
            ],
        ),
        (
            "Security",
            [
                row(
                    "Black/white lists", BlackWhiteListGroup.objects.count(), link("security:blackwhitelistgroup_list")
                ),
                row("List entries", ListEntry.objects.count(), link("security:listentry_list")),
            ],
        ),
    ]
    return render(request, "home.html", {"areas": areas, "since": since, "traffic": traffic_chart(now), **attention()})


def traffic_chart(now):
    """Calls per hour over the last 24 hours (live.stats, bounded to the last two days' partitions)."""
    hours = stats.hourly(days=2, now=now)[-24:]
    points = [(timezone.localtime(h["hour"]).strftime("%H:00"), h["attempts"]) for h in hours]
    return svg_chart(points, title="Calls")


def attention():
    """What an operator acts on first: the open alarms (counts by severity, the most pressing few) and the
    dynamic blacklist entries awaiting review (the review queue)."""
    counts = alarms.open_counts()
    open_alarms = link("security:alarm_list", state="open")
    return {
        "alarm_counts": counts,
        "alarm_links": {
            "open": open_alarms,
            "unacknowledged": link("security:alarm_list", state="unacknowledged"),
            **{
                severity: link("security:alarm_list", state="open", severity=severity)
                for severity in ("critical", "warning", "info")
            },
        },
        "latest_alarms": list(alarms.latest_open(5)) if counts["total"] else [],
        "awaiting_review": DynamicBlacklistEntry.objects.filter(status=BlacklistStatus.AWAITING_REVIEW).count(),
        "awaiting_review_url": link("security:dynamicblacklistentry_list", status=BlacklistStatus.AWAITING_REVIEW),
    }
