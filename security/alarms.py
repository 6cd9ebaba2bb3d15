"""Alarms: raised by the detectors below and the fraud rules, one open alarm per condition, mailed with a throttle.

``raise_alarm`` is the one way in: an upsert on the open alarm of the
condition's dedupe key (kind, rule, subject), so a condition seen again
counts on the open alarm rather than adding a row, whoever raises it and
however often. When the alarm's e-mail is due (never sent, or the last one
older than SS_ALARM_EMAIL_THROTTLE) it queues ``security.tasks.notify_alarm``,
which mails the account's alarm address or the operators' with a digest of
the repeats since the last mail, and posts the alarm as JSON to
settings.ALARM_POST_URL when one is set (VOS3000's OUT_POST_URL).

The detectors run as beat jobs (security.tasks). Each gathers the conditions
that hold now and hands them to ``reconcile``, which raises each one and
closes (``resolved_at``) the open alarms of its kind whose condition is gone.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec
from celery import current_app
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Case, Count, F, Max, Min, Q, Sum, Value, When
from django.utils import timezone

from billing.models import CDR, Account
from callcore.contract import BillingMode, FraudRule, Keys, Severity, SubjectKind, parse_subject, rule_params
from softswitch_portal.core.models import SystemParameter

from .choices import AlarmKind, AlarmSeverity, AlarmSubject
from .models import Alarm

log = logging.getLogger("security.alarms")

# By name: the task module imports this one, never the other way round.
NOTIFY_TASK = "security.tasks.notify_alarm"

# VOS3000's alarm types (its E11 codes) and levels, for the JSON post; kinds it has no type for post 0.
VOS_TYPES = {
    AlarmKind.ILLEGAL_CALL_BURST: 20020,
    AlarmKind.ASR_DROP: 20000,
    AlarmKind.ACD_DROP: 20001,
    AlarmKind.TRAFFIC_SPIKE: 20023,
    AlarmKind.LONG_CALL: 20016,
    AlarmKind.LOW_BALANCE: 20007,
    AlarmKind.INGEST_LAG: 20006,
    AlarmKind.NODE_SILENT: 20018,
}
VOS_LEVELS = {AlarmSeverity.INFO: 0, AlarmSeverity.WARNING: 1, AlarmSeverity.CRITICAL: 3}

# The fraud kinds are raised by events, not by a detector that sees their condition clear.
EVENT_KINDS = (AlarmKind.FRAUD_WARNING, AlarmKind.FRAUD_CRITICAL)

# The subject of the alarms about the switch's own CDR pipeline.
INGEST_SUBJECT = "cdr-ingest"

# Figures keep at most this many examples (calls, call ids): an alarm is read, not searched.
EXAMPLES = 20


@dataclass
class Condition:
    """One condition a detector sees now: what ``raise_alarm`` takes."""

    kind: str
    severity: str
    subject_kind: str
    subject: str
    figures: dict[str, Any] = field(default_factory=dict)
    rule: str = ""
    account_id: int | None = None
    mapping_gateway_id: int | None = None
    routing_gateway_id: int | None = None

    @property
    def key(self) -> str:
        return dedupe_key(self.kind, self.rule, self.subject_kind, self.subject, self.mapping_gateway_id)


def dedupe_key(kind, rule, subject_kind, subject, mapping_gateway_id=None) -> str:
    """What makes two raises the same condition; a gateway's own (standalone) block differs from a central one."""
    scope = "" if mapping_gateway_id is None else str(mapping_gateway_id)
    return f"{kind}|{rule}|{subject_kind}|{subject}|{scope}"


def stream_sort_key(stream_id: str | bytes) -> str:
    """A Redis stream id as text that sorts in the stream's order (``9-0`` before ``10-0``)."""
    if isinstance(stream_id, bytes):
        stream_id = stream_id.decode()
    ms, _, seq = stream_id.partition("-")
    return f"{int(ms):020d}-{int(seq or 0):010d}"


