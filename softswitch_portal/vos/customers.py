"""Accounts (VOS customers), payments and CDRs.

Field mapping (no counterpart: answered with VOS's neutral value):
``account`` is the account's name, its unique visible id, and ``name`` is
answered as the same; ``money`` the balance; ``limitMoney`` the credit
limit; ``feeRateGroup`` the rate table's name; ``type`` 0 for a customer
and 2 for a vendor clearing account (1, phone card, has no counterpart);
``lockType`` the locked flag; ``memo`` the description;
``infoCustomerAdditional.email`` the alarm e-mail. There are no agents
(resellers), phone books, validity dates or bound numbers:
``agentAccount`` "", ``category`` 0, ``phoneBookLimit`` 0, ``validTime`` 0,
``bindedE164s`` [].
"""

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, Sum
from django.db.models.deletion import ProtectedError
from django.utils import timezone

from billing import services
from billing.choices import AccountType, PaymentKind
from billing.models import CDR, Account, Payment, RateTable
from security.api_clients import APIScope
from softswitch_portal.switching.models import MappingGateway, Phone

from . import fields
from .codes import RetCode, VosError, invalid, not_found
from .registry import action

VOS_TYPES = {0: AccountType.CUSTOMER, 2: AccountType.VENDOR}
TYPE_OF = {value: key for key, value in VOS_TYPES.items()}
# Pay's ownerType (E1) this switch has: an account, a phone's account, a mapping gateway's account.
OWNER_ACCOUNT, OWNER_PHONE, OWNER_MAPPING_GATEWAY = 2, 6, 44


def find_account(name, field="account"):
    account = Account.objects.select_related("rate_table").filter(name=name).first()
    if account is None:
        raise not_found(f"no account {name!r} ({field})")
    return account


def today_consumption(accounts):
    """Each account's fees of calls started today (switch time): VOS's todayConsumption, one query for all."""
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    rows = (
        CDR.objects.filter(account__in=accounts, start_time__gte=start).values("account_id").annotate(total=Sum("fee"))
    )
    return {row["account_id"]: row["total"] for row in rows}


def info_customer(account, consumed):
    return {
        "account": account.name,
        "name": account.name,
        "money": float(account.balance),
        "limitMoney": float(account.credit_limit),
        "feeRateGroup": account.rate_table.name if account.rate_table_id else "",
        "type": TYPE_OF.get(account.account_type, 0),
        "lockType": 1 if account.locked else 0,
        "agentAccount": "",
        "phoneBookLimit": 0,
        "canceled": False,
        "startTime": fields.ms(account.created),
        "validTime": 0,
        "todayConsumption": float(consumed.get(account.pk) or 0),
        "ctdBillingType": 0,
        "category": 0,
        "bindedE164s": [],
        "memo": account.description,
        "infoCustomerAdditional": {"email": account.alarm_email},
    }


def apply_customer_fields(account, body):
    """The optional fields of Create/ModifyCustomer onto ``account``; an omitted field leaves it as it is."""
    if "limitMoney" in body:
        account.credit_limit = fields.money(body, "limitMoney")
    if "feeRateGroup" in body:
        group = fields.string(body, "feeRateGroup")
        account.rate_table = None
        if group:
            account.rate_table = RateTable.objects.filter(name=group).first()
            if account.rate_table is None:
                raise not_found(f"no fee rate group {group!r} (feeRateGroup)")
    if "type" in body:
        kind = fields.integer(body, "type")
        if kind not in VOS_TYPES:
            raise invalid("type", "0 (normal) or 2 (clearing account): this switch has no phone cards.")
        account.account_type = VOS_TYPES[kind]
    if "lockType" in body:
        account.locked = fields.integer(body, "lockType", minimum=0, maximum=1) == 1
    if "memo" in body:
        account.description = fields.string(body, "memo")
    additional = body.get("infoCustomerAdditional")
    if isinstance(additional, dict) and "email" in additional:
        account.alarm_email = fields.string(additional, "email")


def save(obj):
    try:
        obj.full_clean()
    except ValidationError as exc:
        raise fields.as_vos_error(exc) from None
    obj.save()


