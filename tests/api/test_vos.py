"""VOS3000-compatible API: one conformance test per action, requests and answers written from the manual's tables.

Field sets are the manual's (shared/VOS_API.md sections 2 and 3): each answer
carries exactly them, typed as the manual types them (long ms, double money,
yyyyMMdd and yyyyMMddHHmmss ranges in the switch's time zone).
"""

import datetime as dt
import json
import zlib
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from billing.models import CDR, Account, Payment, Rate, RateTable
from billing.services import apply_payment
from callcore import geo
from callcore.contract import IpCountryKeys, Keys, Registration, encode_registration, registration_field
from callcore.contract.snapshot import digest_ha1
from security import alarms, ip_countries
from security.models import Alarm, BlackWhiteListGroup, IpCountryRange, ListEntry
from softswitch_portal.core.redis import prefix
from softswitch_portal.switching.models import MappingGateway, Phone, RoutingGateway
from softswitch_portal.vos.models import VosAccessRule

pytestmark = pytest.mark.django_db

IP_COUNTRY_SAMPLE = Path(__file__).resolve().parents[1] / "security" / "data" / "delegated-test-extended.txt"

INFO_CUSTOMER = {
    "account", "name", "money", "limitMoney", "feeRateGroup", "type", "lockType", "agentAccount", "phoneBookLimit",
    "canceled", "startTime", "validTime", "todayConsumption", "ctdBillingType", "category", "bindedE164s", "memo",
    "infoCustomerAdditional",
}  # fmt: skip
INFO_CDR = {
    "callerE164", "callerAccessE164", "callerToGatewayE164", "callerProductId", "callerGateway", "callerip",
    "calleeE164", "calleeAccessE164", "calleeToGatewayE164", "calleeProductId", "calleeGateway", "calleeip", "start",
    "stop", "holdTime", "feeTime", "fee", "feePrefix", "suiteFee", "suiteFeeTime", "agentFee", "agentFeeTime",
    "agentFeePrefix", "agentSuiteFee", "agentSuiteFeeTime", "callLevel", "account", "accountName", "agentAccount",
    "agentName", "endDirection", "endReason", "calleeBilling", "billingMode", "flowNo",
}  # fmt: skip
INFO_PAY = {"account", "money", "validTime", "payMoney"}
INFO_PAY_HISTORY = {"account", "fee", "type", "payType", "customerMoney", "payTime", "memo"}
INFO_FEE_RATE = {
    "feePrefix", "areaCode", "type", "areaName", "infoFeeRateSections", "fee", "period", "lockType", "ivrFee",
    "ivrPeriod",
}  # fmt: skip
# InfoCurrentCall without the RTP flow structures, whose field names the manual leaves unclear.
INFO_CURRENT_CALL = {
    "callerE164", "calleeE164", "callerGatewayId", "calleeGatewayId", "connectedTime", "keepTime", "callCodec",
    "callerCodec", "calleeCodec", "callerRtpIp", "calleeRtpIp", "callerReceiveDtmf", "callerSendDtmf",
    "calleeReceiveDtmf", "calleeSendDtmf", "callerTerminal", "calleeTerminal", "callerCryptoType", "calleeCryptoType",
    "callerLocalIp", "calleeLocalIp", "callId",
}  # fmt: skip
INFO_ALARM_CURRENT = {
    "id", "type", "level", "name", "startTime", "stopTime", "value", "upper", "lower", "confirmUser", "confirmTime",
    "memo",
}  # fmt: skip
ONLINE = {
    "id", "name", "currentCall", "capacity", "asr", "acd", "localIp", "registerTime", "updateTime", "keepTime",
    "cryptoType", "softswitchName", "softswitchIp",
}  # fmt: skip


@pytest.fixture
def vos(client, db):
    """Posts ``body`` as VOS scripts do (raw JSON, any content type) from 127.0.0.1, allowed by an access rule."""
    VosAccessRule.objects.create(network="127.0.0.1")

    def call(action, body=None, raw=None):
        data = raw if raw is not None else json.dumps(body or {})
        response = client.post(f"/external/server/{action}", data=data,
                               content_type="application/x-www-form-urlencoded;charset=UTF-8")  # fmt: skip
        assert response.status_code == 200
        assert response["Content-Type"] == "text/html;charset=UTF-8" and response["Pragma"] == "no-cache"
        return json.loads(response.content)

    return call


@pytest.fixture
def acme(db):
    table = RateTable.objects.create(name="Retail")
    Rate.objects.create(rate_table=table, prefix="44", area="United Kingdom", price_per_minute=Decimal("0.0200"),
                        first_period=30, next_period=6)  # fmt: skip
    account = Account.objects.create(name="800801", rate_table=table, credit_limit=Decimal("5"), description="Acme")
    apply_payment(account, "recharge", Decimal("100"), None, memo="opening")
    return account


def ok(answer):
    assert answer["retCode"] == 0, answer
    return answer


def ms(moment):
    return int(moment.timestamp() * 1000)


# -- envelope and access