# An upsert on the open alarm of the key; a missing account or gateway is left empty rather than refused,
# as an event may name one deleted since. The WHERE drops a fraud event counted already (redelivered).
_UPSERT_SQL = """
INSERT INTO security_alarm (
    kind, severity, rule, subject_kind, subject, account_id, mapping_gateway_id, routing_gateway_id,
    figures, first_seen, last_seen, count, dedupe_key, notified_count, last_event_id
) VALUES (
    %(kind)s, %(severity)s, %(rule)s, %(subject_kind)s, %(subject)s,
    (SELECT id FROM billing_account WHERE id = %(account_id)s),
    (SELECT id FROM switching_mappinggateway WHERE id = %(mapping_gateway_id)s),
    (SELECT id FROM switching_routinggateway WHERE id = %(routing_gateway_id)s),
    %(figures)s::jsonb, %(now)s, %(now)s, 1, %(key)s, 0, %(event_id)s
)
ON CONFLICT (dedupe_key) WHERE resolved_at IS NULL DO UPDATE SET
    count = security_alarm.count + 1,
    last_seen = GREATEST(security_alarm.last_seen, EXCLUDED.last_seen),
    severity = EXCLUDED.severity,
    figures = EXCLUDED.figures,
    last_event_id = GREATEST(security_alarm.last_event_id, EXCLUDED.last_event_id)
WHERE EXCLUDED.last_event_id = '' OR security_alarm.last_event_id < EXCLUDED.last_event_id
RETURNING id, notified_at
"""


def raise_alarm(
    kind: str,
    severity: str,
    subject_kind: str,
    subject: str,
    *,
    figures: dict[str, Any] | None = None,
    rule: str = "",
    account_id: int | None = None,
    mapping_gateway_id: int | None = None,
    routing_gateway_id: int | None = None,
    event_id: str = "",
    fresh: bool = False,
    now: dt.datetime | None = None,
) -> int | None:
    """Open the alarm of this condition, or count a repeat on the one open; its id, or None for an event
    counted already.

    ``fresh``: this is a new occurrence even if an alarm is open (a balance that crossed its threshold
    again must have been above it in between), so the open one is closed first. ``event_id``: the fraud
    event's stream id, so a redelivered event counts once. Queues the e-mail when it is due.
    """
    now = now or timezone.now()
    key = dedupe_key(kind, rule, subject_kind, subject, mapping_gateway_id)
    params = {
        "kind": str(kind),
        "severity": str(severity),
        "rule": str(rule),
        "subject_kind": str(subject_kind),
        "subject": str(subject)[:200],
        "account_id": account_id,
        "mapping_gateway_id": mapping_gateway_id,
        "routing_gateway_id": routing_gateway_id,
        "figures": json.dumps(figures or {}, cls=DjangoJSONEncoder),
        "now": now,
        "key": key[:300],
        "event_id": stream_sort_key(event_id) if event_id else "",
    }
    with transaction.atomic():
        if fresh:
            Alarm.objects.filter(dedupe_key=params["key"], resolved_at__isnull=True).update(resolved_at=now)
        with connection.cursor() as cursor:
            cursor.execute(_UPSERT_SQL, params)
            row = cursor.fetchone()
    if row is None:
        return None
    alarm_id, notified_at = row
    if notified_at is None or notified_at <= now - dt.timedelta(seconds=throttle_seconds()):
        transaction.on_commit(lambda: queue_notify(alarm_id), robust=True)
    return alarm_id


def queue_notify(alarm_id: int) -> None:
    app = current_app
    if app.conf.task_always_eager and NOTIFY_TASK not in app.tasks:
        # To run here the task must be loaded, as a worker loads its task modules at start.
        app.loader.import_default_modules()
    app.signature(NOTIFY_TASK, args=(alarm_id,)).delay()


def reconcile(kind: str, conditions: list[Condition], now: dt.datetime | None = None) -> dict[str, int]:
    """Raise each condition of ``kind`` seen now and close the open alarms of ``kind`` not among them.

    Returns {"raised": n, "resolved": n}.
    """
    now = now or timezone.now()
    for condition in conditions:
        assert condition.kind == kind, (condition.kind, kind)
        raise_alarm(
            condition.kind,
            condition.severity,
            condition.subject_kind,
            condition.subject,
            figures=condition.figures,
            rule=condition.rule,
            account_id=condition.account_id,
            mapping_gateway_id=condition.mapping_gateway_id,
            routing_gateway_id=condition.routing_gateway_id,
            now=now,
        )
    still = {condition.key[:300] for condition in conditions}
    resolved = (
        Alarm.objects.filter(kind=kind, resolved_at__isnull=True).exclude(dedupe_key__in=still).update(resolved_at=now)
    )
    return {"raised": len(conditions), "resolved": resolved}


