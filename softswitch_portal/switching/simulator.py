"""The routing simulator: what the call core would do with a call, by its own planning code, touching nothing.

It reads the snapshot the call core routes on (the published blob, its signature checked, indexed by
``callcore.snapshot_index`` as each node indexes it) and the vendors' ASR for the Best ASR policy, runs
``callcore.decide.plan_call`` with a trace list, and reads (never writes) the vendors' live counters to
say which would be at capacity or at its CPS limit now. Every routing gateway gets a row: kept in policy
order, or skipped with one of ``contract.trace.Skip`` (the words the CDR's decision trace uses).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import uuid
from decimal import Decimal

import redis
from django.conf import settings

from callcore import contract
from callcore import decide as dec
from callcore.contract.trace import LimitSource, Skip
from callcore.snapshot_index import IndexedSnapshot
from softswitch_portal.core.redis import Waiter, prefix, redis_client

LIMIT_SOURCES = {
    LimitSource.DEFAULT: "the call core's default maximum duration (no conversation limit applies)",
    LimitSource.MAPPING_GATEWAY: "the mapping gateway's conversation limit",
    LimitSource.ROUTE: "the routing gateway's conversation limit",
}


class SimulationError(Exception):
    """The simulation cannot run (no snapshot, an unknown source); the message says why, naming the field."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclasses.dataclass
class CandidateRow:
    gateway_id: int
    gateway: str
    prefixes: str
    priority: int
    kept: bool
    order: int | None  # in policy order, among the kept
    reason: str  # a Skip value, or "" when kept
    why: str
    caller_out: str = ""
    callee_out: str = ""
    customer_price: str = ""
    vendor_price: str = ""
    live_calls: int | None = None
    capacity: int = 0
    cps_now: int | None = None
    cps_limit: int = 0
    first: bool = False  # the predicted first vendor
    rank: int = 0  # the kept in policy order, then the skipped by priority


@dataclasses.dataclass
class Simulation:
    snapshot_version: int
    source: str
    mapping_gateway: str
    account: str
    caller_in: str
    callee_in: str
    caller: str = ""  # after the mapping gateway's transforms
    callee: str = ""
    policy: str = ""
    refused: str = ""  # the end reason's code when the plan alone refuses the call
    refused_description: str = ""
    rows: list[CandidateRow] = dataclasses.field(default_factory=list)
    first_vendor: str = ""
    rate_prefix: str = ""
    rate_price: str = ""
    rate_periods: str = ""
    max_duration_s: int | None = None
    max_by: str = ""
    live_checked: bool = True

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_snapshot(client=None) -> IndexedSnapshot:
    """The current published snapshot, verified and indexed as a call-core node does."""
    client = client or redis_client(Waiter.PAGE)
    keys = contract.SnapshotKeys(prefix())
    try:
        current = client.get(keys.current)
        if current is None:
            raise SimulationError("No configuration snapshot is published yet (run publish_snapshot).")
        version = int(current)
        blob, signature = client.mget(keys.blob(version), keys.signature(version))
    except redis.RedisError as exc:
        raise SimulationError(f"Redis does not answer: {exc}") from None
    if blob is None:
        raise SimulationError(f"Snapshot version {version} is current but its blob is missing.")
    try:
        key = contract.signing_key(settings.SNAPSHOT_SIGNING_KEY)
    except contract.SignatureError as exc:
        raise SimulationError(str(exc)) from None
    if not contract.verify_snapshot(key, blob, signature):
        raise SimulationError(f"Snapshot version {version} does not carry a valid signature: the call core refuses it.")
    return IndexedSnapshot(contract.decode_snapshot(blob), version)


def _route_stats(client) -> contract.RouteStats | None:
    try:
        raw = client.get(contract.Keys(prefix()).route_asr)
        return contract.RouteStats.decode(raw) if raw is not None else None
    except (redis.RedisError, ValueError):
        return None


def source_address(snap: IndexedSnapshot, mapping_gateway_id: int) -> tuple[str, int]:
    """An address (and port) from which the call core would take a call as ``mapping_gateway_id``'s."""
    gateway = snap.mapping_gateways.get(mapping_gateway_id)
    if gateway is None or not gateway.enabled:
        raise SimulationError("This mapping gateway is not in the published snapshot (disabled?).", "mapping_gateway")
    port = gateway.remote_port or 5060
    for value in gateway.remote_ips:
        network = ipaddress.ip_network(value, strict=False)
        hosts = [network.network_address] if network.num_addresses <= 2 else [next(network.hosts())]
        for address in hosts:
            if snap.mapping_gateway_for(str(address), port) is gateway:
                return str(address), port
    raise SimulationError("No source address of this mapping gateway reaches it: a more specific one claims it.")


def _live_counters(client, routes, now_ms: int) -> dict[int, tuple[int, int]] | None:
    """Each route's (live calls, attempts this second), read the way the set-up script counts them."""
    keys = contract.Keys(prefix())
    second = now_ms // 1000
    try:
        with client.pipeline(transaction=False) as pipe:
            for route in routes:
                pipe.zcount(keys.slots("rgw", route.gateway_id), f"({now_ms}", "+inf")
                pipe.get(f"{keys.cps('rgw', route.gateway_id)}:{second}")
            answers = pipe.execute()
    except redis.RedisError:
        return None
    return {route.gateway_id: (int(answers[2 * i]), int(answers[2 * i + 1] or 0)) for i, route in enumerate(routes)}


