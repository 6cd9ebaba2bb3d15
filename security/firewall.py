"""The firewall export: the call core's bans as a named nftables set, so the kernel drops their packets.

One nftables table of the switch's own (``inet`` family: IPv4 and IPv6 in one)
holds two sets, one per address family, whose elements time out with the
bans, and an input chain dropping their sources. Each run rewrites the sets
from the bans in Redis in one atomic transaction (``nft -j -f -``: the JSON
interface of libnftables), so a release or a lapse leaves the sets at the next
run and nothing else on the host's firewall is touched.

Off unless ``FIREWALL_EXPORT`` is set (it needs CAP_NET_ADMIN); the worker runs
it every few seconds (security.tasks.export_firewall).
"""

from __future__ import annotations

import ipaddress
import json
import math
import shutil
import subprocess
import time
from collections.abc import Iterable, Sequence

from callcore.contract import BanRecord

SET4, SET6 = "banned4", "banned6"


class FirewallError(RuntimeError):
    """nft refused the export; the message is nft's own."""


def ruleset(bans: Iterable[BanRecord], table: str, now_ms: int | None = None) -> dict:
    """The JSON commands that make ``table`` and set its sets to ``bans``, each timing out with its ban."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    elements: dict[str, list] = {SET4: [], SET6: []}
    for ban in bans:
        seconds = math.ceil((ban.expires_ms - now_ms) / 1000)
        if seconds <= 0:
            continue
        address = ipaddress.ip_address(ban.ip)
        elements[SET4 if address.version == 4 else SET6].append({"elem": {"val": str(address), "timeout": seconds}})
    base = {"family": "inet", "table": table}
    commands = [
        {"add": {"table": {"family": "inet", "name": table}}},
        {"add": {"set": {**base, "name": SET4, "type": "ipv4_addr", "flags": ["timeout"]}}},
        {"add": {"set": {**base, "name": SET6, "type": "ipv6_addr", "flags": ["timeout"]}}},
        # Before the host's own filters (priority filter - 10): a banned source is dropped whatever they allow.
        {
            "add": {
                "chain": {**base, "name": "input", "type": "filter", "hook": "input", "prio": -10, "policy": "accept"}
            }
        },  # fmt: skip
        {"flush": {"chain": {**base, "name": "input"}}},
    ]
    for protocol, name in (("ip", SET4), ("ip6", SET6)):
        match = {
            "match": {"op": "==", "left": {"payload": {"protocol": protocol, "field": "saddr"}}, "right": f"@{name}"}
        }
        commands.append({"add": {"rule": {**base, "chain": "input", "expr": [match, {"drop": None}]}}})
    for name, elems in elements.items():
        commands.append({"flush": {"set": {**base, "name": name}}})
        if elems:
            commands.append({"add": {"element": {**base, "name": name, "elem": elems}}})
    return {"nftables": [{"metainfo": {"json_schema_version": 1}}, *commands]}


def export(bans: Iterable[BanRecord], table: str = "softswitch", command: Sequence[str] = ()) -> int:
    """Apply ``ruleset(bans)`` through nft (``command``: what to run it under, e.g. a network namespace's
    ``ip netns exec NAME``). Returns the number of addresses in the sets; FirewallError when nft refuses."""
    rules = ruleset(bans, table)
    nft = shutil.which("nft") or "/usr/sbin/nft"
    result = subprocess.run(
        [*command, nft, "-j", "-f", "-"], input=json.dumps(rules), capture_output=True, text=True, timeout=30
    )
    if result.returncode != 0:
        raise FirewallError(f"nft refused the ban export: {result.stderr.strip()[:2000]}")
    return sum(len(c["add"]["element"]["elem"]) for c in rules["nftables"] if "element" in c.get("add", {}))