def acknowledge(alarm_ids, user, now: dt.datetime | None = None) -> int:
    """Record who acknowledged the alarms not acknowledged yet, and when; how many."""
    now = now or timezone.now()
    return Alarm.objects.filter(pk__in=alarm_ids, acknowledged_at__isnull=True).update(
        acknowledged_by=user, acknowledged_at=now
    )


def close(alarm_ids, user, now: dt.datetime | None = None) -> int:
    """Close open alarms by hand (a node taken out of service never beats again); acknowledges them too."""
    now = now or timezone.now()
    acknowledge(alarm_ids, user, now)
    return Alarm.objects.filter(pk__in=alarm_ids, resolved_at__isnull=True).update(resolved_at=now)


def param(name: str) -> int:
    return int(SystemParameter.current(name))


def throttle_seconds() -> int:
    return param("SS_ALARM_EMAIL_THROTTLE")


# ---------------------------------------------------------------------------
# Fraud events and low balances


def raise_fraud_alarm(event, stream_id: str | bytes | None = None) -> int | None:
    """The alarm of a fraud detection (``callcore.contract.fraud.FraudEvent``): a warning or critical alarm per
    rule and subject; ``stream_id`` (its ``Keys.fraud_events`` entry) makes a redelivered event count once."""
    critical = event.severity == Severity.CRITICAL
    try:
        subject_kind, value = parse_subject(event.subject)
    except ValueError:
        log.warning("fraud event of %s names no subject we know: %r; alarmed as a number", event.rule, event.subject)
        subject_kind, value = SubjectKind.NUMBER, event.subject
    account_id = event.account_id
    if subject_kind in (SubjectKind.ACCOUNT, SubjectKind.ACCOUNT_HIGH_RISK):
        account_id = int(value)
    figures = {
        **event.figures,
        "rule": event.rule,
        "scope": event.scope,
        "blocked": event.blocked,
        "ttl_s": event.ttl_s,
        "node": event.node,
        "detected_ms": event.detected_ms,
        "evidence": list(event.evidence[:EXAMPLES]),
    }
    return raise_alarm(
        AlarmKind.FRAUD_CRITICAL if critical else AlarmKind.FRAUD_WARNING,
        AlarmSeverity.CRITICAL if critical else AlarmSeverity.WARNING,
        str(subject_kind),
        value,
        figures=figures,
        rule=event.rule,
        account_id=account_id,
        mapping_gateway_id=event.mapping_gateway_id if event.scope == "gateway" else None,
        event_id=stream_id or "",
        now=dt.datetime.fromtimestamp(event.detected_ms / 1000, tz=dt.UTC) if event.detected_ms else None,
    )


def raise_low_balance(account_id: int, balance, threshold) -> int | None:
    """The alarm of a customer whose balance crossed its threshold downwards (billing.balances queues it).

    Each crossing is a new alarm: the balance was above the threshold in between.
    """
    account = Account.objects.filter(pk=account_id).only("name", "credit_limit").first()
    if account is None:
        return None
    return raise_alarm(
        AlarmKind.LOW_BALANCE,
        AlarmSeverity.WARNING,
        AlarmSubject.ACCOUNT,
        str(account_id),
        figures={"balance": str(balance), "threshold": str(threshold), "credit_limit": str(account.credit_limit)},
        account_id=account_id,
        fresh=True,
    )


# ---------------------------------------------------------------------------
# E-mail and the JSON post


def operator_addresses() -> list[str]:
    """settings.ALARM_EMAIL_TO, else every active staff user's e-mail."""
    if settings.ALARM_EMAIL_TO:
        return list(settings.ALARM_EMAIL_TO)
    staff = get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="")
    return sorted(set(staff.values_list("email", flat=True)))


def recipients(alarm: Alarm) -> list[list[str]]:
    """The messages to send, each a list of addresses: the account's alarm address when it has one, and the
    operators' unless the alarm is the customer's own low balance; never one message across both."""
    groups = []
    own = alarm.account.alarm_email if alarm.account is not None else ""
    if own:
        groups.append([own])
    if not own or alarm.kind != AlarmKind.LOW_BALANCE:
        operators = operator_addresses()
        if operators:
            groups.append(operators)
    return groups


