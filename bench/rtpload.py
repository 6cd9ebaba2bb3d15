"""What bench/media.py works out without running anything: the RTP pcap each call plays, CPU from /proc's lines,
and the figures of its table. Importing it has no side effects (tests import it)."""

from __future__ import annotations

import statistics
import struct

PCAP_MAGIC = 0xA1B2C3D4  # microsecond timestamps
LINKTYPE_ETHERNET = 1
RTP_VERSION = 2


# ---------------------------------------------------------------------------
# The pcap: the packaged G.711 sample looped to the talk time


def rtp_payloads(pcap: bytes) -> tuple[int, int, list[bytes]]:
    """(payload type, ms between packets, RTP payloads) of the RTP packets of an Ethernet/IPv4/UDP pcap.

    The sample SIPp ships is 7 s long: a call that talks longer replays it, and one pcap of the whole talk time
    keeps the sequence numbers and timestamps running as a phone's would, where a replay would jump back."""
    if len(pcap) < 24:
        raise ValueError("pcap: shorter than its header")
    magic = struct.unpack_from("<I", pcap)[0]
    endian = "<" if magic in (PCAP_MAGIC, 0xA1B23C4D) else ">"
    if struct.unpack_from(endian + "I", pcap)[0] not in (PCAP_MAGIC, 0xA1B23C4D):
        raise ValueError("pcap: not a pcap file")
    nanos = struct.unpack_from(endian + "I", pcap)[0] == 0xA1B23C4D
    if struct.unpack_from(endian + "I", pcap, 20)[0] != LINKTYPE_ETHERNET:
        raise ValueError("pcap: not an Ethernet capture")
    offset, times, payloads, payload_type = 24, [], [], None
    while offset + 16 <= len(pcap):
        seconds, fraction, length, _original = struct.unpack_from(endian + "IIII", pcap, offset)
        frame = pcap[offset + 16 : offset + 16 + length]
        offset += 16 + length
        if len(frame) < 14 + 20 + 8 + 12 or frame[12:14] != b"\x08\x00":
            continue  # not IPv4
        ip_header = (frame[14] & 0x0F) * 4
        if frame[14 + 9] != 17:
            continue  # not UDP
        rtp = frame[14 + ip_header + 8 :]
        if len(rtp) < 12 or rtp[0] >> 6 != RTP_VERSION:
            continue
        header = 12 + 4 * (rtp[0] & 0x0F)
        if payload_type is None:
            payload_type = rtp[1] & 0x7F
        elif rtp[1] & 0x7F != payload_type:
            continue  # a DTMF event or comfort noise among the audio
        times.append(seconds + fraction / (1e9 if nanos else 1e6))
        payloads.append(rtp[header:])
    if len(payloads) < 2:
        raise ValueError("pcap: fewer than two RTP packets of one payload type")
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    ptime_ms = max(1, round(statistics.median(gaps) * 1000))
    return payload_type, ptime_ms, payloads


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def rtp_pcap(payload_type: int, ptime_ms: int, payloads: list[bytes], seconds: float, port: int = 6000) -> bytes:
    """An Ethernet pcap of one RTP stream lasting ``seconds``: ``payloads`` over and over, one every ``ptime_ms``,
    sequence numbers and timestamps running on (8 kHz clock). SIPp sends it to the peer's SDP port, from the
    call's own (it shifts the pcap's ports by its lowest destination port, ``port`` here)."""
    count = max(1, round(seconds * 1000 / ptime_ms))
    samples = 8 * ptime_ms
    out = [struct.pack("<IHHiIII", PCAP_MAGIC, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET)]
    for n in range(count):
        payload = payloads[n % len(payloads)]
        rtp = struct.pack("!BBHII", 0x80, (0x80 if n == 0 else 0) | payload_type, n & 0xFFFF, n * samples, 0x5EED)
        rtp += payload
        udp = struct.pack("!HHHH", port, port, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n & 0xFFFF, 0, 64, 17, 0, bytes([127, 0, 0, 1]),
                         bytes([127, 0, 0, 1]))  # fmt: skip
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
        micros = n * ptime_ms * 1000
        out.append(struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000, len(frame), len(frame)) + frame)
    return b"".join(out)


def packets_in(seconds: float, ptime_ms: int) -> int:
    """Packets one stream of ``rtp_pcap`` carries."""
    return max(1, round(seconds * 1000 / ptime_ms))


# ---------------------------------------------------------------------------
# CPU from /proc


