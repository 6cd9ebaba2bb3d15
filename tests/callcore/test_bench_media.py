"""The pure half of bench/media.py (bench/rtpload.py): the RTP pcap each call plays, CPU from /proc's lines, what
rtpengine's statistics say and the figures of the table."""

import importlib.util
import os
import struct

import pytest

from callcore.__main__ import ROOT

spec = importlib.util.spec_from_file_location("bench_rtpload", ROOT / "bench" / "rtpload.py")
rtpload = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rtpload)


def frames(pcap: bytes):
    """(capture µs, RTP bytes) of each frame of a pcap rtp_pcap wrote (Ethernet, IPv4 without options, UDP)."""
    offset, out = 24, []
    while offset < len(pcap):
        seconds, micros, length, _ = struct.unpack_from("<IIII", pcap, offset)
        frame = pcap[offset + 16 : offset + 16 + length]
        out.append((seconds * 1_000_000 + micros, frame[14 + 20 + 8 :]))
        offset += 16 + length
    return out


def test_the_talk_pcap_loops_the_payloads_with_sequence_and_timestamps_running_on():
    payloads = [bytes([n]) * 240 for n in range(3)]
    pcap = rtpload.rtp_pcap(8, 30, payloads, seconds=0.3)
    rtp = frames(pcap)
    assert len(rtp) == rtpload.packets_in(0.3, 30) == 10
    assert [t for t, _ in rtp] == [30_000 * n for n in range(10)]
    sequence = [struct.unpack_from("!H", r, 2)[0] for _, r in rtp]
    stamps = [struct.unpack_from("!I", r, 4)[0] for _, r in rtp]
    assert sequence == list(range(10))  # no jump back where the payloads start over
    assert stamps == [240 * n for n in range(10)]
    assert [r[12:] for _, r in rtp][3] == payloads[0]
    assert rtp[0][1][1] == 0x80 | 8 and rtp[1][1][1] == 8  # the marker on the first packet only


def test_the_payloads_are_read_back_from_a_pcap_and_other_payload_types_left_out():
    payloads = [bytes([n]) * 160 for n in range(4)]
    pcap = bytearray(rtpload.rtp_pcap(8, 20, payloads, seconds=0.08))
    # A DTMF event (payload type 101) after the audio.
    pcap += rtpload.rtp_pcap(101, 20, [b"\x01\x0a\x00\xa0"], seconds=0.02)[24:]
    payload_type, ptime_ms, read = rtpload.rtp_payloads(bytes(pcap))
    assert (payload_type, ptime_ms, read) == (8, 20, payloads)


@pytest.mark.parametrize("data", [b"", b"\x00" * 24, struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 113)])
def test_what_is_not_an_ethernet_pcap_of_rtp_is_refused(data):
    with pytest.raises(ValueError, match="pcap"):
        rtpload.rtp_payloads(data)


def test_a_process_cpu_is_utime_plus_stime_whatever_its_name_holds():
    # utime and stime are the 14th and 15th fields; a name may hold spaces and parentheses.
    line = "4242 (rtp (engine) x) S 1 4242 4242 0 -1 4194560 1 0 0 0 1500 250 7 9 20 0 12 0 100 0 0\n"
    assert rtpload.pid_cpu_ticks(line) == 1750


def test_the_machine_figures_come_from_proc_stat_and_count_iowait_as_idle():
    before = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\n"
    after = "cpu  400 0 150 1300 150 0 0 0 0 0\ncpu0 200 0 75 650 75 0 0 0 0 0\n"
    assert rtpload.machine_jiffies(before) == (150, 1000)
    assert rtpload.machine_jiffies(after) == (550, 2000)
    # 400 of 1000 jiffies busy on 2 CPUs: 0.8 of a core.
    assert rtpload.machine_ms_per_s((150, 1000), (550, 2000), ncpu=2) == pytest.approx(800.0)
    assert rtpload.ms_per_s(150, seconds=10.0, clk_tck=100) == pytest.approx(150.0)
    assert rtpload.ms_per_s(150, seconds=0.0, clk_tck=100) == 0.0


def test_a_group_counts_a_process_that_started_in_the_window_from_zero():
    assert rtpload.group_ticks({1: 100, 2: 50}, {1: 130, 2: 55, 3: 20}) == 30 + 5 + 20


SNMP = """Ip: Forwarding DefaultTTL
Ip: 1 64
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: {} {} {} 90 {} 0 0 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 0 0 0 0 0 0 0 0 0
"""


