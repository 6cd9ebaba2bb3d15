"""Render the Kamailio configuration and run Kamailio in the foreground.

    python -m callcore            # run (the README's run command and the tests start it so)
    python -m callcore --check    # render and let Kamailio validate the configuration, then exit

Settings come from the environment (SS_SIP_LISTEN, SS_SIP_PORT, SS_CHILDREN,
REDIS_URL, REDIS_PREFIX, CALLCORE_STATE_DIR, SS_NODE, ...), like the portal's.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from callcore import bans, decide, media, sipsyntax
from callcore.contract import HEARTBEAT_INTERVAL_S, SIGNING_KEY_ENV, SignatureError, signing_key

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODULE_PATHS = ("/usr/lib/x86_64-linux-gnu/kamailio/modules", "/usr/lib/aarch64-linux-gnu/kamailio/modules",
                "/usr/lib/kamailio/modules")  # fmt: skip


def env(name, default):
    return os.environ.get(name) or default


def whole_number(name: str, default: int, low: int, high: int | None = None) -> int:
    """A numeric setting, or a clear exit naming it: a bad figure would otherwise reach Kamailio's
    configuration and fail there with a parse error far from its cause, or mean something else
    (a ban of 0 seconds is a ban that never expires)."""
    value = env(name, str(default)).strip()
    if not value.isdigit() or int(value) < low or (high is not None and int(value) > high):
        bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise SystemExit(f"callcore: {name} must be a whole number {bounds} (not {value!r})")
    return int(value)


def keepalive_seconds() -> int:
    seconds = whole_number("SS_DIALOG_KEEPALIVE_SECONDS", 30, 0)
    if 0 < seconds < 30:
        raise SystemExit("callcore: SS_DIALOG_KEEPALIVE_SECONDS must be 0 (off) or at least 30 (Kamailio's least)")
    return seconds


# Kamailio's shared memory by default: a quarter of the machine's memory, within these bounds (MB).
SHM_MB_BOUNDS = (512, 4096)


def shm_mb() -> int:
    """Kamailio's shared memory in MB: SS_SHM_MB, or a quarter of the machine's memory within SHM_MB_BOUNDS.

    Transactions and dialogs live there, and when it runs out Kamailio refuses new calls (500). A
    held call takes about 4 kB, and the transactions of call attempts about 150 kB per call per
    second (bench/callcore_cps.py), so 1000 CPS of 2-minute calls need about 0.5 GB + 0.15 GB: the
    old fixed 512 MB ran out below the switch's own target. Pages of the mapping that no call ever
    touched cost the machine nothing, so a generous size is free until it is used.
    """
    if os.environ.get("SS_SHM_MB", "").strip():
        return whole_number("SS_SHM_MB", 0, 64)
    machine_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return max(SHM_MB_BOUNDS[0], min(SHM_MB_BOUNDS[1], machine_mb // 4))


# pike keeps its limit and its counts in 16 bits: SS_FLOOD_REQUESTS_PER_2S=10000000 was taken as
# 38528 (10000000 mod 65536), and a figure of 65536 would be 0, which bans every source.
PIKE_MAX_DENSITY = 65535


def check_worker_settings() -> None:
    """Settings kemi.py reads in every Kamailio process: a bad one would fail each process's start with
    a Python traceback in Kamailio's log, so they are checked here, before Kamailio runs."""
    whole_number("SS_DEFAULT_MAX_DURATION", decide.DEFAULT_MAX_DURATION_S, 1)
    whole_number("SS_RING_TIMEOUT_SECONDS", 120, 1)
    poll = env("SS_SNAPSHOT_POLL_SECONDS", "1").strip()
    try:
        valid = 0 < float(poll) <= 3600
    except ValueError:
        valid = False
    if not valid:
        raise SystemExit(f"callcore: SS_SNAPSHOT_POLL_SECONDS must be a number of seconds above 0 (not {poll!r})")
    try:
        bans.parse_networks(env("SS_BAN_ALLOW_NETWORKS", ""))
    except ValueError as exc:
        raise SystemExit(f"callcore: {exc}") from None
    # Without the key every snapshot is refused: better a clear stop than a switch that routes nothing.
    try:
        signing_key(os.environ.get(SIGNING_KEY_ENV))
    except SignatureError as exc:
        raise SystemExit(f"callcore: {exc} (the portal's; `make run` keeps it in the local env file)") from exc