def test_an_address_without_an_access_rule_is_refused(client, acme):
    answer = json.loads(client.post("/external/server/GetAllCustomers", "{}", content_type="text/plain").content)
    assert answer["retCode"] == -10001 and "127.0.0.1" in answer["exception"]


def test_an_api_client_with_the_vos_flag_may_call_with_its_token(client, make_client, acme):
    _, token = make_client(scopes=["read"], vos_api=True)
    answer = json.loads(
        client.post(
            "/external/server/GetAllCustomers", "{}", content_type="text/plain", HTTP_AUTHORIZATION=f"Token {token}"
        ).content  # fmt: skip
    )
    assert answer["retCode"] == 0 and answer["accounts"] == ["800801"]
    _, plain = make_client(scopes=["read"])
    refused = json.loads(
        client.post(
            "/external/server/GetAllCustomers", "{}", content_type="text/plain", HTTP_AUTHORIZATION=f"Token {plain}"
        ).content  # fmt: skip
    )
    assert refused["retCode"] == -10001 and "VOS3000" in refused["exception"]
    # Its scopes hold: a read-only client may not pay.
    paid = json.loads(
        client.post(
            "/external/server/Pay",
            json.dumps({"ownerName": "800801", "ownerType": 2, "money": 5}),
            content_type="text/plain",
            HTTP_AUTHORIZATION=f"Token {token}",
        ).content  # fmt: skip
    )
    assert paid["retCode"] == -10001 and "money" in paid["exception"]


def test_bad_bodies_and_unknown_actions_answer_a_retcode(vos, acme):
    assert vos("GetCustomer", raw="{not json")["retCode"] == -10003
    assert vos("GetCustomer", raw="[1, 2]")["retCode"] == -10003
    assert vos("NoSuchAction")["retCode"] == -10002
    answer = vos("GetCustomer", {"accounts": "800801"})
    assert answer["retCode"] == -10004 and "accounts" in answer["exception"]


# -- accounts


def test_create_customer(vos, acme):
    ok(vos("CreateCustomer", {"account": "800802", "name": "Beta", "money": 12.5, "limitMoney": 3,
                              "feeRateGroup": "Retail", "lockType": 0, "memo": "new"}))  # fmt: skip
    made = Account.objects.get(name="800802")
    assert made.balance == Decimal("12.5") and made.credit_limit == 3 and made.rate_table.name == "Retail"
    assert Payment.objects.get(account=made).memo == "Opening balance"
    assert vos("CreateCustomer", {"account": "800802", "name": "Beta"})["retCode"] == -10005
    missing = vos("CreateCustomer", {"account": "800803", "name": "Gamma", "feeRateGroup": "Nope"})
    assert missing["retCode"] == -10007 and "feeRateGroup" in missing["exception"]


def test_modify_customer(vos, acme):
    ok(vos("ModifyCustomer", {"account": "800801", "lockType": 1, "limitMoney": 7.25}))
    acme.refresh_from_db()
    assert acme.locked and acme.credit_limit == Decimal("7.25") and acme.description == "Acme"
    refused = vos("ModifyCustomer", {"account": "800801", "money": 1000})
    assert refused["retCode"] == -10004 and "Pay" in refused["exception"]
    assert vos("ModifyCustomer", {"account": "nobody"}) == {
        "retCode": -10007,
        "exception": vos("ModifyCustomer", {"account": "nobody"})["exception"],
    }


def test_delete_customer(vos, acme):
    MappingGateway.objects.create(name="acme-sbc", account=acme, remote_ips=["192.0.2.10"])
    in_use = vos("DeleteCustomer", {"account": "800801"})
    assert in_use["retCode"] == -10006 and "acme-sbc" in in_use["exception"]
    Account.objects.create(name="800809")
    ok(vos("DeleteCustomer", {"account": "800809"}))
    assert not Account.objects.filter(name="800809").exists()


def test_get_customer(vos, acme):
    Phone.objects.create(username="4930111", password="long-enough-secret", account=acme)
    answer = ok(vos("GetCustomer", {"accounts": ["800801"]}))
    (info,) = answer["infoCustomers"]
    assert set(info) == INFO_CUSTOMER
    assert info["account"] == "800801" and info["money"] == 100.0 and info["limitMoney"] == 5.0
    assert info["feeRateGroup"] == "Retail" and info["type"] == 0 and info["lockType"] == 0
    assert info["startTime"] == ms(acme.created) and info["bindedE164s"] == [] and info["memo"] == "Acme"
    by_phone = ok(vos("GetCustomer", {"e164s": ["4930111"]}))["infoCustomers"]
    assert [c["account"] for c in by_phone] == ["800801"]
    assert vos("GetCustomer", {})["retCode"] == -10004


def test_get_all_customers(vos, acme):
    Account.objects.create(name="900900", account_type="vendor")
    assert ok(vos("GetAllCustomers"))["accounts"] == ["800801", "900900"]
    briefs = ok(vos("GetAllCustomers", {"type": 1}))["infoCustomerBriefs"]
    assert briefs == [{"account": "800801", "money": 100.0, "limitMoney": 5.0},
                      {"account": "900900", "money": 0.0, "limitMoney": 0.0}]  # fmt: skip