def test_udp_arrivals_count_datagrams_delivered_dropped_at_a_full_socket_or_at_no_socket():
    before = rtpload.udp_counters(SNMP.format(100, 10, 5, 5))
    after = rtpload.udp_counters(SNMP.format(160, 30, 25, 25))
    assert before["NoPorts"] == 10 and before["RcvbufErrors"] == 5
    # RcvbufErrors are inside InErrors: counted once.
    assert rtpload.udp_arrivals(before, after) == 60 + 20 + 20
    with pytest.raises(ValueError, match="Udp"):
        rtpload.udp_counters("Ip: Forwarding\nIp: 1\n")


def test_rtpengine_statistics_are_read_for_relayed_packets_and_sessions():
    answer = {
        "result": "ok",
        "statistics": {
            "currentstatistics": {"sessionsown": 3, "packetrate": 300, "packetrate_user": 300},
            "totalstatistics": {"managedsessions": 12, "relayedpackets": 4000, "relayedpacketerrors": 2},
        },
    }
    assert rtpload.relay_figures(answer) == {
        "relayed": 4000, "relay_errors": 2, "managed": 12, "sessions": 3, "packet_rate": 300,
    }  # fmt: skip
    assert rtpload.relay_figures({"result": "ok"})["relayed"] == 0


def test_the_media_check_tells_relayed_from_direct():
    assert rtpload.media_check("proxy", 1900, 10, 10, 2000, 0.8) == "through rtpengine"
    assert rtpload.media_check("proxy", 1000, 10, 10, 2000, 0.8).startswith("NOT relayed")
    assert rtpload.media_check("proxy", 2000, 9, 10, 2000, 0.8).startswith("NOT relayed")
    assert rtpload.media_check("proxy", 0, 0, 0, 0, 0.8).startswith("NOT relayed")  # no call went through
    assert rtpload.media_check("direct", 0, 0, 10, 2000, 0.8) == "direct"
    assert rtpload.media_check("direct", 5, 1, 10, 2000, 0.8).startswith("NOT direct")


def step(calls, mode, rtpengine, ours, machine, up=None, check=None):
    check = check or ("through rtpengine" if mode == "proxy" else "direct")
    return {"calls": calls, "mode": mode, "calls_up": up or calls, "rtpengine_ms_s": rtpengine, "ours_ms_s": ours,
            "machine_ms_s": machine, "other_ms_s": machine - ours, "media_check": check}  # fmt: skip


def test_the_per_stream_figure_is_rtpengine_proxying_less_idle_over_two_streams_a_call():
    rows = [
        step(100, "proxy", 132.0, 200.0, 400.0),
        step(100, "proxy", 136.0, 220.0, 500.0),
        step(100, "direct", 2.0, 80.0, 250.0),
        step(100, "direct", 4.0, 100.0, 250.0),
        step(100, "proxy", 900.0, 900.0, 900.0, check="NOT relayed: 0 sessions for 100 calls"),
        step(200, "proxy", 250.0, 300.0, 600.0, up=190),
    ]
    by_calls = {d["calls"]: d for d in rtpload.derived(rows)}
    hundred = by_calls[100]
    assert hundred["rounds"] == [2, 2]  # the step whose media was not relayed is left out
    assert hundred["rtpengine_proxy"] == 134.0 and hundred["rtpengine_direct"] == 3.0
    assert hundred["rtpengine_per_stream"] == pytest.approx(131.0 / 200)
    assert hundred["rtpengine_per_call"] == pytest.approx(1.31)
    assert hundred["ours_ratio"] == pytest.approx(210.0 / 90.0)
    assert hundred["machine_ratio"] == pytest.approx(450.0 / 250.0)
    # Each mode's step where other processes used the least CPU (200 of 400, 150 of 250).
    assert hundred["quiet_machine"] == pytest.approx((400.0, 250.0, 1.6))
    # No direct step: no idle to take off, no ratio; the calls actually up count, not those asked for.
    two = by_calls[200]
    assert two["rtpengine_per_stream"] == pytest.approx(250.0 / 380)
    assert two["machine_ratio"] is None and two["ours_ratio"] is None and two["quiet_machine"] is None


SAMPLE = "/usr/share/sip-tester/g711a.pcap"


@pytest.mark.skipif(not os.path.exists(SAMPLE), reason="sip-tester's sample is not installed")
def test_the_sample_sipp_ships_reads_as_g711_a_law_every_30_ms():
    with open(SAMPLE, "rb") as f:
        payload_type, ptime_ms, payloads = rtpload.rtp_payloads(f.read())
    assert (payload_type, ptime_ms) == (8, 30)
    assert len(payloads) > 100 and {len(p) for p in payloads} == {240}
