"""Media proxy capacity: the CPU of concurrent RTP streams through rtpengine against the same streams sent directly.

Run: .venv/bin/python bench/media.py [--streams 100 200 400] [--talk-seconds 20] [--rounds 2] [--rate 100]
     [--player stream|pcap]           (a step takes about the talk time + 20 s; the defaults about 10 minutes)

For each N of --streams, N concurrent calls go from a SIPp customer through the call core (`python -m callcore`,
full policy as bench/callcore_cps.py configures it) to a SIPp vendor, each call carrying G.711 A-law RTP both
ways for --talk-seconds: once with the routing gateway's media_proxy "always" (the SDP rewritten, every packet
relayed by rtpengine, started by scripts/rtpengine.sh as the Procfile runs it) and once "off" (the peers send to
each other), the two modes alternating, their order swapped each round. Over the steady window, from every call
up to before the first one ends, it reads the CPU (utime + stime from /proc/<pid>/stat) of rtpengine, of the call
core's Kamailio processes and of both SIPp, and the whole machine's from /proc/stat. rtpengine's own counters
(its NG "statistics": packets relayed, sessions) show the media went through it in the proxied steps and not in
the direct ones, which are failed otherwise; the machine's UDP counters show the packets arrived either way.

A call carries two one-way RTP streams (customer -> vendor, vendor -> customer), 50 packets/s each; the "per
stream" figures are per one-way stream. The audio is the sample SIPp ships (/usr/share/sip-tester/g711a.pcap),
looped to the talk time. --player stream (the default) plays it with SIPp's rtp_stream: plain UDP sockets, a
thread per 20 calls. --player pcap plays it with play_pcap_audio: a thread per call sending through a raw socket,
and every raw UDP socket bound to an address gets a copy of every UDP datagram to that address, so on one host
each packet costs its sender a copy per call playing (measured: a loopback send took 2.3 us with none, 10.8 with
400, 23 with 800): past 100 calls that measures SIPp's raw sockets, charged to whoever sends (rtpengine too).

Ports (all below the kernel's ephemeral range): the switch on --port-base (17060), the vendor +10, rtpengine's
control port +30, the SIPp media sockets 24000 (customer) and 26000 (vendor), rtpengine's relay ports
20000-23999. The configuration lives in a scratch database (softswitch_bench_media, or $BENCH_MEDIA_DB_NAME,
created and migrated if missing) and Redis keys under "ssbench-media" (or $BENCH_MEDIA_PREFIX), deleted at the
end; every process it starts is stopped at the end, also on Ctrl-C or errors. Raw results go to
bench/out/media-<time>.json, SIPp's and the switch's files to bench/out/media-<time>/. Run it alone: SIPp, the
switch and rtpengine on the same two cores are what it measures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

# callcore_cps reads these at import: the scratch database and the Redis prefix are this benchmark's own.
os.environ["BENCH_CPS_DB_NAME"] = os.environ.get("BENCH_MEDIA_DB_NAME", "softswitch_bench_media")
os.environ["BENCH_CPS_PREFIX"] = os.environ.get("BENCH_MEDIA_PREFIX", "ssbench-media")

import callcore_cps as cps  # noqa: E402 - bench/ is the script's folder, first on sys.path
import rtpload  # noqa: E402

ROOT = cps.ROOT
BENCH = cps.BENCH
CHILDREN = cps.CHILDREN
CLK_TCK = os.sysconf("SC_CLK_TCK")
SAMPLE_PCAP = Path("/usr/share/sip-tester/g711a.pcap")

PORT_BASE = 17060  # away from the e2e suites' (15060) and bench/callcore_cps.py's (16060)
CALLER_MEDIA = 24000
VENDOR_MEDIA = 26000
RTP_PORTS = (20000, 23999)  # rtpengine's: 4 a call (RTP and RTCP, each side)
STREAM_PTIME_MS = 20  # SIPp's rtp_stream sends payload type 8 as 20 ms packets of 160 bytes
RELAYED_SHARE = 0.8  # of the packets the proxied calls sent, for the step to count as relayed


def log(message=""):
    print(message, flush=True)


# ---------------------------------------------------------------------------
# rtpengine


class MediaProxy:
    """rtpengine as scripts/rtpengine.sh starts it, on the benchmark's control port and relay ports."""

    def __init__(self, out: Path, ng_port: int, ports: tuple[int, int]):
        from callcore import media

        self.out = out
        self.address = f"127.0.0.1:{ng_port}"
        self.ports = ports
        self.log_path = out / "rtpengine.log"
        self.process = None
        self.client = media.NgClient(self.address, timeout=2.0)
        self.error = media.MediaProxyError

    def start(self):
        env = dict(os.environ, SS_RTPENGINE_NG=self.address, SS_RTP_INTERFACE="127.0.0.1",
                   SS_RTP_PORT_MIN=str(self.ports[0]), SS_RTP_PORT_MAX=str(self.ports[1]))  # fmt: skip
        # The script's own pid file is the switch's (var/); a later --pidfile wins.
        self.process = CHILDREN.start(
            [str(ROOT / "scripts" / "rtpengine.sh"), f"--pidfile={self.out / 'rtpengine.pid'}"], cwd=ROOT, env=env,
            stdout=self.log_path.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.process.poll() is None:
            with contextlib.suppress(self.error):
                self.client.command("ping")
                return self
            time.sleep(0.2)
        tail = self.log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"rtpengine did not answer on {self.address}:\n{tail}")

    def stats(self) -> dict:
        return rtpload.relay_figures(self.client.command("statistics"))

    def wait_idle(self, timeout=20.0) -> dict:
        """Its statistics once no session is left (a call's packets reach the totals when it is deleted)."""
        deadline = time.monotonic() + timeout
        stats = self.stats()
        while stats["sessions"] and time.monotonic() < deadline:
            time.sleep(0.5)
            stats = self.stats()
        return stats

    def stop(self):
        self.client.close()
        if self.process is not None:
            CHILDREN.stop(self.process)
            self.process = None


