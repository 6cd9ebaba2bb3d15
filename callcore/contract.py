"""The contract between the portal and the call core.

This is the only module both sides import. It declares:

* the system parameters (name, type, default, range, description), once;
* the codes operators know from VOS3000: billing modes, end directions;
* the named end reasons with their SIP status;
* the snapshot schema the portal publishes and the call core loads;
* the CDR record the call core appends to the Redis stream;
* the IP-to-country table behind the phones' allowed countries (geofence).

It must stay importable without Django.
"""

from __future__ import annotations

import array
import dataclasses
import enum
import functools
import hashlib
import ipaddress
import itertools
import json
import operator
import struct
import sys
import types
import typing
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal, NewType

# ---------------------------------------------------------------------------
# System parameters


@dataclass(frozen=True)
class Parameter:
    """One switch-wide setting; the database stores only values, never the shape."""

    name: str
    type: type  # int or bool
    default: int | bool
    description: str
    min_value: int | None = None
    max_value: int | None = None
    aliases: tuple[str, ...] = ()

    def parse(self, raw: object) -> int | bool:
        """Turn a stored or typed value into this parameter's type, or raise ValueError.

        The message names the parameter and what was expected, because it is
        shown to the operator as a form error.
        """
        if self.type is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{self.name} must be 0 or 1, got {raw!r}")
        if isinstance(raw, bool):
            raise ValueError(f"{self.name} must be an integer, got {raw!r}")
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise ValueError(f"{self.name} must be an integer, got {raw!r}") from None
        if self.min_value is not None and value < self.min_value:
            raise ValueError(f"{self.name} must be at least {self.min_value}, got {value}")
        if self.max_value is not None and value > self.max_value:
            raise ValueError(f"{self.name} must be at most {self.max_value}, got {value}")
        return value

    def format(self, value: int | bool) -> str:
        return str(int(value))


# The longest ASR window an operator may set: the CDR ingest keeps its per-minute counts this long.
ROUTE_STATS_MAX_MINUTES = 1440

PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "SERVER_BILLING_RECORD_ILLEGAL_CALL",
        bool,
        True,
        "Write a CDR (billing mode illegal) for every INVITE from a source that is "
        "neither a mapping gateway nor a registered phone.",
    ),
    Parameter(
        "SERVER_BILLING_RECORD_ZERO_HOLD_TIME",
        bool,
        True,
        "Write CDRs for calls that never connected (hold time 0); turn off during floods.",
    ),
    Parameter(
        "SERVER_BILLING_RECORD_SERVER_HANG_UP",
        bool,
        True,
        "Write a CDR when the switch itself ends the call (balance exhausted, conversation limit).",
    ),
    Parameter(
        "SERVER_BILLING_FEE_PRECISION",
        int,
        2,
        "Decimal places (0-4) that fees are rounded to, half-up.",
        min_value=0,
        max_value=4,
        aliases=("SERVER_BILLING_FEE_PRECISTION",),
    ),
    Parameter(
        "SERVER_BILLING_HOLD_TIME_PRECISION",
        int,
        50,
        "A millisecond remainder at or above this rounds the hold time up to the next second.",
        min_value=0,
        max_value=999,
    ),
    Parameter(
        "SERVER_BILLING_FREE_TIME",
        int,
        0,
        "Seconds subtracted from the hold time before rating.",
        min_value=0,
        max_value=86400,
    ),
    Parameter(
        "SERVER_BILLING_PREVENT_OVERDRAFT_ADVANCE_TIME",
        int,
        60,
        "Seconds of talk time reserved per live call, so concurrent calls cannot overdraw an account.",
        min_value=0,
        max_value=86400,
    ),
    Parameter(
        "SERVER_BILLING_GATEWAY_ROUTE_PREFIX",
        int,
        0,
        "0: rate the callee as received; 1: rate the callee as sent to the routing gateway.",
        min_value=0,
        max_value=1,
    ),
    Parameter(
        "SS_GATEWAY_SWITCH_LIMIT",
        int,
        0,
        "Most vendors tried per call (0 = no limit).",
        min_value=0,
        max_value=100,
    ),
    Parameter(
        "SS_SIP_STOP_SWITCH_AFTER_SDP",
        bool,
        True,
        "Stop failing over once a vendor sent early media (183 with SDP).",
    ),
    Parameter(
        "SS_SIP_TIMEOUT_INVITE",
        int,
        8,
        "Seconds without a provisional answer before the vendor counts as failed (408).",
        min_value=1,
        max_value=300,
    ),
    Parameter(
        "SS_MAX_CPS",
        int,
        0,
        "Switch-wide call attempts per second (0 = no limit).",
        min_value=0,
        max_value=100000,
    ),
    Parameter(
        "SS_MAX_LOGIN_FAILED",
        int,
        5,
        "Failed portal logins before lockout.",
        min_value=1,
        max_value=100,
    ),
    Parameter(
        "SS_LOGIN_LOCK_TIME",
        int,
        30,
        "Lockout minutes after too many failed portal logins.",
        min_value=1,
        max_value=10080,
    ),
    Parameter(
        "SS_CLIENT_LOW_BALANCE_ALARM",
        int,
        0,
        "Balance under which an account's alarm e-mail goes out (an account may override it).",
        min_value=0,
        max_value=10**9,
    ),
    Parameter(
        "SS_ENABLE_CALL_LIMIT",
        bool,
        True,
        "Enforce per-account and per-gateway conversation limits.",
    ),
    Parameter(
        "SS_ROUTE_ASR_WINDOW_MINUTES",
        int,
        60,
        "Minutes of calls each routing gateway's ASR is measured over, for the Best ASR route policy.",
        min_value=5,
        max_value=ROUTE_STATS_MAX_MINUTES,
    ),
    Parameter(
        "SS_ROUTE_ASR_MIN_ATTEMPTS",
        int,
        20,
        "Attempts in the window before a routing gateway is ranked by its ASR; one with fewer is tried first, "
        "so it gets the calls it is judged on.",
        min_value=1,
        max_value=1_000_000,
    ),
)

