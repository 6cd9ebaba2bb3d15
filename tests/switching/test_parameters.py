"""System parameters: declared once, typed, range-checked, VOS spelling accepted."""

import pytest
from django.core.exceptions import ValidationError

from callcore.contract import PARAMETERS, PARAMETERS_BY_NAME
from softswitch_portal.core.models import SystemParameter

DOMAIN_TABLE = {
    "SERVER_BILLING_RECORD_ILLEGAL_CALL": 1,
    "SERVER_BILLING_RECORD_ZERO_HOLD_TIME": 1,
    "SERVER_BILLING_RECORD_SERVER_HANG_UP": 1,
    "SERVER_BILLING_FEE_PRECISION": 2,
    "SERVER_BILLING_HOLD_TIME_PRECISION": 50,
    "SERVER_BILLING_FREE_TIME": 0,
    "SERVER_BILLING_PREVENT_OVERDRAFT_ADVANCE_TIME": 60,
    "SERVER_BILLING_GATEWAY_ROUTE_PREFIX": 0,
    "SS_GATEWAY_SWITCH_LIMIT": 0,
    "SS_SIP_STOP_SWITCH_AFTER_SDP": 1,
    "SS_SIP_TIMEOUT_INVITE": 8,
    "SS_MAX_CPS": 0,
    "SS_MAX_LOGIN_FAILED": 5,
    "SS_LOGIN_LOCK_TIME": 30,
    "SS_CLIENT_LOW_BALANCE_ALARM": 0,
    "SS_ENABLE_CALL_LIMIT": 1,
}
# This project's own, beyond DOMAIN.md's table: the Best ASR route policy's measure.
PROJECT_TABLE = {
    # The media proxy's silence limit (callcore.media), off by default.
    "SS_MEDIA_TIMEOUT_SECONDS": 0,
    "SS_ROUTE_ASR_WINDOW_MINUTES": 60,
    "SS_ROUTE_ASR_MIN_ATTEMPTS": 20,
    # Payments above it need the large-payment permission (softswitch_portal.core.roles).
    "SS_PAYMENT_APPROVAL_AMOUNT": 1000,
    # Alarms (security.alarms): the e-mail throttle and the detectors' thresholds.
    "SS_ALARM_EMAIL_THROTTLE": 900,
    "SS_ALARM_ILLEGAL_CALL_LIMIT": 20,
    "SS_ALARM_ILLEGAL_CALL_WINDOW": 300,
    "SS_ALARM_GATEWAY_MIN_CALLS": 30,
    "SS_ALARM_ASR_DROP_PERCENT": 50,
    "SS_ALARM_ACD_DROP_PERCENT": 50,
    "SS_ALARM_TRAFFIC_SPIKE_FACTOR": 3,
    "SS_ALARM_TRAFFIC_SPIKE_MIN_CALLS": 100,
    "SS_ALARM_INGEST_LAG": 120,
    "SS_ALARM_NODE_SILENT": 20,
    "SS_ALARM_EVENT_CLOSE_AFTER": 3600,
    # Source-IP bans (callcore.bans): the first ban's length, its cap, and what trips one.
    "SS_BAN_SECONDS": 300,
    "SS_BAN_MAX_SECONDS": 86400,
    "SS_BAN_WINDOW_SECONDS": 60,
    "SS_BAN_AUTH_FAILURES_PER_IP": 5,
    "SS_BAN_AUTH_FAILURES_PER_USER": 10,
    "SS_BAN_ILLEGAL_CALLS_PER_IP": 50,
    "SS_BAN_EXEMPT_GATEWAYS": 1,
}


def test_every_parameter_of_the_domain_table_is_declared_with_its_default():
    # The anti-fraud rules' parameters are checked by tests/callcore/test_fraud_contract.py.
    declared = {p.name: int(p.default) for p in PARAMETERS if not p.name.startswith(("SS_FRAUD_", "SS_BLACK_LIST_"))}
    assert declared == DOMAIN_TABLE | PROJECT_TABLE


def test_every_parameter_has_a_description():
    assert all(p.description for p in PARAMETERS)


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("SERVER_BILLING_FEE_PRECISION", "4", 4),
        ("SERVER_BILLING_FEE_PRECISION", " 0 ", 0),
        ("SERVER_BILLING_RECORD_ILLEGAL_CALL", "0", False),
        ("SERVER_BILLING_RECORD_ILLEGAL_CALL", "true", True),
        ("SS_SIP_TIMEOUT_INVITE", 30, 30),
    ],
)
def test_it_parses_values_into_the_declared_type(name, raw, expected):
    value = PARAMETERS_BY_NAME[name].parse(raw)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("SERVER_BILLING_FEE_PRECISION", "5", "at most 4"),
        ("SERVER_BILLING_FEE_PRECISION", "-1", "at least 0"),
        ("SERVER_BILLING_FEE_PRECISION", "two", "must be an integer"),
        ("SERVER_BILLING_FEE_PRECISION", "2.5", "must be an integer"),
        ("SERVER_BILLING_RECORD_ILLEGAL_CALL", "maybe", "must be 0 or 1"),
        ("SS_SIP_TIMEOUT_INVITE", "0", "at least 1"),
    ],
)
def test_it_refuses_ill_typed_or_out_of_range_values(name, raw, message):
    with pytest.raises(ValueError, match=message):
        PARAMETERS_BY_NAME[name].parse(raw)


@pytest.mark.django_db
def test_the_model_refuses_an_out_of_range_value_on_the_value_field():
    param = SystemParameter(name="SERVER_BILLING_FEE_PRECISION", value="7")
    with pytest.raises(ValidationError) as exc:
        param.full_clean()
    assert "at most 4" in str(exc.value.message_dict["value"])


@pytest.mark.django_db
def test_the_model_refuses_an_unknown_name():
    with pytest.raises(ValidationError) as exc:
        SystemParameter(name="SS_NO_SUCH_THING", value="1").full_clean()
    assert "not a known system parameter" in str(exc.value.message_dict["name"])


@pytest.mark.django_db
def test_the_vos_spelling_is_accepted_and_stored_under_the_canonical_name():
    param = SystemParameter(name="SERVER_BILLING_FEE_PRECISTION", value="3")
    param.full_clean()
    assert param.name == "SERVER_BILLING_FEE_PRECISION"
    assert param.typed_value == 3


@pytest.mark.django_db
def test_booleans_are_stored_normalised():
    param = SystemParameter(name="SS_ENABLE_CALL_LIMIT", value="yes")
    param.full_clean()
    assert param.value == "1"
