"""The review run: a period's CDRs replayed through the post-call fraud rules, to tune them before they block.

The admin picks a period and rules; ``review_run`` (a Celery task) reads the
period's CDRs in the order the ingest judges them (by their ends) and feeds
them through ``billing.fraud.evaluate`` with in-memory windows and an
in-memory blacklist: the rules' own code, counted and decided the same way,
with nothing written to Redis and nothing blocked. A chosen rule is
evaluated even if it is switched off or report-only (that is what a review
is for), with the levels the parameters hold now; white lists and exemptions
apply as they stand now.

Each entry the rules would have added is listed with its first trip, the
figures and the evidence, and what it would have saved: the vendor cost of
the calls that match it and started after the trip, until it would have
expired (calls the switch would have refused). Progress and the result are
the task's state in Celery's result backend (they expire with it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from decimal import Decimal

from celery import shared_task
from django.db.models import F
from django.db.models.functions import Coalesce

from billing import fraud
from billing.models import CDR
from callcore.contract import POST_CALL_RULES, FraudRule, Keys, SubjectKind, parse_subject
from softswitch_portal.core.redis import Waiter, prefix, redis_client

log = logging.getLogger("security.review_run")

CHUNK = 2000  # CDRs fed to the rules at a time (the ingest's batch size, about)
PROGRESS_EVERY = 10  # chunks between progress reports

_COLUMNS = (
    "call_uuid", "start_time", "answer_time", "stop_time", "hold_time_ms", "caller_number", "callee_number",
    "callee_number_routed", "account_id", "mapping_gateway_id", "routing_gateway_id", "vendors_tried",
    "vendor_cost",
)  # fmt: skip


def _ms(moment: dt.datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def record_of(row: dict) -> dict:
    """A CDR row as the rules read a record (the ingest's values: times in epoch ms)."""
    values = dict(row)
    values["start_ms"] = _ms(values.pop("start_time"))
    values["answer_ms"] = _ms(values.pop("answer_time"))
    values["stop_ms"] = _ms(values.pop("stop_time"))
    return values


def period_cdrs(start: dt.datetime, end: dt.datetime):
    """The period's CDRs (by start, the partitions' key) in the ingest's order: by end, then call."""
    return (
        CDR.objects.filter(start_time__gte=start, start_time__lt=end)
        .annotate(ended=Coalesce(F("stop_time"), F("start_time")))
        .order_by("ended", "call_uuid")
    )


def exemptions() -> dict[str, float]:
    """The exemptions as they stand (read once: a review writes nothing)."""
    client = redis_client(Waiter.JOB, name="worker:review-run")
    try:
        return {m.decode(): score for m, score in client.zrange(Keys(prefix()).fraud_exempt, 0, -1, withscores=True)}
    finally:
        client.close()


class Savings:
    """The calls each entry would have refused: those matching it that started after its trip, until its expiry."""

    def __init__(self):
        self.by_number: dict[str, list[dict]] = {}
        self.by_account: dict[str, list[dict]] = {}

    def add(self, entry: dict) -> None:
        kind, value = parse_subject(entry["subject"])
        if kind is SubjectKind.NUMBER:
            self.by_number.setdefault(value, []).append(entry)
        elif kind is SubjectKind.ACCOUNT:
            self.by_account.setdefault(value, []).append(entry)

    def count(self, values: dict) -> None:
        matched = []
        for number in {values.get("caller_number") or "", fraud.callee_of(values)} - {""}:
            matched += self.by_number.get(number, ())
        if values.get("account_id") is not None:
            matched += self.by_account.get(str(values["account_id"]), ())
        start = values["start_ms"]
        for entry in matched:
            gateway = entry["mapping_gateway_id"]
            if entry["first_trip_ms"] < start <= entry["expires_ms"] and (
                gateway is None or values.get("mapping_gateway_id") == gateway
            ):
                entry["saved_calls"] += 1
                entry["saved"] += values.get("vendor_cost") or Decimal(0)


def replay(
    start: dt.datetime,
    end: dt.datetime,
    rules: Iterable[str],
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """What the chosen post-call rules would have blocked in [start, end), and what that would have saved."""
    chosen = [FraudRule(r) for r in rules if FraudRule(r) in POST_CALL_RULES]
    ctx = fraud.load_context(chosen)
    # Every chosen rule, on or off: the review shows what it would do.
    ctx.levels = {rule: dataclasses.replace(levels, enabled=True) for rule, levels in ctx.levels.items()}
    windows, board = fraud.MemoryWindows(), fraud.MemoryBoard(exemptions())
    savings = Savings()
    entries: list[dict] = []
    warnings: Counter = Counter()
    reported: Counter = Counter()  # critical figures that would not block (white list, exemption)
    total = period_cdrs(start, end).count()
    done = 0
    if progress:
        progress(0, total)
    seen_accounts: set[int] = set()
    chunk: list[dict] = []
    spend = ctx.enabled(FraudRule.SPEND_VELOCITY_ACTUAL)

    def feed(chunk: list[dict]) -> None:
        if spend:
            new = {v["account_id"] for v in chunk if v["account_id"] is not None} - seen_accounts
            if new:
                # The history before the period: the spend being reviewed does not raise its own limit.
                ctx.daily_spend.update(fraud.daily_spend(new, start))
                seen_accounts.update(new)
        for detection in fraud.evaluate(chunk, ctx, windows, board, ignore_report_only=True):
            event = detection.event
            if event.severity == "warning":
                warnings[event.rule] += 1
            elif not detection.would_block:
                reported[event.rule] += 1
            else:
                entry = {
                    "subject": event.subject,
                    "rule": event.rule,
                    "scope": event.scope,
                    "mapping_gateway_id": event.mapping_gateway_id,
                    "account_id": event.account_id,
                    "first_trip_ms": event.detected_ms,
                    "expires_ms": detection.expires_ms,
                    "figures": event.figures,
                    "evidence": event.evidence,
                    "saved_calls": 0,
                    "saved": Decimal(0),
                }
                entries.append(entry)
                savings.add(entry)
        for values in chunk:
            savings.count(values)

    for row in period_cdrs(start, end).values(*_COLUMNS).iterator(chunk_size=CHUNK):
        chunk.append(record_of(row))
        if len(chunk) >= CHUNK:
            feed(chunk)
            done += len(chunk)
            chunk = []
            if progress and (done // CHUNK) % PROGRESS_EVERY == 0:
                progress(done, total)
    if chunk:
        feed(chunk)
        done += len(chunk)
    if progress:
        progress(done, total)
    for entry in entries:
        entry["saved"] = str(entry["saved"])
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "rules": [r.value for r in chosen],
        "cdrs": done,
        "entries": entries,
        "saved": str(sum((Decimal(e["saved"]) for e in entries), Decimal(0))),
        "warnings": dict(warnings),
        "not_blocked": dict(reported),
    }


@shared_task(bind=True)
def review_run(self, start: str, end: str, rules: list[str]):
    """Replay [start, end) (ISO datetimes) through ``rules``; the state says how far it got (PROGRESS)."""

    def progress(done: int, total: int) -> None:
        self.update_state(state="PROGRESS", meta={"done": done, "total": total})

    return replay(dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end), rules, progress)