@action("CreateCustomer", APIScope.WRITE)
def create_customer(call, body):
    name = fields.string(body, "account", allow_empty=False)
    fields.string(body, "name", allow_empty=False)
    if Account.objects.filter(name=name).exists():
        raise VosError(RetCode.ALREADY_EXISTS, f"account {name!r} already exists.")
    opening = fields.money(body, "money", default=None)
    if opening is not None and opening < 0:
        raise invalid("money", "an opening balance cannot be negative.")
    if opening and APIScope.MONEY not in call.scopes:
        raise VosError(RetCode.ACCESS_DENIED, "money: an opening balance needs the money scope.")
    with transaction.atomic():
        account = Account(name=name)
        apply_customer_fields(account, body)
        save(account)
        if opening:
            # Even the opening balance is a payment: every cent has a record of who moved it.
            services.apply_payment(account, PaymentKind.RECHARGE, opening, call.user, memo="Opening balance")
    return {}


@action("ModifyCustomer", APIScope.WRITE)
def modify_customer(call, body):
    account = find_account(fields.string(body, "account", allow_empty=False))
    if "money" in body:
        raise invalid("money", "a balance changes only through Pay.")
    apply_customer_fields(account, body)
    save(account)
    return {}


@action("DeleteCustomer", APIScope.WRITE)
def delete_customer(call, body):
    account = find_account(fields.string(body, "account", allow_empty=False))
    try:
        with transaction.atomic():
            account.delete()
    except ProtectedError as exc:
        users = ", ".join(f"{obj._meta.verbose_name} {obj}" for obj in list(exc.protected_objects)[:10])
        raise VosError(RetCode.IN_USE, f"account {account} is still used by {users}.") from None
    return {}


@action("GetCustomer")
def get_customer(call, body):
    names = fields.strings(body, "accounts", default=None)
    e164s = fields.strings(body, "e164s", default=None)
    agent = body.get("filterAgentAccount")
    if names is None and e164s is None and agent is None:
        raise invalid("accounts", "give accounts, e164s or filterAgentAccount.")
    queryset = Account.objects.none()
    if names is not None:
        queryset = queryset | Account.objects.filter(name__in=names)
    if e164s is not None:
        queryset = queryset | Account.objects.filter(phones__username__in=e164s)
    # filterAgentAccount: this switch has no agents, so no account has one.
    if "type" in body:
        kind = fields.integer(body, "type")
        queryset = queryset.filter(account_type=VOS_TYPES.get(kind, "none"))
    accounts = list(queryset.select_related("rate_table").distinct().order_by("name"))
    consumed = today_consumption(accounts)
    return {"infoCustomers": [info_customer(account, consumed) for account in accounts]}


@action("GetAllCustomers")
def get_all_customers(call, body):
    kind = fields.integer(body, "type", default=0)
    if kind == 1:
        rows = Account.objects.order_by("name").values_list("name", "balance", "credit_limit")
        briefs = [{"account": n, "money": float(b), "limitMoney": float(c)} for n, b, c in rows]
        return {"infoCustomerBriefs": briefs}
    return {"accounts": list(Account.objects.order_by("name").values_list("name", flat=True))}


def owner_account(body):
    owner = fields.string(body, "ownerName", allow_empty=False)
    kind = fields.integer(body, "ownerType")
    if kind == OWNER_ACCOUNT:
        return find_account(owner, "ownerName")
    if kind == OWNER_PHONE:
        phone = Phone.objects.select_related("account").filter(username=owner).first()
        if phone is None:
            raise not_found(f"no phone {owner!r} (ownerName)")
        return phone.account
    if kind == OWNER_MAPPING_GATEWAY:
        gateway = MappingGateway.objects.select_related("account").filter(name=owner).first()
        if gateway is None:
            raise not_found(f"no mapping gateway {owner!r} (ownerName)")
        return gateway.account
    raise invalid("ownerType", "2 (account), 6 (phone) or 44 (mapping gateway): no phone cards or bound numbers here.")


@action("Pay", APIScope.MONEY)
def pay(call, body):
    """A positive ``money`` recharges, a negative one deducts (the manual leaves the sign to the implementation)."""
    account = owner_account(body)
    amount = fields.money(body, "money")
    if amount == 0:
        raise invalid("money", "must not be 0.")
    memo = fields.string(body, "memo", default="")[:200]
    kind = PaymentKind.RECHARGE if amount > 0 else PaymentKind.DEDUCT
    try:
        payment = services.apply_payment(account, kind, abs(amount), call.user, memo=memo)
    except ValidationError as exc:
        raise fields.as_vos_error(exc) from None
    return {
        "infoPay": {
            "account": account.name,
            "money": float(payment.balance_after),
            "validTime": 0,
            "payMoney": float(amount),
        }
    }


