"""The live calls of every node, read from the live-call registry, and forced disconnects.

The registry (``Keys.live_calls``) holds each call from set-up to teardown
on whatever node; ``Keys.live_answered`` holds the answered ones with the
vendor that answered. A disconnect is a request written to the node that
holds the call (``Keys.disconnects``): the portal never signals SIP itself,
so it works the same with one node or many. That node ends an answered call
with BYE both ways, and cancels one still setting up (CANCEL to the vendor,
its final answer to the caller, no other vendor tried); either way the CDR
records who asked.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter, defaultdict
from dataclasses import dataclass

import msgspec

from billing.models import Account
from callcore.contract import EndReason, Keys, encode_disconnect
from softswitch_portal.core.redis import Waiter, prefix, redis_client
from softswitch_portal.switching.models import MappingGateway, RoutingGateway

# How far back "CPS now" looks: the calls set up in these seconds that are still live, per second.
CPS_WINDOW_S = 5


def _client():
    return redis_client(Waiter.PAGE, name="live-calls")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def live_calls(answered=None):
    """Every live call: Call-ID -> registry entry; ``answered`` (a dict) is filled with Call-ID -> the kept
    answer as decoded JSON ([answer_ms, route, h_entry, h_id]). Raises RedisError."""
    keys = Keys(prefix())
    client = _client()
    try:
        if answered is None:
            raw, answers = client.hgetall(keys.live_calls), {}
        else:
            pipe = client.pipeline(transaction=False)
            pipe.hgetall(keys.live_calls)
            pipe.hgetall(keys.live_answered)
            raw, answers = pipe.execute()
    finally:
        client.close()
    calls = {}
    for call_id, entry in raw.items():
        try:
            decoded = msgspec.json.decode(entry)
        except (msgspec.DecodeError, UnicodeDecodeError):
            continue  # not ours to judge: the registry's owner cleans it
        if isinstance(decoded, dict):
            calls[call_id.decode(errors="replace")] = decoded
    if answered is not None:
        for call_id, value in answers.items():
            try:
                kept = msgspec.json.decode(value)
            except (msgspec.DecodeError, UnicodeDecodeError):
                continue
            if isinstance(kept, list) and kept and isinstance(kept[0], int):
                answered[call_id.decode(errors="replace")] = kept
    return calls


def answer_ms_of(kept) -> int | None:
    return kept[0] if kept else None


def _route_of(kept) -> list:
    # AnsweredCall.route is a RouteState array: [gateway_id, gateway_name, host, port, transport, caller, callee...]
    route = kept[1] if kept and len(kept) > 1 else None
    return route if isinstance(route, list) and len(route) > 6 else []


@dataclass
class Names:
    """Names of the ids the registry holds, one query per kind for the whole page."""

    accounts: dict
    mapping: dict
    routing: dict

    @classmethod
    def of(cls, calls):
        accounts, mapping, routing = set(), set(), set()
        for entry in calls.values():
            accounts.add(entry.get("account_id"))
            mapping.add(entry.get("mapping_gateway_id"))
            routing.update(entry.get("route_gateway_ids") or ())
        return cls(
            accounts=dict(Account.objects.filter(pk__in=_ids(accounts)).values_list("pk", "name")),
            mapping=dict(MappingGateway.objects.filter(pk__in=_ids(mapping)).values_list("pk", "name")),
            routing=dict(RoutingGateway.objects.filter(pk__in=_ids(routing)).values_list("pk", "name")),
        )


def _ids(values):
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]


def _when(ms):
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC) if isinstance(ms, int) else None


def call_rows(calls, answered, now, names=None):
    """One row per live call, the fields the page and the API show."""
    names = names or Names.of(calls)
    rows = []
    for call_id, entry in calls.items():
        kept = answered.get(call_id)
        answer_ms = answer_ms_of(kept)
        route = _route_of(kept)
        start_ms = entry.get("start_ms") if isinstance(entry.get("start_ms"), int) else None
        candidates = _ids(entry.get("route_gateway_ids") or ())
        if route:
            routing_id, routing_name = route[0], route[1]
        else:
            routing_id = candidates[0] if candidates else None
            routing_name = names.routing.get(routing_id, "")
        account_id, mapping_id = entry.get("account_id"), entry.get("mapping_gateway_id")
        rows.append(
            {
                "call_id": call_id,
                "node": str(entry.get("node") or ""),
                "state": "answered" if answer_ms else "setup",
                "caller": str(entry.get("caller_in", entry.get("caller", ""))),
                "callee": str(entry.get("callee_in", entry.get("callee", ""))),
                "callee_routed": str(entry.get("callee", "")),
                "callee_out": str(route[6]) if route else "",
                "caller_out": str(route[5]) if route else "",
                "source_ip": str(entry.get("source_ip") or ""),
                "account_id": account_id,
                "account": names.accounts.get(account_id, f"#{account_id}" if account_id else ""),
                "mapping_gateway_id": mapping_id,
                "mapping_gateway": names.mapping.get(mapping_id, f"#{mapping_id}" if mapping_id else ""),
                "phone_id": entry.get("phone_id"),
                "routing_gateway_id": routing_id,
                "routing_gateway": routing_name,
                "route_gateway_ids": candidates,
                "start": _when(start_ms),
                "start_ms": start_ms,
                "answer": _when(answer_ms),
                "answer_ms": answer_ms,
                # Talk time once answered; until then, how long it has been ringing.
                "duration_s": max(0, (now - (answer_ms or start_ms or now)) // 1000),
            }
        )
    return rows


def filter_rows(rows, *, text="", account=None, mapping_gateway=None, routing_gateway=None, node="", state=""):
    """The rows matching every filter given (``text``: part of a number, caller or callee, in or out)."""
    out = []
    for row in rows:
        if text and not any(text in row[k] for k in ("caller", "callee", "callee_routed", "callee_out", "caller_out")):
            continue
        if account is not None and row["account_id"] != account:
            continue
        if mapping_gateway is not None and row["mapping_gateway_id"] != mapping_gateway:
            continue
        if routing_gateway is not None and routing_gateway not in (
            [row["routing_gateway_id"]] if row["answer_ms"] else row["route_gateway_ids"]
        ):
            continue
        if node and row["node"] != node:
            continue
        if state and row["state"] != state:
            continue
        out.append(row)
    return out


def concurrency(rows, now, window_s=CPS_WINDOW_S):
    """Per routing gateway, mapping gateway and account: live calls, answered ones, and CPS now (the calls set
    up in the last ``window_s`` seconds that are still live, per second), busiest first."""
    since = now - window_s * 1000
    tables = {}
    for kind, id_key, name_key in (
        ("mapping", "mapping_gateway_id", "mapping_gateway"),
        ("routing", "routing_gateway_id", "routing_gateway"),
        ("account", "account_id", "account"),
    ):
        live, talking, recent, label = Counter(), Counter(), Counter(), {}
        for row in rows:
            ident = row[id_key]
            if ident is None:
                continue
            label[ident] = row[name_key]
            live[ident] += 1
            talking[ident] += 1 if row["answer_ms"] else 0
            recent[ident] += 1 if (row["start_ms"] or 0) > since else 0
        tables[kind] = [
            {
                "id": ident,
                "name": label[ident],
                "calls": count,
                "answered": talking[ident],
                "cps": round(recent[ident] / window_s, 1),
            }
            for ident, count in live.most_common()
        ]
    return tables


def nodes_of(rows):
    by_node = defaultdict(int)
    for row in rows:
        by_node[row["node"]] += 1
    return dict(sorted(by_node.items()))


class DisconnectError(Exception):
    """A call that cannot be ended on request; the message says why (shown to the operator, or a 4xx)."""


def request_disconnect(call_id: str, by: str, end_reason: str = EndReason.OPERATOR_DISCONNECT.code):
    """Ask the node holding ``call_id`` to end it (BYE both ways, ``end_reason``, ``by`` on its CDR); returns
    the node asked: an answered call is ended BYE both ways, one still setting up cancelled. DisconnectError
    when no live call has that id. Raises RedisError."""
    keys = Keys(prefix())
    client = _client()
    try:
        entry = client.hget(keys.live_calls, call_id)
        if entry is None:
            raise DisconnectError("No live call has that Call-ID: it has ended already.")
        try:
            node = str(msgspec.json.decode(entry).get("node") or "")
        except (msgspec.DecodeError, UnicodeDecodeError, AttributeError):
            node = ""
        if not node:
            raise DisconnectError("The live-call registry does not say which node holds the call.")
        client.rpush(keys.disconnects(node), encode_disconnect(call_id, end_reason, by))
        return node
    finally:
        client.close()