# -- money and history


def test_pay(vos, acme):
    answer = ok(vos("Pay", {"ownerName": "800801", "ownerType": 2, "money": 25.5, "memo": "wire 42"}))
    assert answer["infoPay"] == {"account": "800801", "money": 125.5, "validTime": 0, "payMoney": 25.5}
    assert set(answer["infoPay"]) == INFO_PAY
    taken = ok(vos("Pay", {"ownerName": "800801", "ownerType": 2, "money": -0.5}))
    assert taken["infoPay"]["money"] == 125.0
    Phone.objects.create(username="4930111", password="long-enough-secret", account=acme)
    assert ok(vos("Pay", {"ownerName": "4930111", "ownerType": 6, "money": 1}))["infoPay"]["account"] == "800801"
    acme.refresh_from_db()
    assert acme.balance == Decimal("126")
    assert vos("Pay", {"ownerName": "800801", "ownerType": 11, "money": 1})["retCode"] == -10004
    assert vos("Pay", {"ownerName": "800801", "ownerType": 2, "money": 0})["retCode"] == -10004


def test_get_pay_history(vos, acme):
    apply_payment(acme, "deduct", Decimal("3"), None, memo="fix")
    now = timezone.localtime()
    begin = (now - dt.timedelta(hours=1)).strftime("%Y%m%d%H%M%S")
    end = (now + dt.timedelta(hours=1)).strftime("%Y%m%d%H%M%S")
    history = ok(vos("GetPayHistory", {"account": "800801", "beginTime": begin, "endTime": end}))["infoPayHistorys"]
    assert [set(row) for row in history] == [INFO_PAY_HISTORY, INFO_PAY_HISTORY]
    assert [(row["type"], row["fee"], row["customerMoney"], row["memo"]) for row in history] == [
        (0, 100.0, 100.0, "opening"),
        (1, 3.0, 97.0, "fix"),
    ]
    assert history[0]["payTime"] == ms(Payment.objects.filter(account=acme).order_by("id")[0].created)
    bad = vos("GetPayHistory", {"account": "800801", "beginTime": "2026-01-01", "endTime": end})
    assert bad["retCode"] == -10004 and "beginTime" in bad["exception"]


def make_cdr(account, start, **fields):
    values = {"call_uuid": f"c-{start.timestamp()}", "start_time": start, "billing_mode": 1, "account": account,
              "account_name": account.name, "caller_number": "4930111", "callee_number": "00447911123456",
              "callee_number_routed": "447911123456", "callee_number_out": "99447911123456",
              "mapping_gateway_name": "acme-sbc", "routing_gateway_name": "Vendor A", "caller_ip": "192.0.2.10",
              "vendor_ip": "198.51.100.5", "hold_time_ms": 61_400, "fee_time": 66, "fee": Decimal("0.0220"),
              "vendor_cost": Decimal("0.0100"), "rate_prefix": "44", "end_direction": 0, "sip_status": 200,
              "end_reason": "normal_clearing", "caller_user_agent": "Acme SBC",
              "stop_time": start + dt.timedelta(seconds=70),
              "answer_time": start + dt.timedelta(seconds=8)}  # fmt: skip
    values.update(fields)
    return CDR.objects.create(**values)


def test_get_cdr(vos, acme):
    today = timezone.localtime().replace(hour=12, minute=0, second=0, microsecond=0)
    cdr = make_cdr(acme, today)
    make_cdr(acme, today - dt.timedelta(days=2), call_uuid="old")
    day = today.strftime("%Y%m%d")
    (info,) = ok(vos("GetCdr", {"accounts": ["800801"], "beginTime": day, "endTime": day}))["infoCdrs"]
    assert set(info) == INFO_CDR
    assert info == {
        **info,
        "callerE164": "4930111", "calleeE164": "447911123456", "calleeAccessE164": "00447911123456",
        "calleeToGatewayE164": "99447911123456", "callerGateway": "acme-sbc", "calleeGateway": "Vendor A",
        "callerip": "192.0.2.10", "calleeip": "198.51.100.5", "start": ms(today),
        "stop": ms(today + dt.timedelta(seconds=70)), "holdTime": 61, "feeTime": 66, "fee": 0.022, "feePrefix": "44",
        "account": "800801", "endDirection": 0, "endReason": 200, "billingMode": 1, "flowNo": cdr.pk,
        # agentFee is a reseller's charge, not the vendor cost: this switch has no resellers.
        "agentFee": 0.0, "agentAccount": "",
    }  # fmt: skip
    filtered = ok(vos("GetCdr", {"accounts": ["800801"], "beginTime": day, "endTime": day, "calleeE164": "4412"}))
    assert filtered["infoCdrs"] == []
    two_days = (today - dt.timedelta(days=2)).strftime("%Y%m%d")
    assert len(ok(vos("GetCdr", {"accounts": ["800801"], "beginTime": two_days, "endTime": day}))["infoCdrs"]) == 2
    assert vos("GetCdr", {"accounts": ["800801"], "beginTime": day})["retCode"] == -10004


