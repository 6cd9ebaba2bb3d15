"""The anti-fraud set-up rules inside the set-up Lua, against the real Redis (contract.fraud).

Every call passes ``now_ms`` explicitly, so the windows are the test's, not the wall clock's.
"""

from __future__ import annotations

import json

import pytest

from callcore import decide as dec
from callcore.contract import (
    NEVER_EXPIRES_MS,
    RULE_PARAMS,
    SETUP_RULES,
    FraudRule,
    account_high_risk_subject,
    account_subject,
    decode_event,
)
from callcore.live import LiveStatus, RouteLimit, SetupRequest
from callcore.setup_types import FraudCheck, FraudRuleCheck

from . import factories as F

NOW = 1_900_000_000_000
EXPIRY = NOW + 3_600_000
HOUR = 3_600_000

RULES = {
    FraudRule.MALICIOUS_CALLER: FraudRuleCheck("malicious_caller", 4, 6, 600_000, HOUR, False),
    FraudRule.CONCURRENT_CALLER: FraudRuleCheck("concurrent_caller", 3, 5, 0, HOUR, False),
    FraudRule.HIGH_RISK_RATE: FraudRuleCheck("high_risk_rate", 3, 5, 60_000, HOUR, False),
    FraudRule.SPEND_VELOCITY: FraudRuleCheck("spend_velocity", 2, 5, 300_000, HOUR, False),
    FraudRule.NEW_DESTINATION: FraudRuleCheck("new_destination", 10, 20, HOUR, HOUR, False),
}


def fraud(*rules, caller="15551230000", callee="881612345678", high_risk=True, country="881", spend=15_000,
          floor=200_000, scope_gateway=None, **changes) -> FraudCheck:  # fmt: skip
    checks = [RULES[r] if isinstance(r, FraudRule) else r for r in rules]
    return FraudCheck(
        node="n1", caller=caller, callee=callee, high_risk=high_risk, country=country, spend_units=spend,
        spend_limits=(0, 0), spend_floor=floor, rules=checks, scope_gateway=scope_gateway, **changes,
    )  # fmt: skip


def call(live, n, check, at=NOW, account_id=1, gateway=None, **changes):
    req = SetupRequest(
        call_id=f"call-{n}", mapping_gateway_id=1, account_id=account_id, caller=check.caller or "anonymous",
        callee=check.callee or "447700900123", expiry_ms=EXPIRY, routes=[RouteLimit(1, 0, 0)],
        registry={"account_id": account_id, "caller": check.caller, "callee": check.callee, "start_ms": at,
                  "node": "n1", "mapping_gateway_id": 1, "hr": 1 if check.high_risk else 0},
        dynamic_blacklist_gateway=gateway, fraud=check, **changes,
    )  # fmt: skip
    return live.setup(req, now_ms=at).status


def events(client, live):
    return [decode_event(fields[b"e"]) for _id, fields in client.xrange(live.keys.fraud_events)]


def test_a_high_risk_burst_is_refused_from_the_critical_call_on_and_its_account_blocked(live, client):
    check = fraud(FraudRule.HIGH_RISK_RATE)
    answers = [call(live, n, check, at=NOW + n * 1000) for n in range(5)]
    assert answers == [LiveStatus.OK] * 4 + [LiveStatus.FRAUD_HIGH_RISK_RATE]
    subject = account_high_risk_subject(1)
    assert client.zscore(live.keys.dynamic_blacklist(), subject) == NOW + 4000 + HOUR
    warning, critical = events(client, live)
    assert (warning.severity, warning.blocked, warning.figures["count"]) == ("warning", False, 3)
    assert (critical.severity, critical.blocked, critical.subject, critical.ttl_s) == ("critical", True, subject, 3600)
    assert critical.evidence == [f"call-{n}" for n in range(5)] and critical.node == "n1"
    assert critical.scope == "central" and critical.mapping_gateway_id is None
    # The next call to a high-risk destination is refused by the entry; the account's other calls go on.
    assert call(live, 9, check, at=NOW + 30_000) is LiveStatus.ACCOUNT_DYNAMIC_BLACKLISTED
    assert call(live, 10, fraud(FraudRule.HIGH_RISK_RATE, high_risk=False), at=NOW + 30_000) is LiveStatus.OK