def headline(alarm: Alarm) -> str:
    f = alarm.figures or {}
    match alarm.kind:
        case AlarmKind.LOW_BALANCE:
            return f"{alarm.subject_label} is at {f.get('balance')}"
        case AlarmKind.FRAUD_WARNING | AlarmKind.FRAUD_CRITICAL:
            action = "blocked" if f.get("blocked") else "not blocked"
            return f"{alarm.rule} on {alarm.subject_label} ({action})"
        case _:
            return alarm.subject_label


def message(alarm: Alarm, repeats: int, since: dt.datetime | None) -> tuple[str, str]:
    """The e-mail's subject and body: the alarm, its figures and the digest of what repeated since ``since``."""
    subject = f"[{alarm.get_severity_display()}] {alarm.get_kind_display()}: {headline(alarm)}"
    lines = [
        f"{alarm.get_kind_display()} ({alarm.get_severity_display().lower()}) on "
        f"{alarm.get_subject_kind_display().lower()} {alarm.subject_label}.",
        "",
        f"First seen: {timezone.localtime(alarm.first_seen):%Y-%m-%d %H:%M:%S}",
        f"Last seen:  {timezone.localtime(alarm.last_seen):%Y-%m-%d %H:%M:%S}",
        f"Seen {alarm.count} time{'s' if alarm.count != 1 else ''} in all.",
    ]
    if since is not None:
        lines.append(
            f"Digest: seen {repeats} more time{'s' if repeats != 1 else ''} since the last e-mail "
            f"({timezone.localtime(since):%Y-%m-%d %H:%M:%S})."
        )
    if alarm.resolved_at is not None:
        lines.append(f"Cleared:    {timezone.localtime(alarm.resolved_at):%Y-%m-%d %H:%M:%S}")
    if alarm.figures:
        lines += ["", "Figures:"]
        lines += [f"  {name}: {value}" for name, value in alarm.figures.items()]
    return subject, "\n".join(lines) + "\n"


def post_payload(alarm: Alarm, repeats: int) -> dict[str, Any]:
    """VOS3000's AlarmCurrentReport shape (one InfoAlarmCurrent), with this switch's own fields beside."""
    ms = lambda moment: int(moment.timestamp() * 1000) if moment else None  # noqa: E731
    return {
        "infoAlarmCurrents": [
            {
                "id": alarm.pk,
                "type": VOS_TYPES.get(alarm.kind, 0),
                "level": VOS_LEVELS.get(alarm.severity, 0),
                "name": f"{alarm.get_kind_display()}: {headline(alarm)}",
                "startTime": ms(alarm.first_seen),
                "stopTime": ms(alarm.resolved_at),
                "confirmUser": alarm.acknowledged_by.get_username() if alarm.acknowledged_by else None,
                "confirmTime": ms(alarm.acknowledged_at),
                "memo": alarm.rule,
                "kind": alarm.kind,
                "severity": alarm.severity,
                "subjectKind": alarm.subject_kind,
                "subject": alarm.subject,
                "subjectName": alarm.subject_label,
                "figures": alarm.figures,
                "count": alarm.count,
                "repeats": repeats,
                "lastTime": ms(alarm.last_seen),
            }
        ]
    }


def post_json(url: str, payload: dict[str, Any], timeout: float) -> bool:
    """POST ``payload`` as JSON; False (logged) on any failure: an unreachable receiver never stops the e-mail."""
    body = json.dumps(payload, cls=DjangoJSONEncoder).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(65536)
        return True
    except (urllib.error.URLError, OSError, ValueError) as exc:
        log.warning("alarm post to %s failed: %s", url, exc)
        return False


