"""One row per end reason: the pure function that gives it, from which facts, with its direction and status.

The table enumerates ``EndReason`` itself: a new reason fails here until it has
a row, or is named among the reasons nothing produces yet.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from callcore import cdr
from callcore import decide as dec
from callcore.contract import DEFAULT_FAILOVER_CODES, BillingMode, EndDirection, EndReason

from .test_decide import END_REASON_ROWS, _decide

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_900_000_000_000

# Declared for the CDR table's codes (VOS's list) but produced by nothing yet: flood bans are pike's and the
# configuration's, which answer nothing and write no CDR; nothing cancels an attempt but the caller.
RESERVED = {EndReason.FLOOD_BANNED, EndReason.INTERNAL_ERROR, EndReason.VENDOR_CANCELLED}


@dataclasses.dataclass(frozen=True)
class Ending:
    """What ``produce()`` gave: the reason, the CDR's end direction (None: no CDR) and SIP status."""

    reason: EndReason
    direction: EndDirection | None
    sip_status: int


@dataclasses.dataclass(frozen=True)
class Row:
    reason: EndReason
    source: str  # the pure function that gives the reason
    produce: Callable[[], Ending]
    direction: EndDirection | None
    sip_status: int


def _refused(decision: dec.Decision) -> Ending:
    """A set-up refusal as its CDR records it."""
    record = cdr.refusal_record(
        call_id="abc@pbx", start_ms=NOW, source_ip="203.0.113.10", source_port=5060, user_agent="PBX", caller="1",
        callee="2", reason=decision.reason, billing_mode=decision.billing_mode, decision=decision,
        snapshot_version=1, node="node-a",
    )  # fmt: skip
    return Ending(EndReason(decision.reason), record.end_direction, record.sip_status)


def _by_decide(reason: EndReason) -> Row:
    """The first row of test_decide's set-up table that gives ``reason``."""
    (first, *_) = [r for r in END_REASON_ROWS if r.reason is reason and r.action is dec.Action.REJECT]
    return Row(reason, "decide", lambda: _refused(_decide(first)), EndDirection.SERVER, reason.sip_status)


def _scanner() -> Ending:
    assert dec.is_scanner("friendly-scanner")
    decision = _decide(next(r for r in END_REASON_ROWS if r.reason is EndReason.SCANNER_DROPPED))
    assert (decision.action, decision.record_cdr) == (dec.Action.DROP, False)
    return Ending(decision.reason, None, decision.sip_status)


def _ended(**facts) -> Callable[[], Ending]:
    def produce() -> Ending:
        decision = dec.end_of_call(dec.EndFacts(**facts))
        return Ending(decision.reason, decision.direction, decision.sip_status)

    return produce


def _lost_call() -> Ending:
    entry = {"start_ms": NOW, "account_id": 1, "billing_mode": int(BillingMode.MAPPING_GATEWAY)}
    record = cdr.lost_call_record("abc@pbx", entry, "node-a", NOW + 5000)
    return Ending(EndReason.SWITCH_RESTART, record.end_direction, record.sip_status)