PARAMETERS_BY_NAME: dict[str, Parameter] = {p.name: p for p in PARAMETERS}
for _p in PARAMETERS:
    for _alias in _p.aliases:
        PARAMETERS_BY_NAME[_alias] = _p


def default_parameters() -> dict[str, int | bool]:
    return {p.name: p.default for p in PARAMETERS}


# ---------------------------------------------------------------------------
# Codes operators know from VOS3000


class BillingMode(enum.IntEnum):
    """Who a CDR is billed to (VOS codes 0-3, this project's negative ones)."""

    PHONE = 0
    MAPPING_GATEWAY = 1
    BOUND_NUMBER = 2
    PHONE_CARD = 3
    NOT_BILLED = -1
    ILLEGAL = -2

    @property
    def label(self) -> str:
        return _BILLING_MODE_LABELS[self]


_BILLING_MODE_LABELS = {
    BillingMode.PHONE: "Phone account",
    BillingMode.MAPPING_GATEWAY: "Mapping gateway account",
    BillingMode.BOUND_NUMBER: "Bound number",
    BillingMode.PHONE_CARD: "Phone card",
    BillingMode.NOT_BILLED: "Not billed",
    BillingMode.ILLEGAL: "Illegal call",
}


class EndDirection(enum.IntEnum):
    """Which side ended the call (VOS: 0 caller, 1 callee, 2 server)."""

    CALLER = 0
    CALLEE = 1
    SERVER = 2

    @property
    def label(self) -> str:
        return self.name.capitalize()


@dataclass(frozen=True)
class EndReasonInfo:
    code: str
    sip_status: int
    description: str


class EndReason(enum.Enum):
    """Named end reasons. Each screening step has its own, with the SIP answer it sends."""

    NORMAL_CLEARING = EndReasonInfo("normal_clearing", 200, "Call answered and ended normally")
    CALLER_CANCEL = EndReasonInfo("caller_cancel", 487, "Caller cancelled before answer")
    ILLEGAL_SOURCE = EndReasonInfo("illegal_source", 403, "Source is neither a mapping gateway nor a registered phone")
    SCANNER_DROPPED = EndReasonInfo("scanner_dropped", 0, "Known scanner User-Agent dropped without an answer")
    FLOOD_BANNED = EndReasonInfo("flood_banned", 0, "Source banned for flooding")
    AUTH_FAILED = EndReasonInfo("auth_failed", 403, "Digest authentication failed")
    ACCOUNT_LOCKED = EndReasonInfo("account_locked", 403, "Account is locked")
    ACCOUNT_MISSING = EndReasonInfo("account_missing", 403, "Gateway or phone has no usable account")
    CALLER_BLACKLISTED = EndReasonInfo("caller_blacklisted", 403, "Caller number is on a black list")
    CALLER_NOT_WHITELISTED = EndReasonInfo(
        "caller_not_whitelisted", 403, "Caller number is missing from the white list"
    )
    CALLEE_BLACKLISTED = EndReasonInfo("callee_blacklisted", 403, "Callee number is on a black list")
    CALLEE_NOT_WHITELISTED = EndReasonInfo(
        "callee_not_whitelisted", 403, "Callee number is missing from the white list"
    )
    DYNAMIC_BLACKLISTED = EndReasonInfo("dynamic_blacklisted", 403, "Number is on the dynamic blacklist")
    PREFIX_FORBIDDEN = EndReasonInfo("prefix_forbidden", 403, "Callee prefix is forbidden on this gateway")
    MAPPING_CAPACITY = EndReasonInfo("mapping_capacity", 486, "Mapping gateway at its concurrent call capacity")
    ACCOUNT_CAPACITY = EndReasonInfo("account_capacity", 486, "Account at its concurrent call capacity")
    PHONE_CAPACITY = EndReasonInfo("phone_capacity", 486, "Phone at its line capacity")
    MAPPING_CPS = EndReasonInfo("mapping_cps", 503, "Mapping gateway over its calls-per-second limit")
    SWITCH_CPS = EndReasonInfo("switch_cps", 503, "Switch over SS_MAX_CPS")
    BALANCE_INSUFFICIENT = EndReasonInfo("balance_insufficient", 402, "Balance and credit cannot pay for the call")
    NO_RATE = EndReasonInfo("no_rate", 404, "No rate for the callee in the account's rate table")
    NO_ROUTE = EndReasonInfo("no_route", 404, "No routing gateway serves the callee")
    ROUTES_BUSY = EndReasonInfo("routes_busy", 503, "Every routing gateway is at capacity or CPS limit")
    VENDOR_FAILED = EndReasonInfo("vendor_failed", 503, "Every vendor tried failed")
    VENDOR_REJECTED = EndReasonInfo("vendor_rejected", 0, "Vendor gave a final answer that stops failover")
    VENDOR_TIMEOUT = EndReasonInfo("vendor_timeout", 408, "No vendor answered in SS_SIP_TIMEOUT_INVITE")
    MAX_DURATION = EndReasonInfo("max_duration", 200, "Conversation limit reached: the switch hung up")
    BALANCE_EXHAUSTED = EndReasonInfo("balance_exhausted", 200, "Balance ran out during the call: the switch hung up")
    CALLER_NO_ACK = EndReasonInfo(
        "caller_no_ack", 408, "The vendor answered but the caller never acknowledged it: the switch hung up"
    )
    KEEPALIVE_FAILED = EndReasonInfo(
        "keepalive_failed", 408, "A side stopped answering the switch's in-dialog keep-alives: the switch hung up"
    )
    SWITCH_RESTART = EndReasonInfo(
        "switch_restart", 0, "The call core restarted during the call: its dialog was lost, nothing charged"
    )
    INTERNAL_ERROR = EndReasonInfo("internal_error", 500, "The switch failed to process the call")
    LIVE_STATE_UNAVAILABLE = EndReasonInfo(
        "live_state_unavailable", 503, "Live state (Redis) did not answer and the account is prepaid"
    )
    VENDOR_CANCELLED = EndReasonInfo("vendor_cancelled", 487, "The attempt was cancelled")

    @property
    def code(self) -> str:
        return self.value.code

    @property
    def sip_status(self) -> int:
        return self.value.sip_status

    @property
    def description(self) -> str:
        return self.value.description