@action("GetPayHistory")
def get_pay_history(call, body):
    name = fields.string(body, "account", default="")
    if not name:
        if fields.string(body, "agentAccount", default=""):
            # No agents here: an agent's sub-accounts have no payments.
            return {"infoPayHistorys": []}
        raise invalid("account", "give account or agentAccount.")
    account = find_account(name)
    begin, end = fields.stamp(body, "beginTime"), fields.stamp(body, "endTime")
    payments = Payment.objects.filter(account=account, created__gte=begin, created__lte=end).order_by("created", "id")
    return {
        "infoPayHistorys": [
            {
                "account": account.name,
                "fee": float(payment.amount),
                "type": 0 if payment.kind == PaymentKind.RECHARGE else 1,
                "payType": 5,  # "other": this switch does not record cash or cards
                "customerMoney": float(payment.balance_after),
                "payTime": fields.ms(payment.created),
                "memo": payment.memo,
            }
            for payment in payments
        ]
    }


def info_cdr(cdr):
    """A CDR as VOS's InfoCdr.

    callerAccessE164 is the caller as received; calleeAccessE164 the callee as
    received, calleeE164 as routed and rated; *ToGatewayE164 as sent out.
    endReason is the final SIP status (VOS's reason codes are in a document
    the manual does not include). The agent (reseller) fields are 0 and "":
    this switch has no resellers; the vendor cost has no InfoCdr field.
    """
    return {
        "callerE164": cdr.caller_number,
        "callerAccessE164": cdr.caller_number,
        "callerToGatewayE164": cdr.caller_number_out,
        "callerProductId": cdr.caller_user_agent,
        "callerGateway": cdr.mapping_gateway_name,
        "callerip": cdr.caller_ip or "",
        "calleeE164": cdr.callee_number_routed or cdr.callee_number,
        "calleeAccessE164": cdr.callee_number,
        "calleeToGatewayE164": cdr.callee_number_out,
        "calleeProductId": "",
        "calleeGateway": cdr.routing_gateway_name,
        "calleeip": cdr.vendor_ip or "",
        "start": fields.ms(cdr.start_time),
        "stop": fields.ms(cdr.stop_time or cdr.start_time),
        "holdTime": (cdr.hold_time_ms + 500) // 1000,
        "feeTime": cdr.fee_time,
        "fee": float(cdr.fee),
        "feePrefix": cdr.rate_prefix,
        "suiteFee": 0.0,
        "suiteFeeTime": 0,
        "agentFee": 0.0,
        "agentFeeTime": 0,
        "agentFeePrefix": "",
        "agentSuiteFee": 0.0,
        "agentSuiteFeeTime": 0,
        "callLevel": 0,
        "account": cdr.account_name,
        "accountName": cdr.account_name,
        "agentAccount": "",
        "agentName": "",
        "endDirection": cdr.end_direction if cdr.end_direction is not None else 2,
        "endReason": cdr.sip_status or 0,
        "calleeBilling": 0,
        "billingMode": cdr.billing_mode,
        "flowNo": cdr.pk,
    }


# GetCdr answers at most this many records: the manual warns the action is expensive and sets no limit.
CDR_LIMIT = 100_000


@action("GetCdr")
def get_cdr(call, body):
    names = fields.strings(body, "accounts")
    begin = fields.day(body, "beginTime")
    # Both days inclusive: the manual's example asks for one day with the same begin and end.
    end = fields.day(body, "endTime") + dt.timedelta(days=1)
    if end <= begin:
        raise invalid("endTime", "must not be before beginTime.")
    queryset = CDR.objects.filter(account__in=Account.objects.filter(name__in=names), start_time__gte=begin,
                                  start_time__lt=end)  # fmt: skip
    for name, column in (
        ("callerE164", "caller_number"),
        ("callerGateway", "mapping_gateway_name"),
        ("calleeGateway", "routing_gateway_name"),
    ):
        value = fields.string(body, name, default="")
        if value:
            queryset = queryset.filter(**{column: value})
    callee = fields.string(body, "calleeE164", default="")
    if callee:
        # The billed callee (as routed), or the one received on records from before the routed one was kept.
        queryset = queryset.filter(Q(callee_number_routed=callee) | Q(callee_number_routed="", callee_number=callee))
    rows = queryset.order_by("start_time", "id")[: CDR_LIMIT + 1]
    cdrs = [info_cdr(cdr) for cdr in rows.iterator(chunk_size=2000)]
    if len(cdrs) > CDR_LIMIT:
        raise invalid("endTime", f"more than {CDR_LIMIT} CDRs: ask for fewer days.")
    return {"infoCdrs": cdrs}