def notify(alarm_id: int, now: dt.datetime | None = None) -> bool:
    """Mail (and post) the alarm if its e-mail is due and something happened since the last one; whether it did.

    The claim (``notified_at``, ``notified_count``) is taken under the row's lock, so of two workers only one
    mails a window; the mail is sent after the lock is let go, so the ingest's raises never wait on a mail server.
    """
    now = now or timezone.now()
    throttle = dt.timedelta(seconds=throttle_seconds())
    with transaction.atomic():
        alarm = Alarm.objects.select_for_update(of=("self",)).select_related("account").filter(pk=alarm_id).first()
        if alarm is None:
            return False
        since, already = alarm.notified_at, alarm.notified_count
        if since is not None and (since > now - throttle or alarm.count <= already):
            return False
        alarm.notified_at, alarm.notified_count = now, alarm.count
        alarm.save(update_fields=["notified_at", "notified_count"])
    repeats = alarm.count - already
    subject, body = message(alarm, repeats, since)
    try:
        for addresses in recipients(alarm):
            send_mail(subject=subject, message=body, from_email=None, recipient_list=addresses)
    except Exception:
        log.exception("alarm %s e-mail not sent; it is tried again at the next digest", alarm_id)
        Alarm.objects.filter(pk=alarm_id, notified_at=now).update(notified_at=since, notified_count=already)
        return False
    if settings.ALARM_POST_URL:
        post_json(settings.ALARM_POST_URL, post_payload(alarm, repeats), settings.ALARM_POST_TIMEOUT)
    return True


def notify_due(now: dt.datetime | None = None) -> int:
    """Mail what came due: open alarms with repeats since their last e-mail older than the throttle (the digest),
    and any whose first e-mail was never sent (its task lost); how many were mailed."""
    now = now or timezone.now()
    due = Alarm.objects.filter(
        Q(notified_at__isnull=True) | Q(notified_at__lte=now - dt.timedelta(seconds=throttle_seconds())),
        resolved_at__isnull=True,
        count__gt=F("notified_count"),
    ).values_list("pk", flat=True)
    return sum(notify(alarm_id, now) for alarm_id in list(due))


# ---------------------------------------------------------------------------
# Detectors over the CDRs (PostgreSQL)


def detect_illegal_bursts(now: dt.datetime | None = None) -> dict[str, int]:
    """Source IPs that sent at least SS_ALARM_ILLEGAL_CALL_LIMIT illegal calls in the last
    SS_ALARM_ILLEGAL_CALL_WINDOW seconds (their CDRs, billing mode illegal)."""
    now = now or timezone.now()
    limit, window = param("SS_ALARM_ILLEGAL_CALL_LIMIT"), param("SS_ALARM_ILLEGAL_CALL_WINDOW")
    bursts = (
        CDR.objects.filter(
            billing_mode=BillingMode.ILLEGAL,
            start_time__gte=now - dt.timedelta(seconds=window),
            start_time__lte=now,
            caller_ip__isnull=False,
        )
        .values("caller_ip")
        .annotate(calls=Count("id"), first=Min("start_time"), last=Max("start_time"))
        .filter(calls__gte=limit)
    )
    conditions = [
        Condition(
            AlarmKind.ILLEGAL_CALL_BURST,
            AlarmSeverity.WARNING,
            AlarmSubject.IP,
            burst["caller_ip"],
            figures={
                "calls": burst["calls"],
                "window_s": window,
                "limit": limit,
                "first_call": burst["first"],
                "last_call": burst["last"],
            },
        )
        for burst in bursts
    ]
    return reconcile(AlarmKind.ILLEGAL_CALL_BURST, conditions, now)


BASELINE_DAYS = 7


def hour_and_baseline(now: dt.datetime) -> tuple[Q, Q]:
    """The last hour, and the same hour on each of the BASELINE_DAYS days before (start times)."""
    hour = dt.timedelta(hours=1)
    current = Q(start_time__gte=now - hour, start_time__lt=now)
    baseline = Q()
    for days in range(1, BASELINE_DAYS + 1):
        end = now - dt.timedelta(days=days)
        baseline |= Q(start_time__gte=end - hour, start_time__lt=end)
    return current, baseline


def _split(rows, key):
    """{id: {"now": figures, "base": figures}} of rows grouped by ``key`` and ``is_now``."""
    out: dict[int, dict[str, dict]] = defaultdict(dict)
    for row in rows:
        out[row[key]]["now" if row["is_now"] else "base"] = row
    return out