ANSWERED = {"now_ms": NOW + 60_000, "answered_ms": NOW, "max_duration_s": 60}
SET_UP_REFUSALS = [
    EndReason.ILLEGAL_SOURCE, EndReason.ACCOUNT_LOCKED, EndReason.ACCOUNT_MISSING, EndReason.CALLER_BLACKLISTED,
    EndReason.CALLER_NOT_WHITELISTED, EndReason.CALLEE_BLACKLISTED, EndReason.CALLEE_NOT_WHITELISTED,
    EndReason.DYNAMIC_BLACKLISTED, EndReason.PREFIX_FORBIDDEN, EndReason.MAPPING_CAPACITY,
    EndReason.ACCOUNT_CAPACITY, EndReason.PHONE_CAPACITY, EndReason.MAPPING_CPS, EndReason.SWITCH_CPS,
    EndReason.BALANCE_INSUFFICIENT, EndReason.NO_RATE, EndReason.NO_ROUTE, EndReason.ROUTES_BUSY,
    EndReason.LIVE_STATE_UNAVAILABLE, EndReason.FRAUD_MALICIOUS_CALLER, EndReason.FRAUD_CONCURRENT_CALLER,
    EndReason.FRAUD_HIGH_RISK_RATE, EndReason.FRAUD_SPEND_VELOCITY, EndReason.FRAUD_NEW_DESTINATION,
    EndReason.INVALID_CALLEE, EndReason.CALLER_NUMBER_REQUIRED,
]  # fmt: skip
ROWS = [
    *[_by_decide(reason) for reason in SET_UP_REFUSALS],
    Row(EndReason.SCANNER_DROPPED, "is_scanner", _scanner, None, 0),
    Row(EndReason.AUTH_FAILED, "AUTH_FAILED", lambda: _refused(dec.AUTH_FAILED), EndDirection.SERVER, 403),
    Row(EndReason.NORMAL_CLEARING, "end_of_call", _ended(event="dialog:end", from_caller=True),
        EndDirection.CALLER, 200),
    Row(EndReason.CALLER_CANCEL, "end_of_call", _ended(event="dialog:failed", reply_code=487, canceled=True),
        EndDirection.CALLER, 487),
    Row(EndReason.VENDOR_FAILED, "end_of_call",
        _ended(event="dialog:failed", reply_code=503, last_vendor_code=503, failover_codes=DEFAULT_FAILOVER_CODES),
        EndDirection.CALLEE, 503),
    Row(EndReason.VENDOR_REJECTED, "end_of_call",
        _ended(event="dialog:failed", reply_code=486, last_vendor_code=486, failover_codes=DEFAULT_FAILOVER_CODES),
        EndDirection.CALLEE, 486),
    Row(EndReason.VENDOR_TIMEOUT, "end_of_call", _ended(event="dialog:failed"), EndDirection.CALLEE, 408),
    Row(EndReason.MAX_DURATION, "end_of_call", _ended(event="dialog:timeout", keepalive=True, **ANSWERED),
        EndDirection.SERVER, 200),
    Row(EndReason.BALANCE_EXHAUSTED, "end_of_call",
        _ended(event="dialog:timeout", balance_limited=True, **ANSWERED), EndDirection.SERVER, 200),
    Row(EndReason.CALLER_NO_ACK, "end_of_call", _ended(event="dialog:timeout", answered_not_acked=True),
        EndDirection.SERVER, 408),
    Row(EndReason.KEEPALIVE_FAILED, "end_of_call",
        _ended(event="dialog:timeout", keepalive=True, now_ms=NOW + 30_000, answered_ms=NOW, max_duration_s=7200),
        EndDirection.SERVER, 200),
    Row(EndReason.SWITCH_RESTART, "lost_call_record", _lost_call, EndDirection.SERVER, 0),
    # Ended on request (kemi's serve_disconnects marks the cut): an operator, or an anti-fraud block.
    Row(EndReason.OPERATOR_DISCONNECT, "end_of_call",
        _ended(event="dialog:timeout", cut=EndReason.OPERATOR_DISCONNECT, **ANSWERED), EndDirection.SERVER, 200),
    # The media timeout: kemi's watch_media asks the call's node to end it, as an operator's request is.
    Row(EndReason.MEDIA_TIMEOUT, "end_of_call",
        _ended(event="dialog:timeout", cut=EndReason.MEDIA_TIMEOUT, **ANSWERED), EndDirection.SERVER, 200),
]  # fmt: skip


def test_every_end_reason_has_a_row_or_is_reserved():
    covered = [row.reason for row in ROWS]
    assert len(covered) == len(set(covered)), "one row per end reason"
    missing = set(EndReason) - set(covered) - RESERVED
    assert not missing, f"give {sorted(r.code for r in missing)} a row (or name them reserved)"
    assert not set(covered) & RESERVED


@pytest.mark.parametrize("row", ROWS, ids=lambda row: f"{row.reason.code} by {row.source}")
def test_each_end_reason_is_given_by_its_function(row):
    ending = row.produce()
    assert ending.reason is row.reason
    assert ending.direction == row.direction
    assert ending.sip_status == row.sip_status


@pytest.mark.parametrize("reason", sorted(RESERVED, key=lambda r: r.code), ids=lambda r: r.code)
def test_a_reserved_end_reason_is_produced_nowhere_yet(reason):
    """Its name and code appear only where the codes are declared: a new producer needs a row above."""
    pattern = re.compile(rf"\b({reason.name}|{reason.code})\b")
    sources = [*(ROOT / "callcore").rglob("*.py"), ROOT / "callcore" / "kamailio.cfg.tmpl"]
    users = [p.relative_to(ROOT) for p in sources if pattern.search(p.read_text())]
    assert [str(p) for p in users] == ["callcore/contract/codes.py"]


