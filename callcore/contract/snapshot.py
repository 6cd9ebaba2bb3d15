"""The configuration snapshot: the schema the portal publishes and the call core loads, and its codec."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import ipaddress
import json
import types
import typing
import zlib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal, NewType

from .params import PARAMETERS

__all__ = [
    "SNAPSHOT_SCHEMA_VERSION",
    "SIP_REALM",
    "SNAPSHOT_ZLIB_LEVEL",
    "DecimalText",
    "AccountType",
    "AuthMode",
    "RoutePolicy",
    "Transport",
    "PoolMode",
    "ListKind",
    "SnapshotError",
    "digest_ha1",
    "Account",
    "Rate",
    "RateTable",
    "TransformRule",
    "ListGroup",
    "RoutingSchedule",
    "CallerNumberPool",
    "MappingGateway",
    "RoutingGateway",
    "Phone",
    "Snapshot",
    "snapshot_to_dict",
    "snapshot_from_dict",
    "encode_snapshot",
    "decode_snapshot",
]


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