def percent(part, whole) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def detect_gateway_drops(now: dt.datetime | None = None) -> dict[str, dict[str, int]]:
    """Routing gateways whose ASR or ACD over the last hour fell to SS_ALARM_ASR_DROP_PERCENT (ACD:
    SS_ALARM_ACD_DROP_PERCENT) of their own baseline, the same hour over the past week.

    A call counts under the routing gateway that carried it last. Quiet gateways stay quiet: both the hour and
    the baseline need SS_ALARM_GATEWAY_MIN_CALLS attempts (for the ACD, answered calls).
    """
    now = now or timezone.now()
    floor = param("SS_ALARM_GATEWAY_MIN_CALLS")
    asr_drop, acd_drop = param("SS_ALARM_ASR_DROP_PERCENT"), param("SS_ALARM_ACD_DROP_PERCENT")
    current, baseline = hour_and_baseline(now)
    rows = (
        CDR.objects.filter(current | baseline, routing_gateway__isnull=False)
        .annotate(is_now=Case(When(current, then=Value(True)), default=Value(False)))
        .values("routing_gateway_id", "is_now")
        .annotate(
            attempts=Count("id"),
            answered=Count("id", filter=Q(hold_time_ms__gt=0)),
            talk_ms=Sum("hold_time_ms", filter=Q(hold_time_ms__gt=0)),
        )
    )
    asr, acd = [], []
    for gateway_id, seen in _split(rows, "routing_gateway_id").items():
        hour, base = seen.get("now"), seen.get("base")
        if hour is None or base is None:
            continue
        if hour["attempts"] >= floor and base["attempts"] >= floor:
            asr_now = percent(hour["answered"], hour["attempts"])
            asr_base = percent(base["answered"], base["attempts"])
            if asr_now <= asr_base * asr_drop / 100 and asr_base > 0:
                asr.append(
                    Condition(
                        AlarmKind.ASR_DROP,
                        AlarmSeverity.WARNING,
                        AlarmSubject.ROUTING_GATEWAY,
                        str(gateway_id),
                        routing_gateway_id=gateway_id,
                        figures={
                            "asr_percent": asr_now,
                            "baseline_asr_percent": asr_base,
                            "attempts": hour["attempts"],
                            "baseline_attempts": base["attempts"],
                            "drop_percent": asr_drop,
                        },
                    )
                )
        if hour["answered"] >= floor and base["answered"] >= floor:
            acd_now = round(hour["talk_ms"] / hour["answered"] / 1000, 1)
            acd_base = round(base["talk_ms"] / base["answered"] / 1000, 1)
            if acd_now <= acd_base * acd_drop / 100 and acd_base > 0:
                acd.append(
                    Condition(
                        AlarmKind.ACD_DROP,
                        AlarmSeverity.WARNING,
                        AlarmSubject.ROUTING_GATEWAY,
                        str(gateway_id),
                        routing_gateway_id=gateway_id,
                        figures={
                            "acd_s": acd_now,
                            "baseline_acd_s": acd_base,
                            "answered": hour["answered"],
                            "baseline_answered": base["answered"],
                            "drop_percent": acd_drop,
                        },
                    )
                )
    return {"asr": reconcile(AlarmKind.ASR_DROP, asr, now), "acd": reconcile(AlarmKind.ACD_DROP, acd, now)}


def detect_traffic_spikes(now: dt.datetime | None = None) -> dict[str, int]:
    """Accounts that placed SS_ALARM_TRAFFIC_SPIKE_FACTOR times their hourly baseline (the same hour over the past
    week, averaged) in the last hour, and at least SS_ALARM_TRAFFIC_SPIKE_MIN_CALLS calls: a hijacked trunk or
    phone pumps far above its own habit. An account with no history is judged by the floor alone."""
    now = now or timezone.now()
    factor, floor = param("SS_ALARM_TRAFFIC_SPIKE_FACTOR"), param("SS_ALARM_TRAFFIC_SPIKE_MIN_CALLS")
    current, baseline = hour_and_baseline(now)
    rows = (
        CDR.objects.filter(current | baseline, account__isnull=False)
        .exclude(billing_mode=BillingMode.ILLEGAL)
        .annotate(is_now=Case(When(current, then=Value(True)), default=Value(False)))
        .values("account_id", "is_now")
        .annotate(calls=Count("id"))
    )
    conditions = []
    for account_id, seen in _split(rows, "account_id").items():
        hour = seen.get("now")
        if hour is None or hour["calls"] < floor:
            continue
        base = seen.get("base", {}).get("calls", 0) / BASELINE_DAYS
        if hour["calls"] >= factor * base:
            conditions.append(
                Condition(
                    AlarmKind.TRAFFIC_SPIKE,
                    AlarmSeverity.WARNING,
                    AlarmSubject.ACCOUNT,
                    str(account_id),
                    account_id=account_id,
                    figures={
                        "calls": hour["calls"],
                        "baseline_calls_per_hour": round(base, 1),
                        "factor": factor,
                        "min_calls": floor,
                    },
                )
            )
    return reconcile(AlarmKind.TRAFFIC_SPIKE, conditions, now)


