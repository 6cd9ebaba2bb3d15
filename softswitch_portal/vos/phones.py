"""Phones (VOS's platform phones): a SIP user of this switch, its number its username.

``e164`` the username; ``account`` its account's name; ``password`` the
digest secret (written, never answered); ``lineCapacity`` its concurrent
lines; ``lockType`` 3 when disabled (this switch cannot lock one direction
only: 1 and 2 are refused); ``memo`` the description.

Online state (GetPhoneOnline, GetAllPhoneOnline) is what the nodes recorded
of each REGISTER (read through live.registrations): ``remoteIp`` the source
address, ``localIp`` the node that saved it, ``productId`` the User-Agent,
``currentCall`` the phone's calls in the live-call registry. Each REGISTER
refreshes the one record, so ``registerTime`` and ``updateTime`` are both the
latest REGISTER; a phone registered through several nodes is answered once,
by its latest. Only SIP (``protocol`` 1) and no crypto (``cryptoType`` 0).
"""

import secrets
import time
from collections import Counter

import redis
from django.db import transaction

from billing.models import Account
from security.api_clients import APIScope
from softswitch_portal.live.calls import live_calls
from softswitch_portal.live.registrations import registrations
from softswitch_portal.switching.models import Phone

from . import fields
from .codes import RetCode, VosError, invalid, not_found
from .customers import save
from .gateways import delete
from .registry import action

LOCKED = 3


def info_phone(phone):
    return {
        "e164": phone.username,
        "account": phone.account.name,
        "lockType": 0 if phone.enabled else LOCKED,
        "lineCapacity": phone.capacity,
        "memo": phone.description,
    }


def apply_phone(phone, body):
    if "account" in body:
        name = fields.string(body, "account", allow_empty=False)
        phone.account = Account.objects.filter(name=name).first()
        if phone.account is None:
            raise not_found(f"no account {name!r} (account)")
    if "password" in body:
        phone.password = fields.string(body, "password", allow_empty=False)
    if "lineCapacity" in body:
        phone.capacity = fields.integer(body, "lineCapacity", minimum=0)
    if "lockType" in body:
        lock = fields.integer(body, "lockType", minimum=0, maximum=3)
        if lock in (1, 2):
            raise invalid("lockType", "0 (none) or 3 (both): a phone cannot be locked one way only here.")
        phone.enabled = lock != LOCKED
    if "memo" in body:
        phone.description = fields.string(body, "memo")


def find_phone(e164):
    phone = Phone.objects.select_related("account").filter(username=e164).first()
    if phone is None:
        raise not_found(f"no phone {e164!r} (e164)")
    return phone


@action("CreatePhone", APIScope.WRITE)
def create_phone(call, body):
    auto_account = fields.boolean(body, "autoCreateAccount")
    e164 = fields.string(body, "e164", allow_empty=False)
    if Phone.objects.filter(username=e164).exists():
        raise VosError(RetCode.ALREADY_EXISTS, f"phone {e164!r} already exists.")
    phone = Phone(username=e164)
    with transaction.atomic():
        if auto_account and not fields.string(body, "account", default=""):
            account = Account(name=e164)
            save(account)
            phone.account = account
        elif not fields.string(body, "account", default=""):
            raise invalid("account", "is required unless autoCreateAccount is true.")
        apply_phone(phone, body)
        password = phone.password or secrets.token_urlsafe(12)
        phone.password = password
        save(phone)
    return {"password": password}


@action("ModifyPhone", APIScope.WRITE)
def modify_phone(call, body):
    phone = find_phone(fields.string(body, "e164", allow_empty=False))
    apply_phone(phone, body)
    save(phone)
    return {}


@action("DeletePhone", APIScope.WRITE)
def delete_phone(call, body):
    return delete(find_phone(fields.string(body, "e164", allow_empty=False)))


@action("GetPhone")
def get_phone(call, body):
    e164s = fields.strings(body, "e164s", default=None)
    accounts = fields.strings(body, "accounts", default=None)
    if e164s is None and accounts is None:
        raise invalid("e164s", "give e164s or accounts.")
    queryset = Phone.objects.none()
    if e164s is not None:
        queryset = queryset | Phone.objects.filter(username__in=e164s)
    if accounts is not None:
        queryset = queryset | Phone.objects.filter(account__name__in=accounts)
    phones = queryset.select_related("account").distinct().order_by("username")
    return {"infoPhones": [info_phone(phone) for phone in phones]}


PROTOCOL_SIP = 1
CRYPTO_NONE = 0


def online(e164s=None):
    """The latest unexpired registration of each phone (of ``e164s``, or all): e164 -> row of live.registrations."""
    try:
        rows = registrations(time.time_ns() // 1_000_000)
    except redis.RedisError as exc:
        raise VosError(RetCode.UNAVAILABLE, f"the live state did not answer: {exc}") from None
    latest = {}
    for row in rows:
        if e164s is not None and row["phone"] not in e164s:
            continue
        held = latest.get(row["phone"])
        if held is None or row["registered"] > held["registered"]:
            latest[row["phone"]] = row
    return latest


def calls_by_phone():
    try:
        calls = live_calls()
    except redis.RedisError as exc:
        raise VosError(RetCode.UNAVAILABLE, f"the live state did not answer: {exc}") from None
    return Counter(entry.get("phone_id") for entry in calls.values() if entry.get("phone_id") is not None)


def info_phone_online(row, calls):
    # Rounded: the row's datetime came from these milliseconds, and a float product can fall one short.
    registered = round(row["registered"].timestamp() * 1000)
    return {
        "e164": row["phone"],
        "currentCall": calls.get(row["phone_id"], 0),
        "remoteIp": row["source_ip"],
        "localIp": row["node"],
        "registerTime": registered,
        "updateTime": registered,
        "protocol": PROTOCOL_SIP,
        "cryptoType": CRYPTO_NONE,
        "productId": row["user_agent"],
    }


@action("GetPhoneOnline")
def get_phone_online(call, body):
    e164s = set(fields.strings(body, "e164s"))
    found = online(e164s)
    calls = calls_by_phone() if found else {}
    return {"infoPhoneOnlines": [info_phone_online(found[e164], calls) for e164 in sorted(found)]}


@action("GetAllPhoneOnline")
def get_all_phone_online(call, body):
    return {"e164s": sorted(online())}