# ---------------------------------------------------------------------------
# The SIPp peers


def media_files(out: Path, talk_s: int) -> dict:
    """The audio each call plays, from the sample SIPp ships: raw A-law for rtp_stream, a pcap of the whole talk
    (and a little more: the vendor plays until the customer's BYE) for play_pcap_audio."""
    if not SAMPLE_PCAP.exists():
        raise SystemExit(f"{SAMPLE_PCAP} is missing: the sip-tester package ships it (scripts/setup.sh --test)")
    payload_type, ptime_ms, payloads = rtpload.rtp_payloads(SAMPLE_PCAP.read_bytes())
    if payload_type != 8:
        raise SystemExit(f"{SAMPLE_PCAP}: payload type {payload_type}, expected 8 (G.711 A-law)")
    alaw = out / "talk.alaw"
    alaw.write_bytes(b"".join(payloads))
    pcap = out / "talk.pcap"
    pcap.write_bytes(rtpload.rtp_pcap(payload_type, ptime_ms, payloads, talk_s + 2))
    return {
        "stream": {"play": f'rtp_stream="{alaw},-1,8"', "port": "[media_port]", "ptime_ms": STREAM_PTIME_MS},
        "pcap": {"play": f'play_pcap_audio="{pcap}"', "port": "[auto_media_port]", "ptime_ms": ptime_ms},
    }


def render(step_dir: Path, scenario: str, player: dict) -> str:
    text = (BENCH / "scenarios" / f"{scenario}.xml").read_text()
    (step_dir / f"{scenario}.xml").write_text(
        text.replace("@MEDIA_PORT@", player["port"]).replace("@PLAY@", player["play"])
    )
    return f"{scenario}.xml"


