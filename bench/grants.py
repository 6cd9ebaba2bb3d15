"""The cost of quota-grant renewals: CPU per renewal in the call core's Python and in Redis.

Sets up ``--calls`` anti-overdraft calls (spread over ``--accounts`` accounts) through the live state's own
set-up script, indexes each as answered (``LiveState.grant_start``), then runs the grant timer's work
(``kamailio.renew_grants`` without Kamailio: the due calls in one round trip, then one renewal round trip
each) over every call ``--rounds`` times, every call due at once. Reports, per renewal:

- the call core's CPU (this process's, the round trips' client side included), and the pure part alone
  (decode the grant, price the next one, encode it);
- Redis's CPU (its used_cpu_user + used_cpu_sys over the renewals: run it on a quiet Redis) and the
  renewal script's own time from INFO commandstats.

    .venv/bin/python bench/grants.py --calls 2000 --rounds 5

A node with 2,000 held calls renewing every 60 s makes 33 renewals a second: multiply.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from callcore import contract  # noqa: E402
from callcore import decide as dec  # noqa: E402
from callcore.live import RENEWED, LiveState, RouteLimit, SetupRequest  # noqa: E402

RATE = contract.GrantRate("0.0000", "0.6000", 1, 1)


def redis_cpu(live) -> float:
    info = live.resp.execute("INFO", "cpu").decode()
    values = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    return float(values["used_cpu_user"]) + float(values["used_cpu_sys"])


def script_usec(live) -> tuple[int, int]:
    """(calls, usec) of EVALSHA so far: every script, the renewal's among them."""
    info = live.resp.execute("INFO", "commandstats").decode()
    for line in info.splitlines():
        if line.startswith("cmdstat_evalsha:"):
            fields = dict(part.split("=") for part in line.split(":", 1)[1].split(","))
            return int(fields["calls"]), int(fields["usec"])
    return 0, 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()

    prefix = f"bench-grants-{uuid.uuid4().hex[:8]}"
    live = LiveState(args.redis_url, prefix, timeout=5)
    index = live.keys.grants("bench")
    now = int(time.time() * 1000)
    grants = {}
    try:
        for n in range(args.calls):
            call_id, account = f"call-{n}", 1 + n % args.accounts
            req = SetupRequest(
                call_id=call_id, mapping_gateway_id=None, account_id=account, caller="1", callee="44",
                expiry_ms=now + 3_600_000, routes=[RouteLimit(1, 0, 0)], registry={"account_id": account},
                check_balance=True, snapshot_balance=Decimal("1000000"), reservation=Decimal("0.60"),
            )  # fmt: skip
            assert live.setup(req, now_ms=now).status.name == "OK"
            grant = dec.Grant(account, 1, n, now, now + 60_000, 0, RATE, 60, 2, 0, 10_000_000_000)
            live.grant_start(index, call_id, now, dec.encode_grant(grant))  # due at once
            grants[call_id] = grant

        # The pure part alone: what every renewal costs in Python before its round trip.
        raws = [dec.encode_grant(g) for g in grants.values()]
        started = time.process_time()
        for _ in range(args.rounds):
            for raw in raws:
                renewed, _units = dec.renewed_grant(dec.decode_grant(raw), now)
                dec.encode_grant(renewed)
        pure_us = (time.process_time() - started) / (args.rounds * len(raws)) * 1e6

        renewals = 0
        cpu0, redis0, (calls0, usec0) = time.process_time(), redis_cpu(live), script_usec(live)
        for _ in range(args.rounds):
            # kemi.kamailio.renew_grants, every call due (each round moves every due time on: look far ahead).
            for call_id, raw in live.grants_due(index, now + 10**12, most=args.calls):
                grant = dec.decode_grant(raw)
                renewed, units = dec.renewed_grant(grant, now)
                answer = live.renew_grant(
                    index, call_id, grant.account_id, units, grant.credit_units, grant.balance_units,
                    renewed.due_ms, dec.encode_grant(renewed),
                )  # fmt: skip
                assert answer == RENEWED, answer
                renewals += 1
        cpu_us = (time.process_time() - cpu0) / renewals * 1e6
        redis_us = (redis_cpu(live) - redis0) / renewals * 1e6
        calls1, usec1 = script_usec(live)
        script_us = (usec1 - usec0) / max(calls1 - calls0, 1)
        print(f"{renewals} renewals of {args.calls} calls on {args.accounts} accounts")
        print(f"call core (Python, client side included): {cpu_us:.1f} us CPU per renewal")
        print(f"  of which decode + price + encode:         {pure_us:.1f} us")
        print(f"Redis: {redis_us:.1f} us CPU per renewal (process), the script {script_us:.1f} us (commandstats)")
        print(f"2,000 held calls renewing every 60 s: {2000 / 60 * cpu_us / 1e4:.3f}% of a core in the call core, "
              f"{2000 / 60 * redis_us / 1e4:.3f}% in Redis")  # fmt: skip
    finally:
        keys = list(live.resp.execute("KEYS", f"{prefix}:*") or [])
        for start in range(0, len(keys), 500):
            live.resp.execute("DEL", *keys[start : start + 500])


if __name__ == "__main__":
    main()