def _price(rate) -> str:
    return f"{Decimal(rate.price_per_minute):.4f}" if rate is not None else ""


def simulate(
    *, source_ip: str = "", source_port: int = 5060, mapping_gateway_id: int | None = None, caller: str, callee: str,
    at_ms: int, now_ms: int, client=None,
) -> Simulation:  # fmt: skip
    """Plan the call on the current snapshot as the call core would at ``at_ms``; live counters as of ``now_ms``.

    The live counters are read for a call now only: for another time the capacity and CPS columns are empty.
    """
    client = client or redis_client(Waiter.PAGE)
    snap = load_snapshot(client)
    if mapping_gateway_id is not None:
        source_ip, source_port = source_address(snap, mapping_gateway_id)
    mapping_gateway = snap.mapping_gateway_for(source_ip, source_port)
    facts = dec.CallFacts(
        call_id=f"simulator-{uuid.uuid4().hex}",
        source_ip=source_ip,
        source_port=source_port,
        caller=caller,
        callee=callee,
        now_ms=at_ms,
        user_agent="softswitch routing simulator",
    )
    trace: list = []
    planned = dec.plan_call(facts, snap, route_stats=_route_stats(client), trace=trace)
    account = snap.accounts.get(mapping_gateway.account_id) if mapping_gateway is not None else None
    result = Simulation(
        snapshot_version=snap.version,
        source=f"{source_ip}:{source_port}",
        mapping_gateway=mapping_gateway.name if mapping_gateway is not None else "",
        account=account.name if account is not None else "",
        caller_in=caller,
        callee_in=callee,
        policy=mapping_gateway.route_policy if mapping_gateway is not None else "priority",
    )
    if isinstance(planned, dec.Decision):
        if planned.reason is None:
            result.refused, result.refused_description = "challenge", "A phone's call: digest authentication first."
        else:
            result.refused, result.refused_description = planned.reason.code, planned.reason.description
        if planned.reason not in (dec.EndReason.NO_ROUTE, dec.EndReason.NO_RATE):
            return result
        plan = None
        routes = []
    else:
        plan = planned
        routes = plan.routes
        result.caller, result.callee = plan.caller, plan.callee
    skipped = {gateway.id: why for gateway, why in trace}
    candidates = {g.id for g in snap.route_candidates(result.callee or callee)}
    live = _live_counters(client, routes, now_ms) if routes and abs(at_ms - now_ms) < 1000 else None
    result.live_checked = live is not None
    kept = {route.gateway_id: (order, route) for order, route in enumerate(routes, start=1)}
    first = None
    for route in routes:
        if live is None:
            first = first or route
            continue
        calls, attempts = live[route.gateway_id]
        if route.capacity > 0 and calls >= route.capacity:
            skipped[route.gateway_id] = Skip.CAPACITY
        elif route.cps_limit > 0 and attempts >= route.cps_limit:
            skipped[route.gateway_id] = Skip.CPS
        elif first is None:
            first = route
    for gateway in sorted(snap.routing_gateways.values(), key=lambda g: (g.priority, g.id)):
        order, route = kept.get(gateway.id, (None, None))
        reason = skipped.get(gateway.id)
        if reason is None and route is None:
            reason = Skip.DISABLED if not gateway.enabled else Skip.PREFIX if gateway.id not in candidates else None
        row = CandidateRow(
            gateway_id=gateway.id,
            gateway=gateway.name,
            prefixes=", ".join(gateway.prefixes) or "(every callee)",
            priority=gateway.priority,
            kept=route is not None and reason is None,
            order=order,
            reason=str(reason) if reason is not None else "",
            why=reason.label if reason is not None else f"number {order} in {result.policy} order",
            capacity=gateway.capacity,
            cps_limit=gateway.cps_limit,
        )
        if route is not None:
            row.caller_out, row.callee_out = route.caller_out, route.callee_out
            row.customer_price, row.vendor_price = _price(route.customer_rate), _price(route.vendor_rate)
            if live is not None:
                row.live_calls, row.cps_now = live[gateway.id]
            row.first = route is first
        result.rows.append(row)
    for rank, row in enumerate(sorted(result.rows, key=lambda r: (r.order is None, r.order or 0, r.priority))):
        row.rank = rank
    if plan is not None and first is not None:
        rate = first.customer_rate
        result.first_vendor = first.gateway_name
        result.rate_prefix = rate.prefix
        result.rate_price = _price(rate)
        result.rate_periods = f"{rate.first_period}/{rate.next_period}"
        seconds, source = dec.route_limit(plan, first)
        result.max_duration_s, result.max_by = seconds, LIMIT_SOURCES[source]
    elif plan is not None:
        result.refused, result.refused_description = "routes_busy", dec.EndReason.ROUTES_BUSY.description
    return result