def start_vendor(step_dir: Path, port: int, player: dict, timeout_s: int):
    if not cps.port_free(port):
        raise RuntimeError(f"vendor port {port} is busy")
    scenario = render(step_dir, "uas_media", player)
    vendor = CHILDREN.start(
        ["sipp", "-sf", scenario, "-i", "127.0.0.1", "-p", str(port), "-mp", str(VENDOR_MEDIA), "-nostdin",
         "-timeout", f"{timeout_s}s", "-buff_size", str(cps.SIPP_BUFFER),
         "-trace_stat", "-stf", "vendor_stat.csv", "-fd", "5", "-trace_err", "-error_file", "vendor_err.log",
         "-max_log_size", "5000000"],
        cwd=step_dir, stdout=subprocess.DEVNULL, stderr=open(step_dir / "vendor.stderr", "w"),  # noqa: SIM115
    )  # fmt: skip
    deadline = time.monotonic() + 5
    while cps.port_free(port) and time.monotonic() < deadline and vendor.poll() is None:
        time.sleep(0.05)
    if vendor.poll() is not None:
        raise RuntimeError(f"SIPp vendor exited: {(step_dir / 'vendor.stderr').read_text()[-500:]}")
    return vendor


def start_caller(step_dir: Path, switch_port: int, player: dict, calls: int, rate: int, talk_s: int, timeout_s: int):
    scenario = render(step_dir, "uac_media", player)
    return CHILDREN.start(
        ["sipp", f"127.0.0.1:{switch_port}", "-sf", scenario, "-i", "127.0.0.1", "-p", str(cps.free_port()),
         "-mp", str(CALLER_MEDIA), "-s", cps.CALLEE_PREFIX, "-key", "caller", cps.CALLER_PREFIX,
         "-r", str(rate), "-rp", "1000", "-m", str(calls), "-l", str(calls), "-d", str(talk_s * 1000),
         "-nostdin", "-recv_timeout", "10000", "-timeout", f"{timeout_s}s", "-buff_size", str(cps.SIPP_BUFFER),
         "-trace_stat", "-stf", "caller_stat.csv", "-fd", "1", "-trace_err", "-error_file", "caller_err.log",
         "-max_log_size", "5000000"],
        cwd=step_dir, stdout=subprocess.DEVNULL, stderr=open(step_dir / "caller.stderr", "w"),  # noqa: SIM115
    )  # fmt: skip


# ---------------------------------------------------------------------------
# /proc readings


def ticks_of(pids) -> dict[int, int]:
    ticks = {}
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            ticks[pid] = rtpload.pid_cpu_ticks(Path(f"/proc/{pid}/stat").read_text())
    return ticks


def reading(groups: dict[str, list[int]]) -> dict:
    return {
        "t": time.monotonic(),
        "machine": rtpload.machine_jiffies(Path("/proc/stat").read_text()),
        "udp": rtpload.udp_counters(Path("/proc/net/snmp").read_text()),
        "groups": {name: ticks_of(pids) for name, pids in groups.items()},
    }


def window_cpu(before: dict, after: dict) -> dict:
    seconds = after["t"] - before["t"]
    cpu = {"window_s": round(seconds, 2)}
    for name in before["groups"]:
        ticks = rtpload.group_ticks(before["groups"][name], after["groups"][name])
        cpu[f"{name}_ms_s"] = round(rtpload.ms_per_s(ticks, seconds, CLK_TCK), 1)
    cpu["machine_ms_s"] = round(rtpload.machine_ms_per_s(before["machine"], after["machine"], cps.NCPU), 1)
    cpu["ours_ms_s"] = round(sum(cpu[f"{name}_ms_s"] for name in before["groups"]), 1)
    cpu["other_ms_s"] = round(cpu["machine_ms_s"] - cpu["ours_ms_s"], 1)
    cpu["udp_in_per_s"] = round(rtpload.udp_arrivals(before["udp"], after["udp"]) / seconds) if seconds else 0
    return cpu


# ---------------------------------------------------------------------------
# One step: N calls in one mode


def set_route_media(mode: str):
    """The bench vendor's routing gateway media_proxy, published; the switch polls the snapshot every second."""
    from softswitch_portal.core import publisher
    from softswitch_portal.switching.models import RoutingGateway

    if RoutingGateway.objects.filter(name="bench vendor").update(media_proxy=mode) != 1:
        raise SystemExit("the bench vendor's routing gateway is missing from the scratch database")
    if publisher.publish(force=True) is None:
        raise SystemExit("the snapshot could not be published")
    time.sleep(2.5)