END_REASONS_BY_CODE: dict[str, EndReason] = {r.code: r for r in EndReason}


# ---------------------------------------------------------------------------
# Configuration snapshot
#
# The portal builds a ``Snapshot`` from PostgreSQL, ``encode_snapshot`` turns
# it into a zlib-compressed JSON blob, and the call core's loader turns the
# blob back with ``decode_snapshot``, which trusts nothing: a blob that does
# not match these declarations exactly raises ``SnapshotError`` and the call
# core keeps routing on the snapshot it already has.
#
# Bump SNAPSHOT_SCHEMA_VERSION on any change a loader of the previous version
# would misread (a field added, removed, renamed or retyped).

SNAPSHOT_SCHEMA_VERSION = 1

# The digest realm phones authenticate in. The portal may override it with
# settings.SIP_REALM; the snapshot carries the realm its hashes were made with.
SIP_REALM = "softswitch"

# Vendor answers that always fail over to the next vendor; a routing gateway's
# failover_codes add to these.
DEFAULT_FAILOVER_CODES = frozenset({408, 480, 500, 502, 503, 504})

# Level 1, not zlib's default 6: on the bench data (3.5 MB of JSON) it compresses
# in 26 ms instead of 148 ms for a blob 12% larger (843 kB against 750 kB), and
# the compression is paid on every save in the portal. bench/snapshot.py prints
# the figures for levels 1, 3, 6 and 9.
SNAPSHOT_ZLIB_LEVEL = 1

# A money amount as a decimal string: JSON numbers would pass through float.
DecimalText = NewType("DecimalText", str)

AccountType = Literal["customer", "vendor"]
AuthMode = Literal["ip", "ip_port"]
RoutePolicy = Literal["priority", "least_cost", "asr"]
Transport = Literal["udp", "tcp"]
PoolMode = Literal["random", "round_robin"]
ListKind = Literal["black", "white"]


class SnapshotError(ValueError):
    """A snapshot blob that cannot be trusted; the message says what is wrong and where."""


def digest_ha1(username: str, realm: str, password: str) -> str:
    """RFC 2617 HA1, what the call core checks digest responses against instead of the password."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).hexdigest()


@dataclass(frozen=True)
class SharedLiveKeys:
    """The live-state keys the portal and the worker write for the call core to read.

    The call core's own counters (slots, CPS windows, reservations) are
    private to ``callcore.live``; these few are the hand-over points.
    """

    prefix: str

    def balance(self, account_id: int) -> str:
        """An account's balance in ten-thousandths (integer), refreshed by the CDR ingest."""
        return f"{self.prefix}:live:balance:{account_id}"

    def dynamic_blacklist(self, mapping_gateway_id: int | None = None) -> str:
        """Sorted set of blocked numbers, score = expiry in epoch ms; per gateway in standalone mode."""
        if mapping_gateway_id is None:
            return f"{self.prefix}:dynbl:central"
        return f"{self.prefix}:dynbl:gw:{mapping_gateway_id}"

    @property
    def cdr_stream(self) -> str:
        return f"{self.prefix}:cdr"

    @property
    def live_calls(self) -> str:
        return f"{self.prefix}:live:calls"

    def route_stats_minute(self, minute: int) -> str:
        """Hash of one minute's vendor attempts (field ``a:{gateway id}``) and connected calls (``c:{id}``),
        by the calls' start (``epoch ms // 60000``); the CDR ingest counts them."""
        return f"{self.prefix}:routestats:{minute}"

    @property
    def route_asr(self) -> str:
        """The routing gateways' attempts and connected calls over the ASR window (``RouteStats``), published
        by the worker for the Best ASR route policy; it expires when the worker stops publishing."""
        return f"{self.prefix}:routestats:asr"


# How often each call-core process reads ``SharedLiveKeys.route_asr`` (a GET on its snapshot poll).
ROUTE_STATS_POLL_S = 10.0