def pid_cpu_ticks(stat_line: str) -> int:
    """utime + stime (clock ticks) from a /proc/<pid>/stat line: every thread of the process, those that ended
    too (SIPp's players end with their calls), where per-thread readings lose an ended thread's share."""
    fields = stat_line[stat_line.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def machine_jiffies(proc_stat: str) -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat's first line; idle and iowait are not busy, and guest
    time is already inside user time."""
    parts = [int(x) for x in proc_stat.splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    total = sum(parts[:8])
    return total - idle, total


def ms_per_s(ticks: int, seconds: float, clk_tck: int) -> float:
    """CPU milliseconds per wall second (1000 = one core busy)."""
    return 1000.0 * ticks / clk_tck / seconds if seconds > 0 else 0.0


def machine_ms_per_s(before: tuple[int, int], after: tuple[int, int], ncpu: int) -> float:
    """The whole machine's CPU milliseconds per wall second between two ``machine_jiffies`` readings."""
    busy, total = after[0] - before[0], after[1] - before[1]
    return 1000.0 * ncpu * busy / total if total > 0 else 0.0


def group_ticks(before: dict[int, int], after: dict[int, int]) -> int:
    """Ticks a set of processes used between two readings (pid -> ticks): a process gone by the second reading
    counts nothing, one that started in between counts from zero."""
    return sum(ticks - before.get(pid, 0) for pid, ticks in after.items())


def udp_counters(snmp: str) -> dict[str, int]:
    """The Udp line of /proc/net/snmp by name."""
    rows = [line.split() for line in snmp.splitlines() if line.startswith("Udp:")]
    if len(rows) < 2:
        raise ValueError("no Udp lines in /proc/net/snmp")
    return {name: int(value) for name, value in zip(rows[0][1:], rows[1][1:], strict=False)}


def udp_arrivals(before: dict[str, int], after: dict[str, int]) -> int:
    """UDP datagrams that reached this host between two readings: delivered to a socket, dropped at a full one
    (SIPp never reads the RTP it is sent) or at a port nobody had open (play_pcap_audio binds none)."""
    return sum(after[k] - before[k] for k in ("InDatagrams", "InErrors", "NoPorts"))


# ---------------------------------------------------------------------------
# The table


def relay_figures(answer: dict) -> dict[str, int]:
    """What the benchmark reads off rtpengine's NG "statistics" answer: packets it relayed and its relay errors
    (totals, to which a call's packets are added when it is deleted), sessions it managed (total) and holds now,
    and its current packets per second."""
    stats = answer.get("statistics") or {}
    totals, current = stats.get("totalstatistics") or {}, stats.get("currentstatistics") or {}
    return {
        "relayed": int(totals.get("relayedpackets") or 0),
        "relay_errors": int(totals.get("relayedpacketerrors") or 0),
        "managed": int(totals.get("managedsessions") or 0),
        "sessions": int(current.get("sessionsown") or 0),
        "packet_rate": int(current.get("packetrate") or 0),
    }


def media_check(mode: str, relayed: int, sessions: int, calls: int, expected: int, share: float) -> str:
    """Whether a step's media went where its mode says: through rtpengine (a session per call, most of the packets
    the calls sent relayed) or directly (rtpengine saw neither)."""
    if mode == "proxy":
        if calls and sessions >= calls and relayed >= share * expected:
            return "through rtpengine"
        return f"NOT relayed: {sessions} sessions for {calls} calls, {relayed} of {expected} packets"
    if relayed == 0 and sessions == 0:
        return "direct"
    return f"NOT direct: rtpengine had {sessions} sessions, relayed {relayed} packets"


def med(rows: list[dict], key: str):
    """The median of a figure over steps, those without it left out; None when none has it."""
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def quietest(proxy: list[dict], direct: list[dict]) -> tuple[float, float, float] | None:
    """The machine's CPU (proxy, direct, proxy / direct) of each mode's step with the least other load."""
    if not proxy or not direct:
        return None
    a, b = (min(group, key=lambda r: r["other_ms_s"])["machine_ms_s"] for group in (proxy, direct))
    return (a, b, a / b) if b else None


def derived(rows: list[dict]) -> list[dict]:
    """Per number of calls, from the medians over the rounds of each mode: rtpengine's CPU per one-way stream and
    per call (what it used proxying less what it used idle in the direct steps: its timers and the benchmark's
    look at its statistics once a second), and proxy / direct for the processes measured and for the machine."""
    out = []
    for calls in sorted({r["calls"] for r in rows}):
        # A step whose media went elsewhere than its mode says measured something else.
        proxy = [r for r in rows if r["calls"] == calls and r["mode"] == "proxy" and r["media_check"][0] != "N"]
        direct = [r for r in rows if r["calls"] == calls and r["mode"] == "direct" and r["media_check"][0] != "N"]
        if not proxy:
            continue

        def ratio(key, proxy=proxy, direct=direct):
            a, b = med(proxy, key), med(direct, key)
            return a / b if a is not None and b else None

        up = med(proxy, "calls_up") or calls
        busy, idle = med(proxy, "rtpengine_ms_s"), med(direct, "rtpengine_ms_s") or 0.0
        work = None if busy is None else busy - idle
        out.append({
            "calls": calls,
            "rounds": [len(proxy), len(direct)],
            "rtpengine_proxy": busy,
            "rtpengine_direct": med(direct, "rtpengine_ms_s"),
            "rtpengine_per_stream": work / (2 * up) if work is not None else None,
            "rtpengine_per_call": work / up if work is not None else None,
            "ours_ratio": ratio("ours_ms_s"),
            "machine_proxy": med(proxy, "machine_ms_s"),
            "machine_direct": med(direct, "machine_ms_s"),
            "machine_ratio": ratio("machine_ms_s"),
            # The machine is shared: each mode's step with the least CPU used by other processes is the one its
            # figure says most about; on a busy machine the medians are others' noise.
            "quiet_machine": quietest(proxy, direct),
        })  # fmt: skip
    return out