# -- gateways


def test_create_gateway_mapping(vos, acme):
    ok(vos("CreateGatewayMapping", {"name": "acme-sbc", "account": "800801", "remoteIps": "192.0.2.10,192.0.2.0/28",
                                    "capacity": 30, "calloutCalleePrefixesAllow": False,
                                    "calloutCalleePrefixes": "900,1900", "firstRoutePolicy": 2}))  # fmt: skip
    gateway = MappingGateway.objects.get(name="acme-sbc")
    assert gateway.remote_ips == ["192.0.2.10", "192.0.2.0/28"] and gateway.capacity == 30
    assert gateway.prefix_forbid == ["900", "1900"] and gateway.route_policy == "least_cost"
    clash = vos("CreateGatewayMapping", {"name": "other", "account": "800801", "remoteIps": "192.0.2.10"})
    assert clash["retCode"] == -10004 and "acme-sbc" in clash["exception"]


def test_modify_gateway_mapping(vos, acme):
    MappingGateway.objects.create(name="acme-sbc", account=acme, remote_ips=["192.0.2.10"])
    ok(vos("ModifyGatewayMapping", {"name": "acme-sbc", "lockType": 3, "capacity": 5}))
    gateway = MappingGateway.objects.get(name="acme-sbc")
    assert not gateway.enabled and gateway.capacity == 5 and gateway.remote_ips == ["192.0.2.10"]
    bad = vos("ModifyGatewayMapping", {"name": "acme-sbc", "remoteIps": "300.1.1.1"})
    assert bad["retCode"] == -10004 and "remote_ips" in bad["exception"]


def test_delete_gateway_mapping(vos, acme):
    MappingGateway.objects.create(name="acme-sbc", account=acme, remote_ips=["192.0.2.10"])
    ok(vos("DeleteGatewayMapping", {"name": "acme-sbc"}))
    assert vos("DeleteGatewayMapping", {"name": "acme-sbc"})["retCode"] == -10007


def test_get_gateway_mapping(vos, acme):
    MappingGateway.objects.create(name="acme-sbc", account=acme, remote_ips=["192.0.2.10"], prefix_allow=["44"])
    (info,) = ok(vos("GetGatewayMapping", {"names": ["acme-sbc"]}))["infoGatewayMappings"]
    assert info["name"] == "acme-sbc" and info["remoteIps"] == "192.0.2.10" and info["account"] == "800801"
    assert info["accountName"] == "800801" and info["lockType"] == 0
    assert info["calloutCalleePrefixesAllow"] is True and info["calloutCalleePrefixes"] == "44"
    assert len(ok(vos("GetGatewayMapping"))["infoGatewayMappings"]) == 1


def live_call(redis_client, call_id, **entry):
    keys = Keys(prefix())
    redis_client.hset(keys.live_calls, call_id, json.dumps(entry))
    return keys


@pytest.fixture
def live(redis_client):
    keys = Keys(prefix())
    yield redis_client
    redis_client.delete(keys.live_calls, keys.live_answered, keys.disconnects("node-a"))


def test_get_gateway_mapping_online(vos, acme, live):
    gateway = MappingGateway.objects.create(name="acme-sbc", account=acme, remote_ips=["192.0.2.10"], capacity=9)
    live_call(live, "a@x", mapping_gateway_id=gateway.pk, route_gateway_ids=[], node="node-a", start_ms=1)
    (info,) = ok(vos("GetGatewayMappingOnline", {"names": ["acme-sbc"]}))["infoGatewayMappingOnlines"]
    assert set(info) == ONLINE | {"remoteIps"}
    assert info["currentCall"] == 1 and info["capacity"] == 9 and info["registerTime"] == 0


def test_create_gateway_routing(vos, acme):
    Account.objects.create(name="Carrier", account_type="vendor")
    ok(vos("CreateGatewayRouting", {"name": "Vendor A", "remoteIp": "198.51.100.5", "signalPort": 5070,
                                    "prefix": "44,33", "priority": 10, "clearingAccount": "Carrier"}))  # fmt: skip
    gateway = RoutingGateway.objects.get(name="Vendor A")
    assert (gateway.host, gateway.port, gateway.prefixes, gateway.priority) == ("198.51.100.5", 5070, ["44", "33"], 10)
    assert gateway.clearing_account.name == "Carrier"
    h323 = vos("CreateGatewayRouting", {"name": "Vendor B", "remoteIp": "198.51.100.6", "protocol": 0})
    assert h323["retCode"] == -10004 and "protocol" in h323["exception"]


def test_modify_gateway_routing(vos, acme):
    RoutingGateway.objects.create(name="Vendor A", host="198.51.100.5")
    ok(vos("ModifyGatewayRouting", {"name": "Vendor A", "lockType": 3, "signalPort": 5080}))
    gateway = RoutingGateway.objects.get(name="Vendor A")
    assert not gateway.enabled and gateway.port == 5080 and gateway.host == "198.51.100.5"


