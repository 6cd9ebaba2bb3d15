"""The firewall export, in network namespaces this test makes: a banned source's packets are dropped by the kernel.

Two namespaces joined by a veth pair stand for the switch and the internet; the
export runs inside the switch's (``ip netns exec``), so the host's own firewall
is never touched, and the test checks that it was not.
"""

import shutil
import subprocess
import sys
import time
import uuid

import pytest

from callcore.contract import BanRecord
from security import firewall

SWITCH_ADDRESS, GOOD, BANNED = "192.0.2.1", "192.0.2.2", "192.0.2.3"
PORT = 5060

ECHO = f"""
import socket
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("{SWITCH_ADDRESS}", {PORT}))
print("ready", flush=True)
while True:
    data, peer = sock.recvfrom(2048)
    sock.sendto(data, peer)
"""

ASK = f"""
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(0.5)
sock.bind((sys.argv[1], 0))
for _ in range(3):
    sock.sendto(b"OPTIONS", ("{SWITCH_ADDRESS}", {PORT}))
    try:
        print(sock.recvfrom(2048)[0].decode())
        break
    except OSError:
        continue
else:
    print("no answer")
"""


def run(*command, check=True):
    return subprocess.run(command, capture_output=True, text=True, check=check, timeout=30)


def host_ruleset():
    return run("nft", "list", "ruleset").stdout


@pytest.fixture
def namespaces():
    if not (shutil.which("ip") and shutil.which("nft")):
        pytest.skip("iproute2 and nftables are installed by scripts/setup.sh --test")
    tag = uuid.uuid4().hex[:6]
    switch, internet = f"ss-sw-{tag}", f"ss-in-{tag}"
    made = run("ip", "netns", "add", switch, check=False)
    if made.returncode != 0:
        pytest.skip(f"the kernel refuses network namespaces here: {made.stderr.strip()}")
    try:
        run("ip", "netns", "add", internet)
        run("ip", "link", "add", f"sw{tag}", "netns", switch, "type", "veth", "peer", "name", f"in{tag}", "netns",
            internet)  # fmt: skip
        for namespace, link, addresses in (
            (switch, f"sw{tag}", [SWITCH_ADDRESS]),
            (internet, f"in{tag}", [GOOD, BANNED]),
        ):
            for address in addresses:
                run("ip", "-n", namespace, "addr", "add", f"{address}/24", "dev", link)
            run("ip", "-n", namespace, "link", "set", link, "up")
            run("ip", "-n", namespace, "link", "set", "lo", "up")
        yield switch, internet
    finally:
        for namespace in (switch, internet):
            run("ip", "netns", "del", namespace, check=False)


def ask(internet, source):
    return run("ip", "netns", "exec", internet, sys.executable, "-c", ASK, source).stdout.strip()


def ban(ip, seconds):
    now = int(time.time() * 1000)
    return BanRecord(ip, "scanner", 1, now, now, "node-1", 1, now + seconds * 1000)


def test_a_banned_source_is_dropped_by_the_kernel_and_others_are_answered(namespaces):
    switch, internet = namespaces
    before = host_ruleset()
    echo = subprocess.Popen(
        ["ip", "netns", "exec", switch, sys.executable, "-c", ECHO], stdout=subprocess.PIPE, text=True
    )
    try:
        assert echo.stdout.readline().strip() == "ready"
        assert ask(internet, GOOD) == "OPTIONS"
        assert ask(internet, BANNED) == "OPTIONS"

        in_switch = ("ip", "netns", "exec", switch)
        assert firewall.export([ban(BANNED, 300)], command=in_switch) == 1
        assert ask(internet, BANNED) == "no answer"
        assert ask(internet, GOOD) == "OPTIONS"
        listed = run(*in_switch, "nft", "list", "set", "inet", "softswitch", firewall.SET4).stdout
        assert BANNED in listed and "timeout 5m" in listed  # the ban's remaining time

        # Released (or lapsed): the next export leaves it out, and it is answered again.
        assert firewall.export([], command=in_switch) == 0
        assert ask(internet, BANNED) == "OPTIONS"
    finally:
        echo.kill()
        echo.wait()
    assert host_ruleset() == before


def test_an_element_times_out_with_its_ban_without_another_export(namespaces):
    switch, internet = namespaces
    in_switch = ("ip", "netns", "exec", switch)
    firewall.export([ban(BANNED, 2), ban("2001:db8::7", 600)], command=in_switch)
    listed = run(*in_switch, "nft", "list", "set", "inet", "softswitch", firewall.SET4).stdout
    assert BANNED in listed
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and BANNED in listed:
        time.sleep(0.5)
        listed = run(*in_switch, "nft", "list", "set", "inet", "softswitch", firewall.SET4).stdout
    assert BANNED not in listed
    assert "2001:db8::7" in run(*in_switch, "nft", "list", "set", "inet", "softswitch", firewall.SET6).stdout


def test_a_lapsed_ban_is_not_exported():
    rules = firewall.ruleset([ban(BANNED, -1), ban(GOOD, 30)], "softswitch")
    added = [c["add"]["element"] for c in rules["nftables"] if "element" in c.get("add", {})]
    assert [e["elem"] for e in added] == [[{"elem": {"val": GOOD, "timeout": 30}}]]