def run_step(switch, proxy: MediaProxy, redis_probe, out: Path, label: str, calls: int, mode: str, player: dict,
             talk_s: int, rate: int) -> dict:  # fmt: skip
    step_dir = out / label
    step_dir.mkdir(parents=True, exist_ok=True)
    set_route_media("always" if mode == "proxy" else "off")
    redis_probe.reset_calls()
    quiet = cps.wait_quiet()
    relay0 = proxy.stats()
    placing_s = calls / rate
    timeout_s = int(placing_s + talk_s + 60)
    vendor = start_vendor(step_dir, switch.port + 10, player, timeout_s + 30)
    caller = start_caller(step_dir, switch.port, player, calls, rate, talk_s, timeout_s)
    t0 = time.monotonic()
    # The window: from every call up (and a second for its first packets) to before the first call ends.
    window_end = t0 + talk_s - 1.5
    up = 0
    while time.monotonic() < t0 + placing_s + 10 and caller.poll() is None:
        up = cps.active_dialogs(switch.ctl)
        if up >= calls:
            break
        time.sleep(0.5)
    window_start = time.monotonic() + 1.0
    if window_end - window_start < 3.0:
        CHILDREN.stop(caller)
        CHILDREN.stop(vendor)
        raise SystemExit(f"{label}: {up} of {calls} calls up after {time.monotonic() - t0:.1f} s leaves no steady "
                         f"window in a {talk_s} s talk: raise --talk-seconds or --rate")  # fmt: skip
    time.sleep(window_start - time.monotonic())
    groups = {"rtpengine": [proxy.process.pid], "kamailio": switch.pids(), "sipp": [caller.pid, vendor.pid]}
    before = reading(groups)
    rates, sessions = [], []
    while time.monotonic() < window_end - 1.0:
        time.sleep(1.0)
        stats = proxy.stats()
        rates.append(stats["packet_rate"])
        sessions.append(stats["sessions"])
    after = reading(groups)
    calls_up = cps.active_dialogs(switch.ctl)
    cpu = window_cpu(before, after)
    with contextlib.suppress(subprocess.TimeoutExpired):
        caller.wait(timeout=timeout_s)
    CHILDREN.stop(caller)
    relay1 = proxy.wait_idle()
    deadline = time.monotonic() + 15
    result = {"label": label, "calls": calls, "mode": mode, "talk_s": talk_s, "rate": rate,
              "machine_busy_before": quiet}  # fmt: skip
    result.update(cps.caller_result(step_dir, rate, scenario="uac_media"))
    while redis_probe.cdr_count() < result["placed"] and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(2.5)  # the vendor's last calls finish their timewait
    CHILDREN.stop(vendor)
    expected = rtpload.packets_in(talk_s, player["ptime_ms"]) * 2 * result["successful"]
    relayed = relay1["relayed"] - relay0["relayed"]
    result.update(cpu)
    result.update({
        "calls_up": min(up, calls_up) if calls_up >= 0 else up,
        "relayed": relayed,
        "relayed_errors": relay1["relay_errors"] - relay0["relay_errors"],
        "sessions_managed": relay1["managed"] - relay0["managed"],
        "packet_rate": round(sum(rates) / len(rates)) if rates else 0,
        "sessions_in_window": max(sessions, default=0),
        "expected_packets": expected,
        "cdrs": redis_probe.cdr_count(),
    })  # fmt: skip
    result["media_check"] = rtpload.media_check(mode, relayed, result["sessions_managed"], result["successful"],
                                                expected, RELAYED_SHARE)  # fmt: skip
    return result


def print_step(s):
    log(f"  {s['calls']:>4} {s['mode']:<6} up {s['calls_up']:>4} ok {s['successful']:>4}/{s['placed']:<4} "
        f"relayed {s['relayed']:>8} ({s['packet_rate']:>6}/s)  CPU ms/s: rtpengine {s['rtpengine_ms_s']:>6.1f} "
        f"kamailio {s['kamailio_ms_s']:>5.1f} sipp {s['sipp_ms_s']:>6.1f} machine {s['machine_ms_s']:>6.1f} "
        f"(other {s['other_ms_s']:>6.1f})  UDP in {s['udp_in_per_s']}/s  {s['media_check']}")  # fmt: skip