def resolve_low_balances(now: dt.datetime | None = None) -> int:
    """Close the low-balance alarms of accounts back at or above their threshold (a payment, a correction)."""
    now = now or timezone.now()
    system = Decimal(param("SS_CLIENT_LOW_BALANCE_ALARM"))
    open_alarms = Alarm.objects.filter(kind=AlarmKind.LOW_BALANCE, resolved_at__isnull=True)
    cleared = []
    for alarm_id, balance, threshold in open_alarms.values_list(
        "pk", "account__balance", "account__low_balance_threshold"
    ):
        if balance is None or balance >= (system if threshold is None else threshold):
            cleared.append(alarm_id)  # the account is gone, or above its threshold
    return Alarm.objects.filter(pk__in=cleared, resolved_at__isnull=True).update(resolved_at=now)


def close_quiet_event_alarms(now: dt.datetime | None = None) -> int:
    """Close the fraud alarms not seen again for SS_ALARM_EVENT_CLOSE_AFTER seconds: no rule reports a clear."""
    now = now or timezone.now()
    quiet = now - dt.timedelta(seconds=param("SS_ALARM_EVENT_CLOSE_AFTER"))
    return Alarm.objects.filter(kind__in=EVENT_KINDS, resolved_at__isnull=True, last_seen__lt=quiet).update(
        resolved_at=now
    )


# ---------------------------------------------------------------------------
# Detectors over the live state (Redis)