# Prometheus metrics of the node (Kamailio's xhttp_prom: counters in shared memory, every process adding to the
# same ones), served on a TCP port of their own; histogram buckets of the set-up's Redis round trip, in seconds.
RTT_BUCKETS = "0.0002:0.0005:0.001:0.002:0.005:0.01:0.025:0.05:0.1:0.25"
METRIC_DECLARATIONS = (
    ("prom_counter", "name=ss_calls_routed_total;"),
    ("prom_counter", "name=ss_calls_answered_total;"),
    ("prom_counter", "name=ss_calls_refused_total; label=reason"),
    ("prom_counter", "name=ss_calls_ended_total; label=reason"),
    ("prom_gauge", "name=ss_live_calls;"),
    ("prom_gauge", "name=ss_cps;"),
    ("prom_histogram", f"name=ss_redis_rtt_seconds; buckets={RTT_BUCKETS}"),
    ("prom_gauge", "name=ss_cdr_spool_bytes;"),
    ("prom_gauge", "name=ss_snapshot_version;"),
    ("prom_gauge", "name=ss_snapshot_age_seconds;"),
    ("prom_gauge", "name=ss_bans;"),
)


def metrics_settings(sip_port: int) -> dict:
    """The configuration's metrics blocks: SS_METRICS_PORT (the SIP port + 4000 unless set; 0: none) on
    SS_METRICS_LISTEN (127.0.0.1)."""
    port = whole_number("SS_METRICS_PORT", sip_port + 4000 if sip_port + 4000 <= 65535 else 0, 0, 65535)
    if not port:
        return {
            "metrics_port": 0,
            "metrics_listen": "",
            "metrics_modules": "",
            "metrics_guard": "",
            "metrics_preroute": "",
            "metrics_routes": "",
        }
    address = env("SS_METRICS_LISTEN", "127.0.0.1")
    declarations = "\n".join(f'modparam("xhttp_prom", "{kind}", "{spec}")' for kind, spec in METRIC_DECLARATIONS)
    return {
        "metrics_port": port,
        # Prometheus sends GET without a Content-Length.
        "metrics_listen": f"listen=tcp:{address}:{port}\ntcp_accept_no_cl=yes",
        "metrics_modules": f"""loadmodule "xhttp.so"
loadmodule "xhttp_prom.so"
modparam("xhttp_prom", "xhttp_prom_beginning", "")
modparam("xhttp_prom", "xhttp_prom_timeout", 0)
{declarations}
modparam("rtimer", "timer", "name=ss_metrics;interval=1;mode=1;")
modparam("rtimer", "exec", "timer=ss_metrics;route=SS_METRICS")""",
        # SIP sent to the metrics port is not served.
        "metrics_guard": f"if ($Rp == {port}) {{\n        exit;\n    }}",
        # HTTP to it has no Call-ID: pre-routing would drop it before xhttp sees it.
        "metrics_preroute": f"if ($Rp == {port}) {{\n        return;\n    }}",
        "metrics_routes": f"""route[SS_METRICS] {{
    python_exec("ksr_metrics_timer");
}}

# HTTP on any TCP socket comes here: /metrics is served on the metrics port only.
event_route[xhttp:request] {{
    if ($Rp != {port} || !prom_check_uri()) {{
        xhttp_reply("403", "Forbidden", "text/plain", "metrics are served at /metrics on port {port}\n");
        exit;
    }}
    prom_dispatch();
}}""",
    }


def settings_from_env() -> dict:
    check_worker_settings()
    keepalive = keepalive_seconds()
    state_dir = Path(env("CALLCORE_STATE_DIR", str(ROOT / "var"))).resolve()
    listen_ips = env("SS_SIP_LISTEN", "127.0.0.1").split(",")
    port = whole_number("SS_SIP_PORT", 5060, 1, 65535)
    transports = env("SS_SIP_TRANSPORTS", "udp,tcp").split(",")
    listen = "\n".join(f"listen={t}:{ip}:{port}" for ip in listen_ips for t in transports)
    return {
        "debug": env("SS_KAMAILIO_DEBUG", "1"),
        "children": whole_number("SS_CHILDREN", 4, 1, 256),
        "tcp_children": whole_number("SS_TCP_CHILDREN", 2, 1, 256),
        "listen": listen,
        "port": port,
        "advertised_ip": env("SS_ADVERTISED_IP", listen_ips[0]),
        "module_path": env("SS_KAMAILIO_MODULES", next((p for p in MODULE_PATHS if os.path.isdir(p)), MODULE_PATHS[0])),
        "run_dir": str(state_dir / "run"),
        "state_dir": str(state_dir),
        "fr_inv_timer_ms": whole_number("SS_DEFAULT_INVITE_TIMEOUT", 8, 1, 300) * 1000,
        "pike_density": whole_number("SS_FLOOD_REQUESTS_PER_2S", 400, 1, PIKE_MAX_DENSITY),
        "ban_seconds": whole_number("SS_FLOOD_BAN_SECONDS", 300, 1),
        "topoh_key": env("SS_TOPOH_KEY", secrets.token_hex(8)),
        # In-dialog OPTIONS to both sides of an answered call every so many seconds (0: none; Kamailio's
        # least is 30): a side that no longer answers (408, or 481) gets the call ended, BYE both ways.
        "keepalive_seconds": keepalive,
        "keepalive_step": 1 if keepalive else 0,  # the module's check, every second: a list head
        "keepalive_failures": whole_number("SS_DIALOG_KEEPALIVE_FAILURES", 2, 1),
        "kemi_script": str(HERE / "kemi.py"),
        "rtpengine_ng": media.NG_ADDRESS,  # the media proxy's control address (scripts/rtpengine.sh)
        # In-dialog offers and answers (route IN_DIALOG_MEDIA) are rewritten as kemi.py rewrites the first ones.
        "media_offer_flags": media.OFFER_FLAGS,
        "media_answer_flags": media.ANSWER_FLAGS,
        "heartbeat_seconds": HEARTBEAT_INTERVAL_S,
        "shm_mb": shm_mb(),
        "sanity_checks": sipsyntax.SANITY_CHECKS,
        "sanity_uris": sipsyntax.SANITY_URIS,
        "schemes_regex": "^(" + "|".join(sorted(sipsyntax.SUPPORTED_SCHEMES)) + ")$",
        **metrics_settings(port),
    }