def table(rows: list[dict], player: str, ptime_ms: int) -> list[str]:
    lines = [
        f"MEDIA PROXY CAPACITY ({player} player, {1000 // ptime_ms} packets/s per one-way stream, two one-way "
        f"streams per call; CPU over the steady window, ms per second: 1000 = one core)",
        "calls  mode    up   ok    RTP relayed  relayed/s  rtpengine  kamailio    sipp     sum  machine   other  media",
    ]
    for s in rows:
        lines.append(
            f"{s['calls']:>5}  {s['mode']:<6} {s['calls_up']:>4} {s['successful']:>4} {s['relayed']:>13,} "
            f"{s['packet_rate']:>10,} {s['rtpengine_ms_s']:>10.1f} {s['kamailio_ms_s']:>9.1f} {s['sipp_ms_s']:>7.1f} "
            f"{s['ours_ms_s']:>7.1f} {s['machine_ms_s']:>8.1f} {s['other_ms_s']:>7.1f}  {s['media_check']}"
        )
    lines.append("")
    lines.append(
        "per N, medians over the rounds: rtpengine's CPU proxying and idle (ms/s), per one-way stream and per call "
        "(proxying less idle, ms/s); proxy/direct for the sum of the processes and the machine (ms/s; medians, and "
        "each mode's step where other processes used the least)"
    )
    lines.append("calls  rounds  rtpengine proxy/idle  per stream  per call  sum proxy/direct  machine proxy/direct  "
                 "quietest proxy/direct")  # fmt: skip
    for d in rtpload.derived(rows):
        lines.append(
            f"{d['calls']:>5}  {d['rounds'][0]:>3}+{d['rounds'][1]:<3} {fmt(d['rtpengine_proxy'], 1):>12} / "
            f"{fmt(d['rtpengine_direct'], 1):<5} {fmt(d['rtpengine_per_stream'], 3):>11} "
            f"{fmt(d['rtpengine_per_call'], 3):>9} {fmt(d['ours_ratio'], 2):>17} "
            f"{fmt(d['machine_proxy'], 0):>10} / {fmt(d['machine_direct'], 0):<5} = {fmt(d['machine_ratio'], 2):<5}"
            + ("" if d["quiet_machine"] is None else "{:>9.0f} / {:<5.0f} = {:.2f}".format(*d["quiet_machine"]))
        )
    return lines


def fmt(value, digits):
    return "-" if value is None else f"{value:.{digits}f}"


