"""The anti-fraud contract: the event's codec, the blacklist subjects, the rules' parameters and keys."""

import msgspec
import pytest

from callcore import contract
from callcore.contract import (
    FraudEvent,
    FraudRule,
    Severity,
    SubjectKind,
    account_high_risk_subject,
    account_subject,
    decode_event,
    encode_event,
    parse_subject,
    rule_params,
)


def an_event(**changes):
    fields = dict(
        rule=FraudRule.HIGH_RISK_RATE,
        severity=Severity.CRITICAL,
        subject=account_high_risk_subject(42),
        scope="central",
        mapping_gateway_id=None,
        account_id=42,
        figures={"count": 5, "window_s": 60, "warning": 3, "critical": 5},
        evidence=["a@1", "b@1", "c@1", "d@1", "e@1"],
        blocked=True,
        ttl_s=3600,
        detected_ms=1_700_000_000_123,
        node="cc1",
    )
    fields.update(changes)
    return FraudEvent(**fields)


def test_an_event_round_trips():
    event = an_event(mapping_gateway_id=7, scope="gateway", figures={"cost": 12345, "ratio": 0.5})

    decoded = decode_event(encode_event(event))

    assert decoded == event
    assert decoded.rule == "high_risk_rate" and decoded.severity == "critical"


def test_the_event_is_json_text_readable_by_anyone():
    raw = encode_event(an_event())

    assert isinstance(raw, bytes)
    assert msgspec.json.decode(raw)["subject"] == "acct:42:hr"
    assert decode_event(raw.decode()) == an_event()


def test_a_warning_decodes_with_no_gateway_and_no_account():
    event = an_event(severity=Severity.WARNING, blocked=False, ttl_s=0, account_id=None, subject="4420123")

    assert decode_event(encode_event(event)).account_id is None


@pytest.mark.parametrize(
    "raw",
    [
        b'{"rule": "x"}',  # fields missing
        b"not json",
        b'{"rule":"r","severity":"s","subject":"1","scope":"central","mapping_gateway_id":"seven",'
        b'"account_id":null,"figures":{},"evidence":[],"blocked":true,"ttl_s":1,"detected_ms":1,"node":"n"}',
    ],
)
def test_a_malformed_event_is_refused(raw):
    with pytest.raises(msgspec.ValidationError if raw.startswith(b"{") else msgspec.DecodeError):
        decode_event(raw)


def test_account_subjects():
    assert account_subject(42) == "acct:42"
    assert account_high_risk_subject(42) == "acct:42:hr"


@pytest.mark.parametrize(
    "member, kind, value",
    [
        ("4420123", SubjectKind.NUMBER, "4420123"),
        ("+4420123", SubjectKind.NUMBER, "+4420123"),
        (b"4420123", SubjectKind.NUMBER, "4420123"),
        ("acct:42", SubjectKind.ACCOUNT, "42"),
        (b"acct:7:hr", SubjectKind.ACCOUNT_HIGH_RISK, "7"),
    ],
)
def test_parse_subject(member, kind, value):
    assert parse_subject(member) == (kind, value)
    assert parse_subject(member)[0] == kind.value  # a plain string to code that compares text


@pytest.mark.parametrize("member", ["", "+", "acct:", "acct:x", "acct:42:xx", "acct::hr", "44 20", "abc", "４２"])
def test_parse_subject_refuses_what_is_no_subject(member):
    with pytest.raises(ValueError):
        parse_subject(member)


def test_every_rule_names_declared_parameters():
    for rule in FraudRule:
        names = rule_params(rule)
        for name in (names.enabled, names.report_only, names.warning, names.critical, names.window, names.expire):
            if name is not None:
                assert name in contract.PARAMETERS_BY_NAME, (rule, name)


def test_the_vos_names_are_kept_where_vos_has_the_rule():
    assert rule_params("malicious_caller").critical == "SS_BLACK_LIST_CALLER_MALICIOUS_CALL_CHECK_LIMIT"
    assert rule_params("no_answer_callee").window == "SS_BLACK_LIST_NO_ANSWER_PERIODS"
    assert rule_params("high_risk_rate").warning == "SS_FRAUD_HIGH_RISK_RATE_WARNING"
    defaults = contract.default_parameters()
    assert defaults["SS_BLACK_LIST_CALLER_MALICIOUS_CALL_CHECK_LIMIT"] == 6
    assert defaults["SS_BLACK_LIST_CALLER_MALICIOUS_CALL_CHECK_INTERVAL"] == 600
    assert defaults["SS_BLACK_LIST_DYNAMIC_RUN_MODE"] == 0


def test_each_rule_warns_before_it_blocks():
    defaults = contract.default_parameters()
    for rule in FraudRule:
        names = rule_params(rule)
        assert defaults[names.enabled] is True and defaults[names.report_only] is False
        if defaults[names.critical]:
            assert 0 < defaults[names.warning] < defaults[names.critical], rule


def test_setup_and_post_call_rules_partition_the_rules():
    assert set(contract.SETUP_RULES) | set(contract.POST_CALL_RULES) == set(FraudRule)
    assert not set(contract.SETUP_RULES) & set(contract.POST_CALL_RULES)


def test_the_fraud_keys_live_under_the_prefix():
    keys = contract.Keys("p")

    assert keys.fraud_events == "p:fraud:events"
    assert keys.fraud_exempt == "p:fraud:exempt"
    assert keys.fraud_window("malicious_caller", "44:55") == "p:fraud:win:malicious_caller:44:55"
    assert keys.disconnects("cc1") == "p:live:disconnects:cc1"