def test_the_block_ends_the_accounts_live_calls_to_high_risk_destinations_on_their_nodes(live, client):
    registry = live.keys.live_calls
    client.hset(registry, mapping={
        "up-hr": json.dumps({"account_id": 1, "node": "n2", "hr": 1, "caller": "1", "callee": "8816"}),
        "up-other": json.dumps({"account_id": 1, "node": "n2", "hr": 0, "caller": "1", "callee": "44"}),
        "up-else": json.dumps({"account_id": 2, "node": "n2", "hr": 1, "caller": "1", "callee": "8816"}),
    })  # fmt: skip
    check = fraud(FraudRule.HIGH_RISK_RATE)
    statuses = [call(live, n, check, at=NOW + n) for n in range(5)]
    assert statuses[-1] is LiveStatus.FRAUD_HIGH_RISK_RATE
    asked = [json.loads(r) for r in client.lrange(live.keys.disconnects("n2"), 0, -1)]
    # The four admitted calls of the burst are live too (registered at their set-up, on n1).
    assert {r["call_id"] for r in asked} == {"up-hr"}
    assert asked[0]["end_reason"] == "fraud_high_risk_rate" and asked[0]["by"] == "n1:high_risk_rate"
    burst = {json.loads(r)["call_id"] for r in client.lrange(live.keys.disconnects("n1"), 0, -1)}
    assert burst == {f"call-{n}" for n in range(4)}


def test_the_window_slides_without_a_reset_at_any_boundary(live):
    check = fraud(FraudRule.HIGH_RISK_RATE)
    # Four calls in the last seconds of one minute, four in the first seconds of the next: a per-minute
    # counter would see four and four; the sliding window sees eight within 60 s and blocks at the fifth.
    start = NOW + 56_000
    answers = [call(live, n, check, at=start + n * 1000) for n in range(5)]
    assert answers[-1] is LiveStatus.FRAUD_HIGH_RISK_RATE


def test_calls_spread_wider_than_the_window_never_trip(live):
    check = fraud(FraudRule.HIGH_RISK_RATE)
    answers = [call(live, n, check, at=NOW + n * 15_001) for n in range(12)]  # 4 per 60 s at most
    assert set(answers) == {LiveStatus.OK}


def test_report_only_counts_and_reports_but_never_blocks(live, client):
    rule = FraudRuleCheck("high_risk_rate", 3, 5, 60_000, HOUR, True)
    answers = [call(live, n, fraud(rule), at=NOW + n) for n in range(8)]
    assert set(answers) == {LiveStatus.OK}
    assert not client.exists(live.keys.dynamic_blacklist())
    assert [(e.severity, e.blocked) for e in events(client, live)] == [("warning", False), ("critical", False)]


def test_an_exempt_subject_is_not_blocked(live, client):
    client.zadd(live.keys.fraud_exempt, {account_high_risk_subject(1): NOW + HOUR})
    answers = [call(live, n, fraud(FraudRule.HIGH_RISK_RATE), at=NOW + n) for n in range(7)]
    assert set(answers) == {LiveStatus.OK}
    assert not client.exists(live.keys.dynamic_blacklist())


def test_standalone_scope_blocks_on_the_gateways_own_list_only(live, client):
    check = fraud(FraudRule.MALICIOUS_CALLER, scope_gateway=7)
    answers = [call(live, n, check, at=NOW + n, gateway=7) for n in range(6)]
    assert answers[-1] is LiveStatus.FRAUD_MALICIOUS_CALLER
    assert client.zscore(live.keys.dynamic_blacklist(7), check.caller) is not None
    assert not client.exists(live.keys.dynamic_blacklist())
    # The caller through another gateway (central list only) is not blocked by the standalone entry.
    other = fraud(FraudRule.MALICIOUS_CALLER, callee="447700900999")
    assert call(live, 20, other, at=NOW + 100) is LiveStatus.OK
    assert call(live, 21, other, at=NOW + 100, gateway=7) is LiveStatus.CALLER_DYNAMIC_BLACKLISTED
    [*_, critical] = events(client, live)
    assert (critical.scope, critical.mapping_gateway_id) == ("gateway", 7)


def test_malicious_caller_counts_one_caller_to_one_callee(live, client):
    check = fraud(FraudRule.MALICIOUS_CALLER, high_risk=False, callee="447700900123")
    assert [call(live, n, check, at=NOW + n) for n in range(6)][-1] is LiveStatus.FRAUD_MALICIOUS_CALLER
    assert client.zscore(live.keys.dynamic_blacklist(), check.caller) == NOW + 5 + HOUR
    # Not a judged caller (anonymous, or white-listed: decide gives it as ''): never counted.
    unjudged = fraud(FraudRule.MALICIOUS_CALLER, caller="", callee="447700900555")
    assert {call(live, 100 + n, unjudged, at=NOW + n) for n in range(10)} == {LiveStatus.OK}


def test_concurrent_caller_counts_live_calls_and_a_teardown_gives_one_back(live, client):
    check = fraud(FraudRule.CONCURRENT_CALLER, high_risk=False)
    assert [call(live, n, check, at=NOW) for n in range(4)] == [LiveStatus.OK] * 4
    slots = live.keys.call_slots(1, 1, None, [1], caller=check.caller)
    assert live.teardown("call-0", 1, slots)
    assert call(live, 4, check, at=NOW) is LiveStatus.OK  # four live again, not five
    assert call(live, 5, check, at=NOW) is LiveStatus.FRAUD_CONCURRENT_CALLER


