"""The configuration snapshot: the schema the portal publishes and the call core loads, and its codec."""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import operator
import re
import types
import typing
import zlib
from decimal import Decimal, InvalidOperation
from itertools import chain
from typing import Literal, NewType

import msgspec

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
    "MediaProxy",
    "SnapshotError",
    "digest_ha1",
    "digest_ha1b",
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
# not match these declarations exactly (strict types, no key missing, no key
# unknown) raises ``SnapshotError`` and the call core keeps routing on the
# snapshot it already has.
#
# Bump SNAPSHOT_SCHEMA_VERSION on any change a loader of the previous version
# would misread (a field added, removed, renamed or retyped).

SNAPSHOT_SCHEMA_VERSION = 2

# The digest realm phones authenticate in. The portal may override it with
# settings.SIP_REALM; the snapshot carries the realm its hashes were made with.
SIP_REALM = "softswitch"

# Level 1: the portal pays the compression on every save, and higher levels cost far more time than bytes saved.
SNAPSHOT_ZLIB_LEVEL = 1

# A money amount as a decimal string: JSON numbers would pass through float. Checked to be a finite
# Decimal after decoding, in one pass over the distinct values: a regex per value costs 5x more.
DecimalText = NewType("DecimalText", str)

AccountType = Literal["customer", "vendor"]
AuthMode = Literal["ip", "ip_port"]
RoutePolicy = Literal["priority", "least_cost", "asr"]
Transport = Literal["udp", "tcp"]
PoolMode = Literal["random", "round_robin"]
ListKind = Literal["black", "white", "highrisk"]
# Whether a gateway's calls relay their media through the switch (rtpengine): never, always, or when the
# caller's SDP names an address other than the one its INVITE came from (a NAT between them).
MediaProxy = Literal["off", "always", "nat"]