def detect_long_calls(client, keys: Keys, now_ms: int | None = None) -> dict[str, int]:
    """Accounts with live calls older than the long-call rule's warning level (SS_FRAUD_LONG_CALL_WARNING
    seconds, 0 = off), from the live-call registry of every node: the rule itself judges a call once it ended."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    limit_s = param(rule_params(FraudRule.LONG_CALL).warning)
    if not limit_s:
        return reconcile(AlarmKind.LONG_CALL, [], ms_datetime(now_ms))
    long_calls: dict[int | None, list[dict]] = defaultdict(list)
    for call_id, raw in client.hscan_iter(keys.live_calls, count=1000):
        try:
            entry = msgspec.json.decode(raw)
            seconds = (now_ms - int(entry["start_ms"])) // 1000
        except (msgspec.DecodeError, KeyError, TypeError, ValueError):
            continue
        if seconds >= limit_s:
            long_calls[entry.get("account_id")].append(
                {
                    "call_id": call_id.decode(),
                    "caller": entry.get("caller", ""),
                    "callee": entry.get("callee", ""),
                    "node": entry.get("node", ""),
                    "seconds": seconds,
                }
            )
    conditions = []
    for account_id, calls in long_calls.items():
        calls.sort(key=lambda call: -call["seconds"])
        conditions.append(
            Condition(
                AlarmKind.LONG_CALL,
                AlarmSeverity.WARNING,
                AlarmSubject.ACCOUNT if account_id is not None else AlarmSubject.SWITCH,
                str(account_id) if account_id is not None else "no account",
                account_id=account_id,
                figures={
                    "calls": len(calls),
                    "longest_s": calls[0]["seconds"],
                    "limit_s": limit_s,
                    "examples": calls[:EXAMPLES],
                },
            )
        )
    return reconcile(AlarmKind.LONG_CALL, conditions, ms_datetime(now_ms))


def detect_ingest(client, keys: Keys, now_ms: int | None = None) -> dict[str, dict[str, int]]:
    """The CDR ingest falling behind (its oldest waiting record older than SS_ALARM_INGEST_LAG seconds) and CDR
    dead letters waiting for an operator.

    The ingest deletes what it has stored, so the stream's oldest entry is the oldest record not yet stored.
    """
    from billing.ingest import GROUP

    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    lag_limit = param("SS_ALARM_INGEST_LAG")
    lag = []
    oldest = client.xrange(keys.cdr_stream, count=1)
    if oldest:
        age_s = max(0, now_ms - int(oldest[0][0].split(b"-")[0])) // 1000
        if age_s >= lag_limit:
            figures = {"oldest_waiting_s": age_s, "limit_s": lag_limit, "stream_length": client.xlen(keys.cdr_stream)}
            for group in client.xinfo_groups(keys.cdr_stream) if client.exists(keys.cdr_stream) else []:
                if group["name"] in (GROUP, GROUP.encode()):
                    figures.update(pending=group.get("pending"), lag=group.get("lag"))
            figures.setdefault("pending", None)
            lag.append(
                Condition(
                    AlarmKind.INGEST_LAG,
                    AlarmSeverity.CRITICAL if age_s >= 10 * lag_limit else AlarmSeverity.WARNING,
                    AlarmSubject.SWITCH,
                    INGEST_SUBJECT,
                    figures=figures,
                )
            )
    dead = []
    letters = client.xlen(keys.cdr_dead_letters)
    if letters:
        newest = client.xrevrange(keys.cdr_dead_letters, count=1)
        reason = newest[0][1].get(b"reason", b"").decode(errors="replace") if newest else ""
        dead.append(
            Condition(
                AlarmKind.DEAD_LETTERS,
                AlarmSeverity.WARNING,
                AlarmSubject.SWITCH,
                INGEST_SUBJECT,
                figures={"dead_letters": letters, "newest_reason": reason[:300]},
            )
        )
    now = ms_datetime(now_ms)
    return {"lag": reconcile(AlarmKind.INGEST_LAG, lag, now), "dead": reconcile(AlarmKind.DEAD_LETTERS, dead, now)}


def detect_silent_nodes(client, keys: Keys, now_ms: int | None = None) -> dict[str, int]:
    """Call-core nodes whose heartbeat (``Keys.heartbeats``) is older than SS_ALARM_NODE_SILENT seconds.

    Once a gone node's calls are released its heartbeat is forgotten (billing.lost_calls): its alarm then stays
    open until the node beats again or an operator closes it, so only a fresh beat clears it.
    """
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    silent_after = param("SS_ALARM_NODE_SILENT")
    beats = {node.decode(): int(beat) for node, beat in client.hgetall(keys.heartbeats).items()}
    now = ms_datetime(now_ms)
    for node, beat in beats.items():
        silent_s = (now_ms - beat) // 1000
        if silent_s >= silent_after:
            raise_alarm(
                AlarmKind.NODE_SILENT,
                AlarmSeverity.CRITICAL,
                AlarmSubject.NODE,
                node,
                figures={"silent_s": silent_s, "last_heartbeat": ms_datetime(beat), "limit_s": silent_after},
                now=now,
            )
    alive = [node for node, beat in beats.items() if (now_ms - beat) // 1000 < silent_after]
    resolved = Alarm.objects.filter(
        kind=AlarmKind.NODE_SILENT, resolved_at__isnull=True, subject_kind=AlarmSubject.NODE, subject__in=alive
    ).update(resolved_at=now)
    return {"raised": len(beats) - len(alive), "resolved": resolved}


def ms_datetime(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def open_counts() -> dict[str, int]:
    """The open alarms by severity, in all and not yet acknowledged: the dashboard's and the list's summary."""
    counts = Alarm.objects.filter(resolved_at__isnull=True).aggregate(
        total=Count("pk"),
        unacknowledged=Count("pk", filter=Q(acknowledged_at__isnull=True)),
        **{severity: Count("pk", filter=Q(severity=severity)) for severity in AlarmSeverity.values},
    )
    return counts


def latest_open(limit: int = 5):
    """The open alarms an operator should look at first: the most severe, then the most recent."""
    rank = Case(
        When(severity=AlarmSeverity.CRITICAL, then=Value(0)),
        When(severity=AlarmSeverity.WARNING, then=Value(1)),
        default=Value(2),
    )
    return (
        Alarm.objects.filter(resolved_at__isnull=True)
        .select_related("account", "mapping_gateway", "routing_gateway")
        .order_by(rank, "-last_seen")[:limit]
    )