def test_delete_gateway_routing(vos, acme):
    RoutingGateway.objects.create(name="Vendor A", host="198.51.100.5")
    ok(vos("DeleteGatewayRouting", {"name": "Vendor A"}))
    assert not RoutingGateway.objects.exists()


def test_get_gateway_routing(vos, acme):
    RoutingGateway.objects.create(name="Vendor A", host="198.51.100.5", port=5070, prefixes=["44"], priority=10)
    (info,) = ok(vos("GetGatewayRouting", {"names": ["Vendor A"]}))["infoGatewayRoutings"]
    assert (info["remoteIp"], info["signalPort"], info["prefix"], info["priority"], info["protocol"]) == (
        "198.51.100.5", 5070, "44", 10, 1)  # fmt: skip


def test_get_gateway_routing_online(vos, acme, live):
    gateway = RoutingGateway.objects.create(name="Vendor A", host="198.51.100.5")
    live_call(live, "a@x", mapping_gateway_id=None, route_gateway_ids=[gateway.pk], node="node-a", start_ms=1)
    (info,) = ok(vos("GetGatewayRoutingOnline"))["infoGatewayRoutingOnlines"]
    assert set(info) == ONLINE | {"remoteIp", "prefix", "responseRatio", "connectedRatio", "retryAfter"}
    assert info["currentCall"] == 1 and info["remoteIp"] == "198.51.100.5"


# -- phones


def test_create_phone(vos, acme):
    answer = ok(vos("CreatePhone", {"autoCreateAccount": False, "e164": "4930111", "account": "800801"}))
    phone = Phone.objects.get(username="4930111")
    # The password generated is the one the phone's digest hash was made from (the switch keeps only that).
    assert phone.ha1 == digest_ha1("4930111", phone.digest_realm, answer["password"])
    ok(vos("CreatePhone", {"autoCreateAccount": True, "e164": "4930222", "password": "long-enough-secret"}))
    assert Phone.objects.get(username="4930222").account.name == "4930222"
    assert vos("CreatePhone", {"e164": "4930333"})["retCode"] == -10004  # autoCreateAccount is M


def test_modify_phone(vos, acme):
    Phone.objects.create(username="4930111", password="long-enough-secret", account=acme)
    ok(vos("ModifyPhone", {"e164": "4930111", "lineCapacity": 4, "lockType": 3}))
    phone = Phone.objects.get(username="4930111")
    assert phone.capacity == 4 and not phone.enabled
    short = vos("ModifyPhone", {"e164": "4930111", "password": "short"})
    assert short["retCode"] == -10004 and "password" in short["exception"]


def test_delete_phone(vos, acme):
    Phone.objects.create(username="4930111", password="long-enough-secret", account=acme)
    ok(vos("DeletePhone", {"e164": "4930111"}))
    assert not Phone.objects.exists()


def test_get_phone(vos, acme):
    Phone.objects.create(username="4930111", password="long-enough-secret", account=acme, capacity=2)
    (info,) = ok(vos("GetPhone", {"accounts": ["800801"]}))["infoPhones"]
    assert info == {"e164": "4930111", "account": "800801", "lockType": 0, "lineCapacity": 2, "memo": ""}
    assert "password" not in info


INFO_PHONE_ONLINE = {
    "e164", "currentCall", "remoteIp", "localIp", "registerTime", "updateTime", "protocol", "cryptoType", "productId",
}  # fmt: skip


@pytest.fixture
def registered(live):
    """Records a REGISTER as a node does (contract.registrations); removed afterwards."""
    keys = Keys(prefix())

    def record(phone, *, node="node-a", registered_ms, expires_ms, source_ip="203.0.113.5", user_agent="Yealink"):
        reg = Registration(aor=phone.username, contact=f"sip:{phone.username}@{source_ip}:5060", source_ip=source_ip,
                           source_port=5060, transport="udp", user_agent=user_agent, registered_ms=registered_ms,
                           expires_ms=expires_ms, node=node, phone_id=phone.pk)  # fmt: skip
        live.hset(keys.registrations, registration_field(node, reg.aor, reg.contact), encode_registration(reg))

    yield record
    live.delete(keys.registrations)