# ---------------------------------------------------------------------------
# The end of a call, beyond its reason


def test_an_event_that_ends_nothing_decides_nothing():
    assert dec.end_of_call(dec.EndFacts(event="dialog:start")) is None
    assert "dialog:start" not in dec.ENDING_EVENTS


def test_a_bye_from_the_callee_is_the_callees_clearing_and_always_recorded():
    decision = dec.end_of_call(dec.EndFacts(event="dialog:end", from_caller=False))
    assert (decision.reason, decision.direction, decision.record) == (
        EndReason.NORMAL_CLEARING,
        EndDirection.CALLEE,
        True,
    )
    assert decision.acknowledged


# (the ending's facts, its reason, whether the switch itself ended it)
UNCONNECTED_ENDS = [
    pytest.param({"event": "dialog:failed", "reply_code": 487, "canceled": True}, EndReason.CALLER_CANCEL, False,
                 id="caller_cancel"),
    pytest.param({"event": "dialog:failed", "reply_code": 486, "last_vendor_code": 486}, EndReason.VENDOR_REJECTED,
                 False, id="vendor_rejected"),
    pytest.param({"event": "dialog:failed", "reply_code": 503, "last_vendor_code": 503}, EndReason.VENDOR_FAILED,
                 True, id="vendor_failed"),
    pytest.param({"event": "dialog:failed"}, EndReason.VENDOR_TIMEOUT, True, id="vendor_timeout"),
    pytest.param({"event": "dialog:timeout", "answered_not_acked": True}, EndReason.CALLER_NO_ACK, True,
                 id="caller_no_ack"),
]  # fmt: skip
PARAMETERS = [
    pytest.param(zero_hold, hangup, id=f"zero_hold={int(zero_hold)},server_hang_up={int(hangup)}")
    for zero_hold in (True, False)
    for hangup in (True, False)
]


@pytest.mark.parametrize(("zero_hold", "hangup"), PARAMETERS)
@pytest.mark.parametrize(("facts", "reason", "switchs_own"), UNCONNECTED_ENDS)
def test_an_unconnected_end_is_recorded_by_zero_hold_and_the_switchs_own_also_by_server_hang_up(
    facts, reason, switchs_own, zero_hold, hangup
):
    decision = dec.end_of_call(
        dec.EndFacts(
            **facts, failover_codes=DEFAULT_FAILOVER_CODES, record_zero_hold=zero_hold, record_server_hangup=hangup
        )
    )
    assert decision.reason is reason
    assert decision.record is (zero_hold and (hangup or not switchs_own))


def test_server_hang_up_off_drops_only_the_switchs_own_unconnected_ends():
    off = {"failover_codes": DEFAULT_FAILOVER_CODES, "record_zero_hold": True, "record_server_hangup": False}
    dropped = {p.values[1] for p in UNCONNECTED_ENDS if not dec.end_of_call(dec.EndFacts(**p.values[0], **off)).record}
    assert dropped == {EndReason.VENDOR_TIMEOUT, EndReason.VENDOR_FAILED, EndReason.CALLER_NO_ACK}


ANSWERED_ENDS = [
    pytest.param({"event": "dialog:timeout", **ANSWERED}, EndReason.MAX_DURATION, id="max_duration"),
    pytest.param({"event": "dialog:timeout", "balance_limited": True, **ANSWERED}, EndReason.BALANCE_EXHAUSTED,
                 id="balance_exhausted"),
    pytest.param({"event": "dialog:timeout", "keepalive": True, "now_ms": NOW + 30_000, "answered_ms": NOW,
                  "max_duration_s": 7200}, EndReason.KEEPALIVE_FAILED, id="keepalive_failed"),
    pytest.param({"event": "dialog:end", "from_caller": True}, EndReason.NORMAL_CLEARING, id="normal_clearing"),
]  # fmt: skip


@pytest.mark.parametrize(("zero_hold", "hangup"), PARAMETERS)
@pytest.mark.parametrize(("facts", "reason"), ANSWERED_ENDS)
def test_an_answered_call_is_always_recorded_and_charged_whatever_the_parameters(facts, reason, zero_hold, hangup):
    decision = dec.end_of_call(dec.EndFacts(**facts, record_zero_hold=zero_hold, record_server_hangup=hangup))
    assert (decision.reason, decision.record, decision.acknowledged) == (reason, True, True)


