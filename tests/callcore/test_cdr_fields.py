"""The records the call core writes carry every column of billing.models.CDR (no database needed).

The call core writes times as epoch milliseconds (``start_ms``...) where the
table has timestamps (``start_time``...), and foreign keys by their column
(``account_id``). Three columns are the worker's to fill when it rates the
record, never the call core's: the billed seconds, the fee and the vendor
cost. ``cdr_schema`` is the record's own version, not a column.
"""

from __future__ import annotations

import msgspec
import pytest

from billing.models import CDR
from callcore.cdr import call_record, refusal_record
from callcore.contract import AnsweredCall, BillingMode, EndDirection, EndReason, lost_call_record
from callcore.decide import decide

from . import factories as F
from .test_cdr import CALL_STATE, ROUTE

AS_MILLISECONDS = {"start_time": "start_ms", "answer_time": "answer_ms", "stop_time": "stop_ms"}
RATED_BY_THE_WORKER = {"fee_time", "fee", "vendor_cost"}
NOT_COLUMNS = {"cdr_schema"}


def cdr_columns() -> set[str]:
    names = {field.attname for field in CDR._meta.concrete_fields} - {"id", "ingested"}
    return {AS_MILLISECONDS.get(name, name) for name in names}


def refusal() -> dict:
    facts = F.facts()
    snapshot = F.indexed(customer={"locked": True})
    decision = decide(facts, snapshot)
    return msgspec.to_builtins(refusal_record(
        call_id=facts.call_id, start_ms=facts.now_ms, source_ip=facts.source_ip, source_port=facts.source_port,
        user_agent=facts.user_agent, caller=facts.caller, callee=facts.callee, reason=decision.reason,
        billing_mode=BillingMode(decision.billing_mode), decision=decision, snapshot_version=1, node="node-a",
    ))  # fmt: skip


def answered() -> dict:
    return msgspec.to_builtins(call_record(
        CALL_STATE, route=ROUTE, answer_ms=1_003_000, stop_ms=1_064_000, ring_ms=1_001_000, tried=[],
        direction=EndDirection.CALLER, reason=EndReason.NORMAL_CLEARING, sip_status=200, callee_call_id="leg-b",
        node="node-a",
    ))  # fmt: skip


def lost() -> dict:
    entry = {"start_ms": 1_000_000, "account_id": 1, "callee": "447700900123", "billing_mode": 1, "node": "node-a"}
    answered = AnsweredCall(answer_ms=1_003_000, route=ROUTE)
    return msgspec.to_builtins(lost_call_record("abc@pbx", entry, "node-a", 1_064_000, answered=answered))


def test_the_rated_columns_and_the_millisecond_times_exist_in_the_table():
    columns = cdr_columns()
    assert columns >= RATED_BY_THE_WORKER
    assert set(AS_MILLISECONDS.values()) <= columns


@pytest.mark.parametrize("build", [refusal, answered, lost], ids=["refusal_record", "call_record", "lost_call_record"])
def test_a_record_has_every_cdr_column_but_the_rated_ones(build):
    record = build()
    assert set(record) - NOT_COLUMNS == cdr_columns() - RATED_BY_THE_WORKER
    assert set(record) >= NOT_COLUMNS