def test_get_phone_online(vos, acme, live, registered):
    now = int(timezone.now().timestamp() * 1000)
    phone = Phone.objects.create(username="4930111", password="long-enough-secret", account=acme)
    other = Phone.objects.create(username="4930222", password="long-enough-secret", account=acme)
    registered(phone, node="node-a", registered_ms=now - 60_000, expires_ms=now + 3_540_000, source_ip="203.0.113.4")
    registered(phone, node="node-b", registered_ms=now - 5_000, expires_ms=now + 3_595_000, user_agent="Zoiper 5")
    registered(other, registered_ms=now - 7_200_000, expires_ms=now - 3_600_000)  # expired: offline
    live_call(live, "a@x", phone_id=phone.pk, node="node-b", start_ms=now)
    live_call(live, "b@x", phone_id=phone.pk, node="node-b", start_ms=now)
    live_call(live, "c@x", phone_id=other.pk, node="node-a", start_ms=now)
    answer = ok(vos("GetPhoneOnline", {"e164s": ["4930111", "4930222", "4930999"]}))
    (info,) = answer["infoPhoneOnlines"]
    assert set(info) == INFO_PHONE_ONLINE
    # The latest of its two registrations, the two live calls it holds.
    assert info == {"e164": "4930111", "currentCall": 2, "remoteIp": "203.0.113.5", "localIp": "node-b",
                    "registerTime": now - 5_000, "updateTime": now - 5_000, "protocol": 1, "cryptoType": 0,
                    "productId": "Zoiper 5"}  # fmt: skip
    assert ok(vos("GetPhoneOnline", {"e164s": ["4930222"]}))["infoPhoneOnlines"] == []
    bad = vos("GetPhoneOnline", {"e164s": "4930111"})
    assert bad["retCode"] == -10004 and "e164s" in bad["exception"]


def test_get_all_phone_online(vos, acme, live, registered):
    now = int(timezone.now().timestamp() * 1000)
    assert ok(vos("GetAllPhoneOnline"))["e164s"] == []
    for username, expires_ms in (("4930333", now + 60_000), ("4930111", now + 60_000), ("4930222", now - 1)):
        phone = Phone.objects.create(username=username, password="long-enough-secret", account=acme)
        registered(phone, registered_ms=now - 1_000, expires_ms=expires_ms)
    assert ok(vos("GetAllPhoneOnline"))["e164s"] == ["4930111", "4930333"]


# -- live calls


def test_get_current_call(vos, acme, live):
    gateway = MappingGateway.objects.create(name="acme-sbc", account=acme, remote_ips=["192.0.2.10"])
    live_call(live, "abc@192.0.2.10", mapping_gateway_id=gateway.pk, route_gateway_ids=[], node="node-a",
              caller="4930111", callee="447911123456", start_ms=1_700_000_000_000)  # fmt: skip
    (info,) = ok(vos("GetCurrentCall", {"callerE164s": ["4930111"]}))["infoCurrentCalls"]
    assert set(info) == INFO_CURRENT_CALL
    assert info["callId"] == zlib.crc32(b"abc@192.0.2.10") & 0x7FFFFFFF
    assert info["callerGatewayId"] == "acme-sbc" and info["keepTime"] == -1  # not answered: E8 setup
    assert info["connectedTime"] == 1_700_000_000_000
    assert ok(vos("GetCurrentCall", {"calleeE164s": ["1"]}))["infoCurrentCalls"] == []


def test_disconnect_current_call(vos, acme, live):
    keys = live_call(live, "abc@192.0.2.10", mapping_gateway_id=None, route_gateway_ids=[], node="node-a",
                     start_ms=1)  # fmt: skip
    call_id = zlib.crc32(b"abc@192.0.2.10") & 0x7FFFFFFF
    ok(vos("DisconnectCurrentCall", {"callIds": [call_id]}))
    (request,) = [json.loads(item) for item in live.lrange(keys.disconnects("node-a"), 0, -1)]
    assert request == {"call_id": "abc@192.0.2.10", "end_reason": "operator_disconnect", "by": "vos:127.0.0.1"}
    assert vos("DisconnectCurrentCall", {"callIds": [call_id + 1]})["retCode"] == -10007
    assert vos("DisconnectCurrentCall", {"callIds": ["x"]})["retCode"] == -10004


# -- rates


def test_get_fee_rate_group(vos, acme):
    RateTable.objects.create(name="Wholesale", description="A-Z")
    groups = ok(vos("GetFeeRateGroup"))["infoFeeRateGroups"]
    assert groups == [{"name": "Retail", "memo": ""}, {"name": "Wholesale", "memo": "A-Z"}]
    assert ok(vos("GetFeeRateGroup", {"names": ["Wholesale"]}))["infoFeeRateGroups"] == [groups[1]]


def test_create_fee_rate_group(vos, acme):
    ok(vos("CreateFeeRateGroup", {"name": "Premium", "fakeMinute": 60, "memo": "gold"}))
    assert RateTable.objects.get(name="Premium").description == "gold"
    assert vos("CreateFeeRateGroup", {"name": "Premium"})["retCode"] == -10005


def test_modify_and_delete_fee_rate_group(vos, acme):
    RateTable.objects.create(name="Premium")
    ok(vos("ModifyFeeRateGroup", {"name": "Premium", "memo": "silver"}))
    assert RateTable.objects.get(name="Premium").description == "silver"
    ok(vos("DeleteFeeRateGroup", {"name": "Premium"}))
    assert vos("DeleteFeeRateGroup", {"name": "Retail"})["retCode"] == -10006  # the account uses it