# ---------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[100, 200, 400], metavar="N",
                        help="concurrent calls per step (each two one-way RTP streams)")  # fmt: skip
    parser.add_argument("--talk-seconds", type=int, default=20, help="each call's talk time (s)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every N in both modes, the order swapped")
    parser.add_argument("--rate", type=int, default=100, help="calls per second the calls are placed at")
    parser.add_argument("--player", choices=("stream", "pcap"), default="stream",
                        help="SIPp's rtp_stream (UDP sockets) or play_pcap_audio (a raw socket per call)")  # fmt: skip
    parser.add_argument("--children", type=int, default=4, help="the call core's SIP workers")
    parser.add_argument("--port-base", type=int, default=PORT_BASE, help="the switch's SIP port; vendor +10, "
                        "rtpengine's control port +30")  # fmt: skip
    parser.add_argument("--nice", type=int, default=-10,
                        help="niceness of the benchmark and everything it starts; 0 = unchanged")  # fmt: skip
    args = parser.parse_args()
    if min(args.streams) < 1 or args.rounds < 1 or args.rate < 1 or args.talk_seconds < 1:
        raise SystemExit("--streams, --rounds, --rate and --talk-seconds must be positive")
    if 4 * max(args.streams) > RTP_PORTS[1] - RTP_PORTS[0] + 1:
        raise SystemExit(f"rtpengine's {RTP_PORTS[0]}-{RTP_PORTS[1]} holds {(RTP_PORTS[1] - RTP_PORTS[0] + 1) // 4} "
                         f"calls at most")  # fmt: skip
    for tool in ("sipp", "kamcmd", "rtpengine"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed (scripts/setup.sh --test)")
    switch_port, vendor_port, ng_port = args.port_base, args.port_base + 10, args.port_base + 30
    for port in (switch_port, vendor_port, ng_port, CALLER_MEDIA, CALLER_MEDIA + 2, VENDOR_MEDIA, VENDOR_MEDIA + 2):
        if not cps.port_free(port):
            raise SystemExit(f"port {port} is busy (another benchmark running? --port-base moves the SIP ones)")
    # Two SIPp holding hundreds of calls, the switch's sockets, rtpengine's four ports a call.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(target, 65536)), hard))

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, cps.raise_interrupt)
    if args.nice:
        try:
            os.nice(args.nice - os.nice(0))
            CHILDREN.nice = args.nice
        except OSError as exc:
            log(f"could not change niceness to {args.nice}: {exc}")

    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = BENCH / "out" / f"media-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    json_path = BENCH / "out" / f"media-{stamp}.json"
    players = media_files(out, args.talk_seconds)
    player = players[args.player]

    import django

    cps.ensure_database()
    django.setup()
    from django.conf import settings

    redis_probe = cps.RedisProbe(settings.REDIS_URL)
    redis_probe.delete_prefix()
    results = {"started": stamp, "command": " ".join([Path(sys.executable).name, *sys.argv]),
               "settings": vars(args), "cpus": cps.NCPU, "steps": []}  # fmt: skip
    proxy = switch = None
    try:
        log(f"configuring {cps.BENCH_DB} and publishing the snapshot under {cps.PREFIX} ...")
        results["config"] = cps.configure(vendor_port)
        proxy = MediaProxy(out, ng_port, RTP_PORTS).start()
        log(f"rtpengine (pid {proxy.process.pid}) on {proxy.address}, relaying on {RTP_PORTS[0]}-{RTP_PORTS[1]}")
        switch = cps.Callcore(out / "callcore", switch_port, args.children, settings.REDIS_URL,
                              extra_env={"SS_RTPENGINE_NG": proxy.address}).start()  # fmt: skip
        log(f"callcore on {switch_port}, {args.children} SIP workers; vendor on {vendor_port}")

        # Each worker loads the snapshot and opens its sockets on its first call; and the path is checked once.
        warm = run_step(switch, proxy, redis_probe, out, "warm-up", 10, "proxy", player, 8, 10)
        print_step(warm)
        if warm["media_check"] != "through rtpengine":
            raise SystemExit(f"the warm-up's media did not go through rtpengine ({warm['media_check']}): see "
                             f"{(out / 'callcore' / 'kamailio.log').relative_to(ROOT)} and "
                             f"{proxy.log_path.relative_to(ROOT)}")  # fmt: skip
        results["warm_up"] = warm

        for round_no in range(args.rounds):
            log(f"\nround {round_no + 1} of {args.rounds}")
            modes = ("proxy", "direct") if round_no % 2 == 0 else ("direct", "proxy")
            for calls in args.streams:
                for mode in modes:
                    label = f"r{round_no + 1}-{calls}-{mode}"
                    step = run_step(switch, proxy, redis_probe, out, label, calls, mode, player, args.talk_seconds,
                                    args.rate)  # fmt: skip
                    step["round"] = round_no + 1
                    results["steps"].append(step)
                    print_step(step)
                    json_path.write_text(json.dumps(results, indent=1, default=str))
    except KeyboardInterrupt:
        log("\ninterrupted: stopping every process the benchmark started")
        results["interrupted"] = True
    finally:
        if switch is not None:
            switch.stop()
        if proxy is not None:
            proxy.stop()
        CHILDREN.stop_all()
        with contextlib.suppress(Exception):
            results["redis_keys_deleted"] = redis_probe.delete_prefix()
        json_path.write_text(json.dumps(results, indent=1, default=str))
    if results["steps"]:
        text = table(results["steps"], args.player, player["ptime_ms"])
        failed = [s["label"] for s in results["steps"] if not s["media_check"].startswith(("through", "direct"))]
        if failed:
            text.append(f"\nmedia checks failed: {', '.join(failed)}")
        log("")
        for line in text:
            log(line)
        (out / "summary.txt").write_text("\n".join(text) + "\n")
    log(f"\nraw results: {json_path.relative_to(ROOT)}  (SIPp's and the switch's files under {out.relative_to(ROOT)}/)")


if __name__ == "__main__":
    main()