def render(values: dict) -> str:
    text = (HERE / "kamailio.cfg.tmpl").read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", str(value))
    if "{{" in text:
        raise SystemExit("callcore: unfilled placeholder in kamailio.cfg.tmpl: " + text[text.index("{{") :][:40])
    return text


def kamailio_binary() -> str:
    found = shutil.which("kamailio") or ("/usr/sbin/kamailio" if os.path.exists("/usr/sbin/kamailio") else None)
    if not found:
        raise SystemExit("callcore: kamailio is not installed (apt-get install kamailio kamailio-python3-modules)")
    return found


def child_environment(values: dict) -> dict:
    """The embedded interpreter finds our packages (redis) through PYTHONPATH: the venv's site-packages."""
    environment = dict(os.environ)
    site = [p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix)]
    environment["PYTHONPATH"] = os.pathsep.join([str(ROOT), *site, environment.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    environment["CALLCORE_STATE_DIR"] = values["state_dir"]
    environment["SS_METRICS_PORT"] = str(values["metrics_port"])  # kemi.py counts only when they are served
    environment.setdefault("SS_NODE", os.uname().nodename)
    return environment


def release_lost_calls(environment: dict) -> None:
    """Before Kamailio starts: end the calls this node had up when it last stopped (see LiveState.release_node)."""
    import redis

    from callcore.live import LiveState

    node = environment["SS_NODE"]
    live = LiveState(environment.get("REDIS_URL", "redis://127.0.0.1:6379/0"), environment.get("REDIS_PREFIX", "ss"))
    try:
        released = live.release_node(node)
    except redis.RedisError as exc:
        # Not fatal: the switch must start without Redis too; the calls' slots then lapse at their expiry.
        print(f"callcore: could not release the calls node {node} lost: {exc!r}", file=sys.stderr)
        return
    if released:
        print(f"callcore: node {node} lost {released} live call(s) when it last stopped: released, CDRs written",
              file=sys.stderr)  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m callcore", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="validate the rendered configuration and exit")
    parser.add_argument("--print", action="store_true", help="print the rendered configuration and exit")
    args = parser.parse_args(argv)

    values = settings_from_env()
    text = render(values)
    if args.print:
        print(text)
        return 0
    run_dir = Path(values["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = run_dir / "kamailio.cfg"
    cfg.write_text(text)
    binary = kamailio_binary()
    environment = child_environment(values)
    if args.check:
        result = subprocess.run(
            [binary, "-c", "-f", str(cfg), "-m", str(values["shm_mb"]), "-x", env("SS_MEM_MANAGER", "tlsf")],
            env=environment, capture_output=True, text=True,
        )  # fmt: skip
        sys.stderr.write(result.stderr[-4000:])
        print("callcore: configuration is valid" if result.returncode == 0 else "callcore: configuration is INVALID")
        return result.returncode
    release_lost_calls(environment)
    # -DD: stay in the foreground but keep Kamailio's worker processes; -E: log to stderr.
    # tlsf: Kamailio's default allocator cost about a third of a worker's CPU in bench/callcore_cps.py;
    # 64 MB of shared memory (Kamailio's default) ran out near 300-400 calls/s with 1 s calls.
    print(f"callcore: Kamailio's shared memory {values['shm_mb']} MB (SS_SHM_MB; a held call takes about 4 kB)",
          file=sys.stderr)  # fmt: skip
    command = [binary, "-DD", "-E", "-f", str(cfg), "-P", str(run_dir / "kamailio.pid"), "-Y", str(run_dir),
               "-m", str(values["shm_mb"]), "-x", env("SS_MEM_MANAGER", "tlsf")]  # fmt: skip
    process = subprocess.Popen(command, env=environment)

    def forward(signum, frame):
        process.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return process.wait()


if __name__ == "__main__":
    sys.exit(main())