def test_get_fee_rate(vos, acme):
    (rate,) = ok(vos("GetFeeRate", {"feeRateGroup": "Retail", "areaCodes": ["44"]}))["infoFeeRates"]
    assert set(rate) == INFO_FEE_RATE
    # 0.02 a minute charged per 6 s: 0.002 a period; the first 30 s are a section of their own.
    assert (rate["feePrefix"], rate["areaName"], rate["period"], rate["fee"]) == ("44", "United Kingdom", 6, 0.002)
    assert rate["infoFeeRateSections"] == [{"fee": 0.01, "time": 30, "position": 0}]
    assert vos("GetFeeRate", {"feeRateGroup": "Nope"})["retCode"] == -10007


# -- number groups


def test_create_limit_e164_group(vos, db):
    ok(vos("CreateLimitE164Group", {"name": "Fraud numbers", "memo": "from NOC"}))
    group = BlackWhiteListGroup.objects.get(name="Fraud numbers")
    assert group.kind == "black" and group.description == "from NOC"
    assert vos("CreateLimitE164Group", {"name": "Fraud numbers"})["retCode"] == -10005


def test_modify_and_delete_limit_e164_group(vos, db):
    BlackWhiteListGroup.objects.create(name="Fraud numbers", kind="black")
    ok(vos("ModifyLimitE164Group", {"name": "Fraud numbers", "memo": "updated"}))
    assert BlackWhiteListGroup.objects.get().description == "updated"
    ok(vos("DeleteLimitE164Group", {"name": "Fraud numbers"}))
    assert not BlackWhiteListGroup.objects.exists()


def test_get_limit_e164_group(vos, db):
    BlackWhiteListGroup.objects.create(name="Fraud numbers", kind="black", description="x")
    answer = ok(vos("GetLimitE164Group"))
    assert answer["infoLimitE164Groups"] == [{"name": "Fraud numbers", "memo": "x"}]


def test_create_limit_e164(vos, db):
    group = BlackWhiteListGroup.objects.create(name="Fraud numbers", kind="black")
    entries = [{"e164": "4930999", "memo": "wangiri"}, {"e164": "4930998"}]
    ok(vos("CreateLimitE164", {"limitE164GroupName": "Fraud numbers", "infoLimitE164s": entries}))
    assert sorted(ListEntry.objects.filter(group=group).values_list("number", "note")) == [
        ("4930998", ""), ("4930999", "wangiri")]  # fmt: skip
    bad = vos("CreateLimitE164", {"limitE164GroupName": "Fraud numbers", "infoLimitE164s": [{"e164": "49x"}]})
    assert bad["retCode"] == -10004 and "infoLimitE164s[0].e164" in bad["exception"]


def test_delete_limit_e164(vos, db):
    group = BlackWhiteListGroup.objects.create(name="Fraud numbers", kind="black")
    ListEntry.objects.create(group=group, number="4930999")
    ok(vos("DeleteLimitE164", {"limitE164GroupName": "Fraud numbers", "e164s": ["4930999"]}))
    assert not ListEntry.objects.exists()


def test_get_limit_e164(vos, db):
    group = BlackWhiteListGroup.objects.create(name="Fraud numbers", kind="black")
    ListEntry.objects.create(group=group, number="4930999", note="wangiri")
    ListEntry.objects.create(group=group, number="4930998")
    answer = ok(vos("GetLimitE164", {"limitE164GroupName": "Fraud numbers", "e164": "4930999"}))
    assert answer["infoLimitE164s"] == [{"e164": "4930999", "memo": "wangiri"}]


# -- alarms, IP limits, system


def test_get_alarm_current(vos, operator):
    alarm = Alarm.objects.create(kind="asr_drop", severity="critical", subject_kind="routing_gateway", subject="7",
                                 dedupe_key="asr_drop:7", figures={"value": 12.5})  # fmt: skip
    Alarm.objects.create(kind="low_balance", severity="info", subject_kind="account", subject="1", dedupe_key="lb:1",
                         resolved_at=timezone.now())  # fmt: skip
    alarms.acknowledge([alarm.pk], operator)
    (info,) = ok(vos("GetAlarmCurrent"))["infoAlarmCurrents"]
    assert set(info) == INFO_ALARM_CURRENT
    assert (info["id"], info["type"], info["level"], info["value"]) == (alarm.pk, 20000, 3, 12.5)
    assert info["startTime"] == ms(alarm.first_seen) and info["stopTime"] is None
    assert info["confirmUser"] == "operator" and isinstance(info["confirmTime"], int)


@pytest.fixture
def ip_country_keys(redis_client):
    keys = IpCountryKeys(prefix())
    redis_client.delete(keys.version, keys.blob)
    yield keys
    redis_client.delete(keys.version, keys.blob)