class _Schema(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """Immutable, refuses unknown keys; gc=False: a snapshot holds no cycles, and the collector need not walk it."""


class SnapshotError(ValueError):
    """A snapshot blob that cannot be trusted; the message says what is wrong and where."""


def digest_ha1(username: str, realm: str, password: str) -> str:
    """RFC 2617 HA1, what the call core checks digest responses against instead of the password."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).hexdigest()


def digest_ha1b(username: str, realm: str, password: str) -> str:
    """HA1 of a username sent with its realm (``user@realm``), as some user agents send it."""
    return hashlib.md5(f"{username}@{realm}:{realm}:{password}".encode()).hexdigest()


class Account(_Schema):
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
    # Its calls are not judged by the anti-fraud rules on high-risk destinations (an operator's choice).
    high_risk_exempt: bool = False


class Rate(_Schema):
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


class RateTable(_Schema):
    id: int
    name: str
    currency: str
    rates: tuple[Rate, ...]


class TransformRule(_Schema):
    """One number rewrite; a gateway lists its rules in the order they are tried, first match wins."""

    id: int
    name: str
    match_prefix: str
    min_length: int
    max_length: int  # 0 = any length
    strip_digits: int
    prepend: str


class ListGroup(_Schema):
    """A black or white list: full numbers and prefixes kept apart so lookups are set probes."""

    id: int
    name: str
    kind: ListKind
    numbers: tuple[str, ...]
    prefixes: tuple[str, ...]


class RoutingSchedule(_Schema):
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


class CallerNumberPool(_Schema):
    id: int
    name: str
    numbers: tuple[str, ...]
    mode: PoolMode


class MappingGateway(_Schema):
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
    # Refuse a caller that is not a number (anonymous, withheld) rather than record it as sent.
    require_caller_number: bool = False
    # Its calls are not judged by the anti-fraud rules on high-risk destinations (an operator's choice).
    high_risk_exempt: bool = False
    media_proxy: MediaProxy = "off"


class RoutingGateway(_Schema):
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
    media_proxy: MediaProxy = "off"


class Phone(_Schema):
    """A registered SIP user; ``ha1`` is md5(username:realm:password), never the password.

    ``ha1b`` is md5(username@realm:realm:password), for the user agents that send their
    username with the realm (``1001@realm``); empty in snapshots from before it.
    """

    id: int
    username: str
    ha1: str
    account_id: int
    capacity: int
    allowed_networks: tuple[str, ...]
    allowed_countries: tuple[str, ...]
    enabled: bool
    ha1b: str = ""
    # The operators' test-call phone: only its calls may name the one vendor to try (X-Test-Gateway).
    test_phone: bool = False


class Snapshot(_Schema):
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


_DECODER = msgspec.json.Decoder(Snapshot)
_ENCODER = msgspec.json.Encoder()


def snapshot_to_dict(snapshot: Snapshot) -> dict:
    """The snapshot as plain JSON-ready values (tuples become lists)."""
    return msgspec.to_builtins(snapshot)


def snapshot_from_dict(data: object) -> Snapshot:
    """Rebuild and validate a snapshot from parsed JSON; raises SnapshotError naming the bad value."""
    try:
        snapshot = msgspec.convert(data, Snapshot, strict=True)
    except msgspec.ValidationError as exc:
        raise _explain(exc, data) from None
    return _validated(snapshot)


def encode_snapshot(snapshot: Snapshot) -> bytes:
    """The blob published to Redis: compact JSON, zlib-compressed."""
    return zlib.compress(_ENCODER.encode(snapshot), SNAPSHOT_ZLIB_LEVEL)


def decode_snapshot(blob: bytes) -> Snapshot:
    """Decompress, parse and validate a blob; any problem raises SnapshotError."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise SnapshotError(f"snapshot blob must be bytes, got {type(blob).__name__}")
    try:
        text = zlib.decompress(blob)
    except zlib.error as exc:
        raise SnapshotError(f"snapshot blob is not a complete zlib stream ({exc})") from None
    try:
        snapshot = _DECODER.decode(text)
    except msgspec.ValidationError as exc:
        # Types are checked while parsing: the text may be malformed further on, which is said first.
        raise _explain(exc, _parse(text)) from None
    except (msgspec.DecodeError, ValueError) as exc:  # malformed JSON and invalid UTF-8 alike
        raise SnapshotError(f"snapshot blob is not valid JSON ({exc})") from None
    return _validated(snapshot)


def _parse(text: bytes) -> object:
    try:
        return msgspec.json.decode(text)
    except (msgspec.DecodeError, ValueError) as exc:  # malformed JSON and invalid UTF-8 alike
        raise SnapshotError(f"snapshot blob is not valid JSON ({exc})") from None


def _check_version(version: object) -> None:
    if version != SNAPSHOT_SCHEMA_VERSION or type(version) is not int:
        raise SnapshotError(
            f"snapshot: schema version {version!r} is not the {SNAPSHOT_SCHEMA_VERSION} this call core reads; "
            "upgrade the side that is behind"
        )


def _validated(snapshot: Snapshot) -> Snapshot:
    _check_version(snapshot.schema_version)
    _check_decimal_texts(snapshot)
    _check_consistency(snapshot)
    return snapshot


def _describe(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


def _is_schema(tp: object) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _unwrap_optional(tp):
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return tp


@functools.cache
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _expected(tp) -> str:
    """What a value of declared type ``tp`` must be, in the words a SnapshotError uses."""
    tp = _unwrap_optional(tp)
    words = {int: "an integer", bool: "true or false", str: "a string", DecimalText: "a decimal string"}
    if tp in words:
        return words[tp]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return f"one of {', '.join(sorted(args))}"
    if origin in (typing.Union, types.UnionType) and set(args) == {int, bool}:
        return "an integer or true/false"
    if origin is tuple:
        return "a list"
    if _is_schema(tp):
        return f"an object ({tp.__name__})"
    return "an object"


_PATH_STEP = re.compile(r"\.(\w+)|\[(\d+)\]|\[\.\.\.\]")


def _explain(exc: msgspec.ValidationError, data: object) -> SnapshotError:
    """msgspec's complaint (``... - at `$.accounts[0].name```) in the words and path the loader logs.

    As the loader always has, an object's missing or unknown keys are reported before anything wrong inside it.
    """
    if type(data) is not dict:
        return SnapshotError(f"snapshot: expected an object, got {_describe(data)}")
    _check_version(data.get("schema_version"))
    _, _, at = str(exc).partition(" - at `")
    try:
        tp, value, where = Snapshot, data, "snapshot"
        steps = _PATH_STEP.finditer(at.rstrip("`").removeprefix("$"))
        while True:
            tp = _unwrap_optional(tp)
            if _is_schema(tp) and type(value) is dict and value.keys() != set(tp.__struct_fields__):
                missing = [name for name in tp.__struct_fields__ if name not in value]
                if missing:
                    return SnapshotError(f"{where}: {tp.__name__} is missing required key {missing[0]!r}")
                unknown = sorted(set(value) - set(tp.__struct_fields__))
                return SnapshotError(
                    f"{where}: {tp.__name__} has unknown keys {unknown}: is the portal on a newer schema?"
                )
            step = next(steps, None)
            if step is None:
                return SnapshotError(f"{where}: expected {_expected(tp)}, got {_describe(value)}")
            name, index = step.group(1), step.group(2)
            if name is not None:
                tp, value, where = _hints(tp)[name], value[name], f"{where}.{name}"
            elif index is not None:
                tp, value, where = typing.get_args(tp)[0], value[int(index)], f"{where}[{index}]"
            else:  # msgspec does not name the key of a bad dict value: find it
                item_type = typing.get_args(tp)[1]
                key = next(k for k, v in value.items() if not _conforms(v, item_type))
                tp, value, where = item_type, value[key], f"{where}[{key!r}]"
    except (KeyError, IndexError, TypeError, AttributeError, StopIteration):
        return SnapshotError(f"snapshot: {exc}")


def _conforms(value: object, tp) -> bool:
    try:
        msgspec.convert(value, tp, strict=True)
    except msgspec.ValidationError:
        return False
    return True


@functools.cache
def _decimal_plan(cls) -> tuple[tuple[str, type | None], ...]:
    """Each field of ``cls`` that is a DecimalText (class None) or a tuple of schema objects holding some."""
    plan = []
    for name, tp in _hints(cls).items():
        tp = _unwrap_optional(tp)
        if tp is DecimalText:
            plan.append((name, None))
        elif typing.get_origin(tp) is tuple and _is_schema(typing.get_args(tp)[0]):
            if _decimal_plan(typing.get_args(tp)[0]):
                plan.append((name, typing.get_args(tp)[0]))
        elif _is_schema(tp) and _decimal_plan(tp):
            raise TypeError(f"{cls.__name__}.{name}: a single nested object holding decimals is not checked")
    return tuple(plan)


_decimal_plan(Snapshot)  # a schema the check cannot follow fails at import, not at the first load


def _decimal_values(items, cls, out: set) -> None:
    plan = _decimal_plan(cls)
    leaves = [name for name, inner in plan if inner is None]
    if len(leaves) == 1:
        out.update(map(operator.attrgetter(leaves[0]), items))
    elif leaves:
        out.update(chain.from_iterable(map(operator.attrgetter(*leaves), items)))
    for name, inner in plan:
        if inner is not None:
            for item in items:
                _decimal_values(getattr(item, name), inner, out)


def _decimal_paths(obj, cls, where):
    for name, inner in _decimal_plan(cls):
        value = getattr(obj, name)
        if inner is None:
            yield f"{where}.{name}", value
        else:
            for index, item in enumerate(value):
                yield from _decimal_paths(item, inner, f"{where}.{name}[{index}]")


def _is_finite_decimal(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except InvalidOperation:
        return False


def _check_decimal_texts(snapshot: Snapshot) -> None:
    """Every DecimalText a finite decimal; each distinct value is parsed once, the path sought only on failure."""
    values: set[str] = set()
    _decimal_values((snapshot,), Snapshot, values)
    if all(map(_is_finite_decimal, values)):
        return
    for where, value in _decimal_paths(snapshot, Snapshot, "snapshot"):
        if not _is_finite_decimal(value):
            raise SnapshotError(f"{where}: expected a decimal string, got {_describe(value)}")


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