def test_an_answer_the_caller_never_acknowledged_is_not_charged():
    decision = dec.end_of_call(dec.EndFacts(event="dialog:timeout", answered_not_acked=True, **ANSWERED))
    assert decision.acknowledged is False


@pytest.mark.parametrize(
    ("answered_after_ms", "expected"),
    [
        (60_000 - dec.KEEPALIVE_MARGIN_MS - 1, EndReason.KEEPALIVE_FAILED),
        (60_000 - dec.KEEPALIVE_MARGIN_MS, EndReason.MAX_DURATION),
    ],
)
def test_a_timeout_well_before_the_max_duration_is_a_failed_keepalive(answered_after_ms, expected):
    facts = dec.EndFacts(
        event="dialog:timeout", keepalive=True, now_ms=NOW + answered_after_ms, answered_ms=NOW, max_duration_s=60
    )
    assert dec.end_of_call(facts).reason is expected


def test_without_keepalives_an_early_timeout_is_the_max_duration():
    facts = dec.EndFacts(event="dialog:timeout", now_ms=NOW + 1000, answered_ms=NOW, max_duration_s=60)
    assert dec.end_of_call(facts).reason is EndReason.MAX_DURATION


@pytest.mark.parametrize(
    ("reply", "vendor", "canceled", "reason", "status"),
    [
        pytest.param(0, 0, True, EndReason.CALLER_CANCEL, 408, id="canceled before any vendor answered"),
        pytest.param(487, 0, False, EndReason.CALLER_CANCEL, 487, id="487 with no vendor code"),
        pytest.param(487, 487, False, EndReason.CALLER_CANCEL, 487, id="487 from the vendor"),
        pytest.param(487, 503, False, EndReason.VENDOR_REJECTED, 487, id="487 after a vendor failed"),
        pytest.param(0, 503, False, EndReason.VENDOR_FAILED, 503, id="no reply: the last vendor's code"),
        pytest.param(0, 408, False, EndReason.VENDOR_TIMEOUT, 408, id="the last vendor timed out"),
        pytest.param(486, 486, False, EndReason.VENDOR_REJECTED, 486, id="a final answer that stops failover"),
    ],
)
def test_a_failed_dialog_ends_by_the_reply_and_the_last_vendor(reply, vendor, canceled, reason, status):
    facts = dec.EndFacts(
        event="dialog:failed",
        reply_code=reply,
        last_vendor_code=vendor,
        canceled=canceled,
        failover_codes=DEFAULT_FAILOVER_CODES,
    )
    decision = dec.end_of_call(facts)
    assert (decision.reason, decision.sip_status) == (reason, status)


def test_a_code_the_last_route_fails_over_on_is_a_vendor_failure():
    assert dec.vendor_failure_reason(486, DEFAULT_FAILOVER_CODES | {486}) is EndReason.VENDOR_FAILED
    assert dec.vendor_failure_reason(486, DEFAULT_FAILOVER_CODES) is EndReason.VENDOR_REJECTED
    # The default codes are vendor failures whatever the route's own list says.
    assert {dec.vendor_failure_reason(code, frozenset()) for code in DEFAULT_FAILOVER_CODES - {408}} == {
        EndReason.VENDOR_FAILED
    }


@pytest.mark.parametrize("zero_hold", [True, False])
@pytest.mark.parametrize("cut", [EndReason.OPERATOR_DISCONNECT, EndReason.FRAUD_HIGH_RISK_RATE])
def test_a_call_cancelled_on_request_while_setting_up_ends_with_the_reason_asked(cut, zero_hold):
    # kemi's serve_disconnects cancels it (CANCEL to the vendor, no failover); the vendor's 487 reaches the caller.
    facts = dec.EndFacts(event="dialog:failed", reply_code=487, last_vendor_code=487, cut=cut,
                         failover_codes=DEFAULT_FAILOVER_CODES, record_zero_hold=zero_hold)  # fmt: skip
    decision = dec.end_of_call(facts)
    assert (decision.reason, decision.direction, decision.sip_status) == (cut, EndDirection.SERVER, 487)
    assert decision.record is zero_hold  # recorded as any unconnected call is
    # Without the mark, the same 487 is the vendor's own answer, or the caller's CANCEL.
    assert dec.end_of_call(msgspec.structs.replace(facts, cut=None)).reason is not cut