def test_create_ip_limit(vos, db, ip_country_keys, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        ok(vos("CreateIpLimit", {"ip": "192.0.2.1", "count": 8, "area": "nl", "memo": "carrier block"}))
    limit = IpCountryRange.objects.get()
    assert (limit.start_ip, limit.count, limit.country, limit.memo, limit.end_ip) == (
        "192.0.2.1", 8, "NL", "carrier block", "192.0.2.8")  # fmt: skip
    assert vos("CreateIpLimit", {"ip": "192.0.2.1", "area": "DE"})["retCode"] == -10005
    for body, field in (
        ({"count": 8, "area": "DE"}, "ip"),
        ({"ip": "192.0.2.300", "area": "DE"}, "ip"),
        ({"ip": "2001:db8::1", "area": "DE"}, "ip"),
        ({"ip": "198.51.100.0", "count": 0, "area": "DE"}, "count"),
        ({"ip": "255.255.255.250", "count": 16, "area": "DE"}, "count"),
        ({"ip": "198.51.100.0"}, "area"),
        ({"ip": "198.51.100.0", "area": "Germany"}, "area"),
        ({"ip": "192.0.2.5", "count": 2, "area": "DE"}, "ip"),  # overlaps the first
    ):
        answer = vos("CreateIpLimit", body)
        assert answer["retCode"] == -10004 and answer["exception"].startswith(f"{field}:"), (body, answer)
    assert IpCountryRange.objects.count() == 1


def test_delete_ip_limit(vos, db, ip_country_keys, django_capture_on_commit_callbacks):
    for start in ("192.0.2.0", "198.51.100.0", "203.0.113.0"):
        IpCountryRange.objects.create(start_ip=start, count=256, country="DE")
    ok(vos("DeleteIpLimit", {"ips": "192.0.2.0"}))
    ok(vos("DeleteIpLimit", {"ips": "198.51.100.0, 203.0.113.0"}))
    assert not IpCountryRange.objects.exists()
    IpCountryRange.objects.create(start_ip="192.0.2.0", count=1, country="DE")
    missing = vos("DeleteIpLimit", {"ips": "192.0.2.0,10.0.0.1"})
    assert missing["retCode"] == -10007 and "10.0.0.1" in missing["exception"]
    assert IpCountryRange.objects.count() == 1  # all or nothing
    bad = vos("DeleteIpLimit", {"ips": "not-an-ip"})
    assert bad["retCode"] == -10004 and bad["exception"].startswith("ips:")
    assert vos("DeleteIpLimit", {})["retCode"] == -10004


def test_an_ip_limit_moves_an_address_to_its_area_in_the_call_cores_table(
    vos, redis_client, ip_country_keys, django_capture_on_commit_callbacks
):
    """What a call core's loader (callcore.geo) gives for an address before and after CreateIpLimit and Delete."""
    ip_countries.store(ip_countries.build([str(IP_COUNTRY_SAMPLE)]))  # 203.0.113.0-99 is DE there
    ip_countries.publish()
    loader = geo.CountryLoader(redis_client.execute_command, prefix())
    loader.refresh()
    assert loader.table.country("203.0.113.50") == "DE"
    with django_capture_on_commit_callbacks(execute=True):
        ok(vos("CreateIpLimit", {"ip": "203.0.113.48", "count": 4, "area": "FR"}))
    loader.refresh()
    assert [loader.table.country(f"203.0.113.{n}") for n in (47, 48, 50, 51, 52)] == ["DE", "FR", "FR", "FR", "DE"]
    assert loader.table.country("192.0.2.1") == "NL"  # the rest of the imported table is kept
    with django_capture_on_commit_callbacks(execute=True):
        ok(vos("DeleteIpLimit", {"ips": "203.0.113.48"}))
    loader.refresh()
    assert loader.table.country("203.0.113.50") == "DE"


def test_get_soft_switch_and_performance(vos, db, live):
    keys = Keys(prefix())
    live.hset(keys.heartbeats, "node-a", 1_700_000_000_000)
    live_call(live, "a@x", node="node-a", start_ms=1)
    try:
        switches = ok(vos("GetSoftSwitch"))["infoSoftSwitches"]
        assert {"name": "node-a", "identification": "node-a", "createTime": 0, "accessTime": 1_700_000_000_000,
                "accessAddress": None, "memo": ""} in switches  # fmt: skip
        assert ok(vos("GetPerformance"))["infoPerformance"]["callSize"] == 1
    finally:
        live.hdel(keys.heartbeats, "node-a")


def test_the_access_rules_are_managed_on_pages(client, operator):
    client.force_login(operator)
    added = client.post(
        "/vos/access-rules/add/", {"network": "198.51.100.0/24", "directory": "/external/server/GetCdr"}
    )
    assert added.status_code == 302
    rule = VosAccessRule.objects.get()
    assert rule.allows("198.51.100.7", "GetCdr") and not rule.allows("198.51.100.7", "Pay")
    bad = client.post("/vos/access-rules/add/", {"network": "x", "directory": "/elsewhere"})
    assert (
        bad.status_code == 200 and "network" in bad.context["form"].errors and "directory" in bad.context["form"].errors
    )
    listed = client.get("/vos/access-rules/", {"q": "198.51"})
    assert "198.51.100.0/24" in listed.content.decode()