def test_spend_velocity_sums_the_reserved_cost_against_the_floor_or_the_accounts_daily_spend(live, client):
    check = fraud(FraudRule.SPEND_VELOCITY, high_risk=False, spend=50_000, floor=200_000)  # 5.00 a call, 20.00
    answers = [call(live, n, check, at=NOW + n) for n in range(4)]
    assert answers == [LiveStatus.OK] * 3 + [LiveStatus.FRAUD_SPEND_VELOCITY]
    assert client.zscore(live.keys.dynamic_blacklist(), account_subject(1)) is not None
    # An account that usually spends 10,000.00 a day may reserve 5% of it (500.00) in the window.
    client.hset(live.keys.fraud_daily_spend, "2", 100_000_000)
    answers = [call(live, 10 + n, check, at=NOW + n, account_id=2) for n in range(20)]
    assert set(answers) == {LiveStatus.OK}


def test_new_destination_is_judged_once_the_account_has_a_history(live, client):
    rule = FraudRuleCheck("new_destination", 2, 3, HOUR, HOUR, False)
    # A brand-new account: every country is new to it, so nothing is judged in its first window.
    assert {call(live, n, fraud(rule, high_risk=False, country="44"), at=NOW + n) for n in range(5)} == {LiveStatus.OK}
    later = NOW + HOUR + 1
    assert call(live, 10, fraud(rule, high_risk=False, country="44"), at=later) is LiveStatus.OK  # known by now
    answers = [call(live, 20 + n, fraud(rule, high_risk=False, country="53"), at=later + n) for n in range(3)]
    assert answers == [LiveStatus.OK, LiveStatus.OK, LiveStatus.FRAUD_NEW_DESTINATION]


def test_without_rules_nothing_is_counted(live, client, prefix):
    check = fraud()
    assert call(live, 1, check) is LiveStatus.OK
    assert list(client.scan_iter(f"{prefix}:fraud:*")) == []


@pytest.mark.parametrize("member", [account_subject(1), account_high_risk_subject(1)])
def test_an_operators_permanent_account_entry_refuses_the_calls_it_covers(live, client, member):
    client.zadd(live.keys.dynamic_blacklist(), {member: NEVER_EXPIRES_MS})
    assert call(live, 1, fraud(FraudRule.HIGH_RISK_RATE)) is LiveStatus.ACCOUNT_DYNAMIC_BLACKLISTED


# ---------------------------------------------------------------------------
# What decide gives the rules (pure: the snapshot and the call alone)


def _check(**world):
    snap = F.indexed(**world)
    plan = dec.plan_call(F.facts(), snap)
    assert isinstance(plan, dec.Plan), plan
    return dec.fraud_check(plan, "n1", snap.listed_high_risk(plan.callee))


def test_a_callee_in_a_high_risk_group_is_high_risk_for_every_gateway_unless_one_is_exempt():
    listed = [F.list_group(30, "highrisk", prefixes=("4477009",))]
    assert _check(list_groups=listed).high_risk is True  # attached to no gateway, it applies to all
    assert _check(list_groups=listed, gateway={"high_risk_exempt": True}).high_risk is False
    assert _check(list_groups=listed, customer={"high_risk_exempt": True}).high_risk is False
    assert _check().high_risk is False


def test_a_destination_as_dear_as_the_parameter_is_high_risk_listed_or_not():
    cheap = _check(params={"SS_FRAUD_HIGH_RISK_COST_PER_MINUTE": 10**9})
    dear = _check(params={"SS_FRAUD_HIGH_RISK_COST_PER_MINUTE": cheap.spend_units})
    assert (cheap.high_risk, dear.high_risk) == (False, True)


def test_a_white_listed_number_is_never_judged_by_the_rules():
    white = [F.list_group(20, "white", numbers=("15551230000",)), F.list_group(21, "white", prefixes=("44",))]
    check = _check(list_groups=white, gateway={"caller_list_group_ids": (20,), "callee_list_group_ids": (21,)})
    assert (check.caller, check.callee) == ("", "")
    assert _check().caller == "15551230000"


def test_rules_switched_off_are_not_sent_and_none_at_all_sends_nothing():
    off = {RULE_PARAMS[r].enabled: False for r in SETUP_RULES}
    assert _check(params=off) is None
    one = {**off, RULE_PARAMS[FraudRule.HIGH_RISK_RATE].enabled: True}
    assert [r.rule for r in _check(params=one).rules] == ["high_risk_rate"]


def test_a_block_goes_to_the_gateways_own_list_only_in_standalone_run_mode():
    standalone = {"dynamic_blacklist_standalone": True}
    assert _check(gateway=standalone).scope_gateway is None  # central run mode: one list for all
    assert _check(gateway=standalone, params={"SS_BLACK_LIST_DYNAMIC_RUN_MODE": 1}).scope_gateway == 1
    assert _check(params={"SS_BLACK_LIST_DYNAMIC_RUN_MODE": 1}).scope_gateway is None