@dataclass(frozen=True)
class RouteStats:
    """Each routing gateway's (attempts, connected) over the last ``window_minutes``, as of ``at_ms``."""

    at_ms: int
    window_minutes: int
    gateways: dict[int, tuple[int, int]]

    def encode(self) -> bytes:
        return json.dumps(
            {
                "at_ms": self.at_ms,
                "window_minutes": self.window_minutes,
                "gateways": {str(k): [a, c] for k, (a, c) in sorted(self.gateways.items())},
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, raw: bytes | str) -> RouteStats:
        """Raises ValueError on anything but what ``encode`` writes."""
        try:
            data = json.loads(raw)
            gateways = {}
            for key, (attempts, connected) in data["gateways"].items():
                values = (int(key), attempts, connected)
                if not all(type(v) is int and v >= 0 for v in values) or connected > attempts:
                    raise ValueError(f"gateway {key}: {attempts!r} attempts, {connected!r} connected")
                gateways[values[0]] = (attempts, connected)
            at_ms, window = data["at_ms"], data["window_minutes"]
            if type(at_ms) is not int or type(window) is not int:
                raise ValueError("at_ms and window_minutes must be integers")
        except (TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"not route stats: {exc!r}") from None
        return cls(at_ms, window, gateways)


# A blacklist entry without an expiry: far enough ahead, and exact in a double.
NEVER_EXPIRES_MS = 2**52


@dataclass(frozen=True)
class SnapshotKeys:
    """Where the snapshot lives in Redis; both sides build the names here so they cannot drift."""

    prefix: str

    @property
    def version(self) -> str:
        return f"{self.prefix}:snapshot:version"

    @property
    def current(self) -> str:
        return f"{self.prefix}:snapshot:current"

    @property
    def digest(self) -> str:
        return f"{self.prefix}:snapshot:digest"

    @property
    def lock(self) -> str:
        return f"{self.prefix}:snapshot:lock"

    @property
    def channel(self) -> str:
        return f"{self.prefix}:snapshot"

    @property
    def blob_prefix(self) -> str:
        return f"{self.prefix}:snapshot:"

    def blob(self, version: int) -> str:
        return f"{self.blob_prefix}{version}"


@dataclass(frozen=True, slots=True)
class Account:
    """A customer or vendor clearing account as the call core sees it (balance as of the publish)."""

    id: int
    name: str
    account_type: AccountType
    balance: DecimalText
    credit_limit: DecimalText
    locked: bool
    anti_overdraft: bool
    capacity: int
    rate_table_id: int | None


@dataclass(frozen=True, slots=True)
class Rate:
    """The price of calls to one prefix; validity bounds are epoch milliseconds, None = open."""

    prefix: str
    area: str
    price_per_minute: DecimalText
    first_period: int
    next_period: int
    connect_fee: DecimalText
    valid_from_ms: int | None
    valid_to_ms: int | None

    def valid_at(self, at_ms: int) -> bool:
        return (self.valid_from_ms is None or self.valid_from_ms <= at_ms) and (
            self.valid_to_ms is None or at_ms < self.valid_to_ms
        )


@dataclass(frozen=True, slots=True)
class RateTable:
    id: int
    name: str
    currency: str
    rates: tuple[Rate, ...]


@dataclass(frozen=True, slots=True)
class TransformRule:
    """One number rewrite; a gateway lists its rules in the order they are tried, first match wins."""

    id: int
    name: str
    match_prefix: str
    min_length: int
    max_length: int  # 0 = any length
    strip_digits: int
    prepend: str


@dataclass(frozen=True, slots=True)
class ListGroup:
    """A black or white list: full numbers and prefixes kept apart so lookups are set probes."""

    id: int
    name: str
    kind: ListKind
    numbers: tuple[str, ...]
    prefixes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RoutingSchedule:
    """A weekly window in the snapshot's time zone; weekdays 0 = Monday, empty = every day."""

    id: int
    name: str
    weekdays: tuple[int, ...]
    start_minute: int  # minutes after midnight
    end_minute: int  # may be before start_minute: the window then crosses midnight

    def contains(self, weekday: int, minute: int) -> bool:
        """Whether a moment (weekday 0-6, minute of day) falls in the window.

        A window crossing midnight belongs to the day it starts on: Friday
        22:00-02:00 covers Saturday 01:00 but not Friday 01:00.
        """
        days = self.weekdays
        if self.start_minute < self.end_minute:
            return (not days or weekday in days) and self.start_minute <= minute < self.end_minute
        if minute >= self.start_minute:
            return not days or weekday in days
        return minute < self.end_minute and (not days or (weekday - 1) % 7 in days)


@dataclass(frozen=True, slots=True)
class CallerNumberPool:
    id: int
    name: str
    numbers: tuple[str, ...]
    mode: PoolMode


@dataclass(frozen=True, slots=True)
class MappingGateway:
    """A customer's ingress trunk, with its transforms inlined in the order they are tried."""

    id: int
    name: str
    account_id: int
    remote_ips: tuple[str, ...]  # addresses or CIDR networks
    auth_mode: AuthMode
    remote_port: int | None
    capacity: int  # 0 = no limit, as every limit below
    cps_limit: int
    caller_transforms: tuple[TransformRule, ...]
    callee_transforms: tuple[TransformRule, ...]
    caller_list_group_ids: tuple[int, ...]
    callee_list_group_ids: tuple[int, ...]
    prefix_allow: tuple[str, ...]  # empty = all
    prefix_forbid: tuple[str, ...]
    conversation_limit: int
    dynamic_blacklist_standalone: bool
    route_policy: RoutePolicy
    enabled: bool


@dataclass(frozen=True, slots=True)
class RoutingGateway:
    """A vendor's egress trunk, with its transforms and caller number pool inlined."""

    id: int
    name: str
    host: str
    port: int
    transport: Transport
    prefixes: tuple[str, ...]  # empty = serves every callee
    tech_prefix: str
    priority: int  # lower is tried first
    capacity: int
    cps_limit: int
    clearing_account_id: int | None
    caller_transforms: tuple[TransformRule, ...]
    callee_transforms: tuple[TransformRule, ...]
    schedule_ids: tuple[int, ...]  # empty = always
    caller_number_pool: CallerNumberPool | None
    failover_codes: tuple[int, ...]  # on top of DEFAULT_FAILOVER_CODES
    conversation_limit: int
    dynamic_blacklist_standalone: bool
    enabled: bool


@dataclass(frozen=True, slots=True)
class Phone:
    """A registered SIP user; ``ha1`` is md5(username:realm:password), never the password."""

    id: int
    username: str
    ha1: str
    account_id: int
    capacity: int
    allowed_networks: tuple[str, ...]
    allowed_countries: tuple[str, ...]
    enabled: bool


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the call core needs to decide a call, as of one publish.

    ``parameters`` holds every declared parameter, typed, defaults filled; treat
    it as read-only like the rest.
    """

    schema_version: int
    sip_realm: str
    time_zone: str  # IANA name the routing schedules are read in
    parameters: dict[str, int | bool]
    accounts: tuple[Account, ...]
    rate_tables: tuple[RateTable, ...]
    mapping_gateways: tuple[MappingGateway, ...]
    routing_gateways: tuple[RoutingGateway, ...]
    phones: tuple[Phone, ...]
    list_groups: tuple[ListGroup, ...]
    routing_schedules: tuple[RoutingSchedule, ...]


# Conversion is compiled once per declared type into small closures: a blob
# holds ~100k list numbers and ~10k rates, and walking type hints per value
# would cost more than the JSON parsing itself.


class _Invalid(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
        self.path: list[str] = []


def _describe(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


def _decode_int(value):
    if type(value) is not int:
        raise _Invalid(f"expected an integer, got {_describe(value)}")
    return value


def _decode_bool(value):
    if type(value) is not bool:
        raise _Invalid(f"expected true or false, got {_describe(value)}")
    return value


def _decode_str(value):
    if type(value) is not str:
        raise _Invalid(f"expected a string, got {_describe(value)}")
    return value


def _decode_decimal_text(value):
    if type(value) is not str:
        raise _Invalid(f"expected a decimal string, got {_describe(value)}")
    try:
        finite = Decimal(value).is_finite()
    except InvalidOperation:
        finite = False
    if not finite:
        raise _Invalid(f"expected a decimal string, got {_describe(value)}")
    return value


_PRIMITIVE_DECODERS = {int: _decode_int, bool: _decode_bool, str: _decode_str, DecimalText: _decode_decimal_text}


@functools.cache
def _decoder(tp):
    if tp in _PRIMITIVE_DECODERS:
        return _PRIMITIVE_DECODERS[tp]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        allowed = frozenset(args)

        def decode_literal(value):
            if type(value) is not str or value not in allowed:
                raise _Invalid(f"expected one of {', '.join(sorted(allowed))}, got {_describe(value)}")
            return value

        return decode_literal
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            inner = _decoder(rest[0])
            return lambda value: None if value is None else inner(value)
        if set(args) == {int, bool}:

            def decode_int_or_bool(value):
                if type(value) not in (int, bool):
                    raise _Invalid(f"expected an integer or true/false, got {_describe(value)}")
                return value

            return decode_int_or_bool
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _tuple_decoder(args[0])
    if origin is dict and args[0] is str:
        inner = _decoder(args[1])

        def decode_dict(value):
            if type(value) is not dict:
                raise _Invalid(f"expected an object, got {_describe(value)}")
            out = {}
            for key, item in value.items():
                try:
                    out[key] = inner(item)
                except _Invalid as exc:
                    exc.path.append(f"[{key!r}]")
                    raise
            return out

        return decode_dict
    if dataclasses.is_dataclass(tp):
        return _dataclass_decoder(tp)
    raise TypeError(f"the snapshot schema uses a type the decoder does not know: {tp!r}")


def _tuple_decoder(item_type):
    if item_type in (str, int):
        # Fast path for the long lists of numbers: one C-level pass when they are all fine.
        def decode_plain_list(value):
            if type(value) is not list:
                raise _Invalid(f"expected a list, got {_describe(value)}")
            if all(type(item) is item_type for item in value):
                return tuple(value)
            for index, item in enumerate(value):
                if type(item) is not item_type:
                    exc = _Invalid(
                        f"expected {'a string' if item_type is str else 'an integer'}, got {_describe(item)}"
                    )
                    exc.path.append(f"[{index}]")
                    raise exc
            raise AssertionError("unreachable")

        return decode_plain_list
    inner = _decoder(item_type)

    def decode_list(value):
        if type(value) is not list:
            raise _Invalid(f"expected a list, got {_describe(value)}")
        out = []
        for index, item in enumerate(value):
            try:
                out.append(inner(item))
            except _Invalid as exc:
                exc.path.append(f"[{index}]")
                raise
        return tuple(out)

    return decode_list


def _dataclass_decoder(cls):
    hints = typing.get_type_hints(cls)
    fields = [(f.name, _decoder(hints[f.name])) for f in dataclasses.fields(cls)]
    names = frozenset(name for name, _ in fields)

    def locate(value):
        # The slow path, only once something is known to be wrong: say which field.
        missing = [name for name, _ in fields if name not in value]
        if missing:
            raise _Invalid(f"{cls.__name__} is missing required key {missing[0]!r}")
        unknown = sorted(set(value) - names)
        if unknown:
            raise _Invalid(f"{cls.__name__} has unknown keys {unknown}: is the portal on a newer schema?")
        for name, decode in fields:
            try:
                decode(value[name])
            except _Invalid as exc:
                exc.path.append(f".{name}")
                raise

    def decode_dataclass(value):
        if type(value) is not dict:
            raise _Invalid(f"expected an object ({cls.__name__}), got {_describe(value)}")
        if value.keys() != names:
            locate(value)
        try:
            return cls(*[decode(value[name]) for name, decode in fields])
        except _Invalid:
            locate(value)
            raise

    return decode_dataclass


@functools.cache
def _encoder(tp):
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        fields = [(f.name, _encoder(hints[f.name])) for f in dataclasses.fields(tp)]

        def encode_dataclass(obj):
            return {
                name: getattr(obj, name) if encode is None else encode(getattr(obj, name)) for name, encode in fields
            }

        return encode_dataclass
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple:
        inner = _encoder(args[0])
        # json.dumps writes a tuple of plain values as an array without help.
        return None if inner is None else lambda value: [inner(item) for item in value]
    if origin in (typing.Union, types.UnionType):
        inners = [_encoder(a) for a in args if a is not type(None)]
        if any(inners):
            (inner,) = inners
            return lambda value: None if value is None else inner(value)
    return None  # a plain JSON value: written as is


def snapshot_to_dict(snapshot: Snapshot) -> dict:
    """The snapshot as plain JSON-ready values (tuples become arrays when dumped)."""
    return _encoder(Snapshot)(snapshot)


def snapshot_from_dict(data: object) -> Snapshot:
    """Rebuild and validate a snapshot from parsed JSON; raises SnapshotError naming the bad value."""
    if type(data) is not dict:
        raise SnapshotError(f"snapshot: expected an object, got {_describe(data)}")
    version = data.get("schema_version")
    if version != SNAPSHOT_SCHEMA_VERSION or type(version) is not int:
        raise SnapshotError(
            f"snapshot: schema version {version!r} is not the {SNAPSHOT_SCHEMA_VERSION} this call core reads; "
            "upgrade the side that is behind"
        )
    try:
        snapshot = _decoder(Snapshot)(data)
    except _Invalid as exc:
        raise SnapshotError(f"snapshot{''.join(reversed(exc.path))}: {exc.message}") from None
    _check_consistency(snapshot)
    return snapshot


def encode_snapshot(snapshot: Snapshot) -> bytes:
    """The blob published to Redis: compact JSON, zlib-compressed."""
    text = json.dumps(snapshot_to_dict(snapshot), separators=(",", ":"), ensure_ascii=False)
    return zlib.compress(text.encode(), SNAPSHOT_ZLIB_LEVEL)


def decode_snapshot(blob: bytes) -> Snapshot:
    """Decompress, parse and validate a blob; any problem raises SnapshotError."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise SnapshotError(f"snapshot blob must be bytes, got {type(blob).__name__}")
    try:
        text = zlib.decompress(blob)
    except zlib.error as exc:
        raise SnapshotError(f"snapshot blob is not a complete zlib stream ({exc})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
        raise SnapshotError(f"snapshot blob is not valid JSON ({exc})") from None
    return snapshot_from_dict(data)


def _check_consistency(snapshot: Snapshot) -> None:
    """What types alone cannot say: parameters complete and in range, references resolvable, IPs parseable."""
    problems: list[str] = []
    params = snapshot.parameters
    for p in PARAMETERS:
        if p.name not in params:
            problems.append(f"parameters: {p.name} is missing")
            continue
        value = params[p.name]
        if (type(value) is bool) != (p.type is bool):
            problems.append(f"parameters: {p.name} must be {p.type.__name__}, got {_describe(value)}")
            continue
        try:
            p.parse(value)
        except ValueError as exc:
            problems.append(f"parameters: {exc}")
    unknown = sorted(set(params) - {p.name for p in PARAMETERS})
    if unknown:
        problems.append(f"parameters: unknown names {unknown}")

    def ids(collection: str, items) -> set[int]:
        seen: set[int] = set()
        for item in items:
            if item.id in seen:
                problems.append(f"{collection}: id {item.id} appears twice")
            seen.add(item.id)
        return seen

    accounts = ids("accounts", snapshot.accounts)
    rate_tables = ids("rate_tables", snapshot.rate_tables)
    list_groups = ids("list_groups", snapshot.list_groups)
    schedules = ids("routing_schedules", snapshot.routing_schedules)
    ids("mapping_gateways", snapshot.mapping_gateways)
    ids("routing_gateways", snapshot.routing_gateways)
    ids("phones", snapshot.phones)

    def refer(where: str, ref: int | None, known: set[int], what: str) -> None:
        if ref is not None and ref not in known:
            problems.append(f"{where}: {what} {ref} is not in the snapshot")

    def networks(where: str, values: tuple[str, ...]) -> None:
        for value in values:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                problems.append(f"{where}: {value!r} is not an IP address or network")

    for a in snapshot.accounts:
        refer(f"accounts[id={a.id}]", a.rate_table_id, rate_tables, "rate table")
    for g in snapshot.mapping_gateways:
        where = f"mapping_gateways[id={g.id}]"
        refer(where, g.account_id, accounts, "account")
        for group_id in g.caller_list_group_ids + g.callee_list_group_ids:
            refer(where, group_id, list_groups, "list group")
        networks(where, g.remote_ips)
        if g.auth_mode == "ip_port" and g.remote_port is None:
            problems.append(f"{where}: auth_mode ip_port needs remote_port")
    for g in snapshot.routing_gateways:
        where = f"routing_gateways[id={g.id}]"
        refer(where, g.clearing_account_id, accounts, "clearing account")
        for schedule_id in g.schedule_ids:
            refer(where, schedule_id, schedules, "routing schedule")
    usernames: set[str] = set()
    for phone in snapshot.phones:
        where = f"phones[id={phone.id}]"
        refer(where, phone.account_id, accounts, "account")
        networks(where, phone.allowed_networks)
        if len(phone.ha1) != 32 or phone.ha1.strip("0123456789abcdef"):
            problems.append(f"{where}: ha1 is not an md5 hex digest")
        if phone.username in usernames:
            problems.append(f"{where}: username {phone.username!r} appears twice")
        usernames.add(phone.username)
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise SnapshotError("snapshot is inconsistent: " + "; ".join(problems[:5]) + more)


# ---------------------------------------------------------------------------
# IP-to-country table: the data behind a phone's allowed countries (geofence)
#
# The portal imports the registries' delegated statistics into PostgreSQL
# (security.ip_countries) and publishes the merged ranges as one blob beside a
# version; each call-core process keeps the table in memory (callcore.geo) and
# reads the version on its periodic poll. The blob is packed integers, column
# by column, zlib-compressed: JSON of ~250k ranges would take longer to parse
# than every process may spend at start.
#
# Layout before compression: the header (magic, format, number of countries,
# IPv4 ranges, IPv6 ranges), the country codes (2 ASCII letters each), then
# for IPv4 the starts (u32), the ends (u32, inclusive) and the country indexes
# (u16), then the same for IPv6 with u64 bounds; little-endian throughout.
# Bump IP_COUNTRY_FORMAT on any change of that layout.

IP_COUNTRY_FORMAT = 1
_IP_COUNTRY_MAGIC = b"SSIPCC"
_IP_COUNTRY_HEADER = struct.Struct("<6sHHII")
# zlib's default, measured on 260k synthetic ranges (bench/geo.py): level 9 took three times as long
# (0.62 s against 0.21 s) for a blob no smaller (1.163 MB against 1.159 MB); level 1 gave 1.213 MB in
# 0.07 s. Every level decompresses in about 13 ms, so the call core's load does not care.
IP_COUNTRY_ZLIB_LEVEL = 6
# How often each call-core process reads IpCountryKeys.version (a GET on its snapshot poll).
IP_COUNTRY_POLL_S = 10.0
# An IPv6 bound is the address's upper 64 bits (its /64 network): registries delegate nothing smaller
# than a /64, and 64-bit integers keep the arrays native, so a lookup is a C-level bisect.
IPV6_UNIT_BITS = 64
_IPV6_LOW = (1 << IPV6_UNIT_BITS) - 1
_IPV4_MAX = (1 << 32) - 1
_IPV6_UNIT_MAX = (1 << (128 - IPV6_UNIT_BITS)) - 1


def _typecode(size: int) -> str:
    """The array typecode of unsigned integers of ``size`` bytes on this platform."""
    return next(code for code in "BHILQ" if array.array(code).itemsize == size)


_U16, _U32, _U64 = _typecode(2), _typecode(4), _typecode(8)


class IpCountryError(ValueError):
    """IP-to-country ranges that cannot be trusted; the message says what is wrong."""


@dataclass(frozen=True)
class IpCountryKeys:
    """Where the IP-to-country table lives in Redis: the blob and the version that names it."""

    prefix: str

    @property
    def version(self) -> str:
        """A short digest of the blob: the call core fetches the blob only when it changes."""
        return f"{self.prefix}:ipcountry:version"

    @property
    def blob(self) -> str:
        return f"{self.prefix}:ipcountry:blob"


@dataclass(frozen=True, eq=False)
class IpCountryRanges:
    """Sorted, disjoint address ranges with their country, as parallel arrays: what a binary search wants.

    ``ipv4_*`` bounds are addresses, ``ipv6_*`` bounds /64 network numbers
    (see IPV6_UNIT_BITS); ends are inclusive; ``*_countries`` index ``countries``.
    """

    countries: tuple[str, ...]
    ipv4_starts: array.array
    ipv4_ends: array.array
    ipv4_countries: array.array
    ipv6_starts: array.array
    ipv6_ends: array.array
    ipv6_countries: array.array

    def ranges(self, version: int) -> Iterator[tuple[int, int, str]]:
        """(first address, last address, country) of every IPv4 or IPv6 range, in order."""
        countries = self.countries
        if version == 4:
            for start, end, index in zip(self.ipv4_starts, self.ipv4_ends, self.ipv4_countries, strict=True):
                yield start, end, countries[index]
        else:
            for start, end, index in zip(self.ipv6_starts, self.ipv6_ends, self.ipv6_countries, strict=True):
                yield start << IPV6_UNIT_BITS, (end << IPV6_UNIT_BITS) | _IPV6_LOW, countries[index]


def _valid_country(code: object) -> bool:
    return type(code) is str and len(code) == 2 and code.isascii() and code.isalpha() and code.isupper()


def _range_error(version: int, first: int, last: int, message: str) -> IpCountryError:
    return IpCountryError(f"IPv{version} range {first}-{last}: {message}")


def encode_ip_countries(ipv4: Iterable[tuple[int, int, str]], ipv6: Iterable[tuple[int, int, str]]) -> bytes:
    """The blob of sorted, disjoint (first address, last address, country) ranges; IpCountryError otherwise.

    IPv6 ranges must cover whole /64 networks (as every delegated prefix does).
    """
    columns = []
    for version, ranges in ((4, ipv4), (6, ipv6)):
        starts, ends, codes = [], [], []
        previous_end = -1
        valid = set()  # the codes already checked: a quarter-million ranges share some 250 of them
        limit = _IPV4_MAX if version == 4 else _IPV6_UNIT_MAX
        for first, last, country in ranges:
            start, end = first, last
            if version == 6:
                if start & _IPV6_LOW or ~end & _IPV6_LOW:
                    raise _range_error(version, first, last, "IPv6 ranges must cover whole /64 networks")
                start, end = start >> IPV6_UNIT_BITS, end >> IPV6_UNIT_BITS
            if not 0 <= start <= end <= limit:
                raise _range_error(version, first, last, f"not a range of IPv{version} addresses")
            if start <= previous_end:
                raise _range_error(version, first, last, "overlaps or precedes the range before it")
            if country not in valid:
                if not _valid_country(country):
                    message = f"{country!r} is not a two-letter upper-case country code"
                    raise _range_error(version, first, last, message)
                valid.add(country)
            previous_end = end
            starts.append(start)
            ends.append(end)
            codes.append(country)
        columns.append((starts, ends, codes))
    countries = tuple(sorted({code for _, _, codes in columns for code in codes}))
    index = {code: i for i, code in enumerate(countries)}
    parts = [
        _IP_COUNTRY_HEADER.pack(
            _IP_COUNTRY_MAGIC, IP_COUNTRY_FORMAT, len(countries), len(columns[0][0]), len(columns[1][0])
        ),
        "".join(countries).encode("ascii"),
    ]
    for (starts, ends, codes), bound in zip(columns, (_U32, _U64), strict=True):
        for values in (array.array(bound, starts), array.array(bound, ends), array.array(_U16, map(index.get, codes))):
            if sys.byteorder == "big":
                values.byteswap()
            parts.append(values.tobytes())
    return zlib.compress(b"".join(parts), IP_COUNTRY_ZLIB_LEVEL)


def decode_ip_countries(blob: bytes) -> IpCountryRanges:
    """Decompress and check a blob (sizes, codes, order, overlaps); any problem raises IpCountryError."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise IpCountryError(f"IP-country blob must be bytes, got {type(blob).__name__}")
    try:
        raw = zlib.decompress(blob)
    except zlib.error as exc:
        raise IpCountryError(f"IP-country blob is not a complete zlib stream ({exc})") from None
    if len(raw) < _IP_COUNTRY_HEADER.size:
        raise IpCountryError("IP-country blob is shorter than its header")
    magic, version, n_countries, n_ipv4, n_ipv6 = _IP_COUNTRY_HEADER.unpack_from(raw)
    if magic != _IP_COUNTRY_MAGIC:
        raise IpCountryError("not an IP-country blob (wrong magic)")
    if version != IP_COUNTRY_FORMAT:
        raise IpCountryError(
            f"IP-country blob format {version} is not the {IP_COUNTRY_FORMAT} this side reads; "
            "upgrade the side that is behind"
        )
    expected = _IP_COUNTRY_HEADER.size + 2 * n_countries + n_ipv4 * (4 + 4 + 2) + n_ipv6 * (8 + 8 + 2)
    if len(raw) != expected:
        raise IpCountryError(f"IP-country blob holds {len(raw)} bytes where its header announces {expected}")
    offset = _IP_COUNTRY_HEADER.size
    text = raw[offset : offset + 2 * n_countries].decode("ascii", "replace")
    countries = tuple(text[i : i + 2] for i in range(0, len(text), 2))
    offset += 2 * n_countries
    bad = [code for code in countries if not _valid_country(code)]
    if bad:
        raise IpCountryError(f"IP-country blob: {bad[0]!r} is not a two-letter upper-case country code")
    if list(countries) != sorted(set(countries)):
        raise IpCountryError("IP-country blob: the country codes are not sorted and unique")

    def column(code, count):
        nonlocal offset
        values = array.array(code)
        values.frombytes(raw[offset : offset + count * values.itemsize])
        offset += count * values.itemsize
        if sys.byteorder == "big":
            values.byteswap()
        return values

    arrays = []
    for version_name, bound, count in (("IPv4", _U32, n_ipv4), ("IPv6", _U64, n_ipv6)):
        starts, ends, indexes = column(bound, count), column(bound, count), column(_U16, count)
        # Checked in C-level passes (map over operator functions): a Python loop would cost each
        # process tens of milliseconds at start on a quarter-million ranges.
        if not all(map(operator.le, starts, ends)):
            raise IpCountryError(f"IP-country blob: an {version_name} range ends before it starts")
        if not all(map(operator.lt, ends, itertools.islice(starts, 1, None))):
            raise IpCountryError(f"IP-country blob: {version_name} ranges overlap or are out of order")
        if count and max(indexes) >= n_countries:
            raise IpCountryError(f"IP-country blob: an {version_name} range names a country it does not list")
        arrays += [starts, ends, indexes]
    return IpCountryRanges(countries, *arrays)
