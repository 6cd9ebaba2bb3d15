"""End-to-end fixtures: callcore (Kamailio + our KEMI) as a subprocess, SIPp as customer and vendors.

Everything runs on loopback: 127.0.0.1 is the customer's mapping gateway,
127.0.0.2 an unknown source, vendors listen on 127.0.0.1:VENDOR_A/VENDOR_B.
Ports stay clear of the ones `make run` uses, so a demo switch can keep running.
"""

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from django.conf import settings

from callcore.contract import Keys

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
# E2E_PORT_BASE lets two suites run side by side on one machine.
SWITCH_PORT = int(os.environ.get("E2E_PORT_BASE", "15060"))
VENDOR_A = SWITCH_PORT + 10
VENDOR_B = SWITCH_PORT + 11
SECOND_SWITCH_PORT = SWITCH_PORT + 1  # the second_callcore fixture's node
RTPENGINE_NG_PORT = SWITCH_PORT + 30  # the media proxy's control port (tests/e2e/test_media.py starts it)

pytestmark = pytest.mark.sip

SIP_TOOLS_MISSING = not (shutil.which("sipp") and (shutil.which("kamailio") or os.path.exists("/usr/sbin/kamailio")))
SIP_TOOLS_WHY = "SIPp and Kamailio are installed by scripts/setup.sh --test"


@pytest.fixture(scope="session")
def sip_tools():
    """Skips without SIPp or Kamailio, but fails under CI: a CI that silently skips every call test proves nothing."""
    if SIP_TOOLS_MISSING:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and SIPp or Kamailio is missing: {SIP_TOOLS_WHY}")
        pytest.skip(SIP_TOOLS_WHY)


# Session-scoped, so it runs before the session's callcore fixture tries to start Kamailio.
needs_sip = pytest.mark.usefixtures("sip_tools")


def options_ping(port=SWITCH_PORT, source="127.0.0.1", timeout=0.5):
    """Send one OPTIONS over UDP; return the status line or None."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    try:
        sock.bind((source, 0))
        local_port = sock.getsockname()[1]
        branch = "z9hG4bK" + uuid.uuid4().hex
        message = (
            f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {source}:{local_port};branch={branch}\r\n"
            f"From: <sip:ping@{source}>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <sip:127.0.0.1:{port}>\r\n"
            f"Call-ID: {uuid.uuid4().hex}\r\n"
            "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        sock.sendto(message.encode(), ("127.0.0.1", port))
        data, _ = sock.recvfrom(65535)
        return data.split(b"\r\n", 1)[0].decode(errors="replace")
    except OSError:
        return None
    finally:
        sock.close()


def options_flood(source, count=5000, port=SWITCH_PORT):
    """Send ``count`` OPTIONS from ``source`` as fast as the socket takes them, paced every 200 so the socket
    buffers do not drop what pike should count; return the seconds it took."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    started = time.monotonic()
    try:
        sock.bind((source, 0))
        local_port = sock.getsockname()[1]
        for n in range(count):
            call_id = uuid.uuid4().hex
            message = (
                f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {source}:{local_port};branch=z9hG4bK{n}{call_id}\r\n"
                f"From: <sip:f@{source}>;tag={n}\r\nTo: <sip:127.0.0.1>\r\n"
                f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            )
            sock.sendto(message.encode(), ("127.0.0.1", port))
            if n % 200 == 199:
                time.sleep(0.04)
        return time.monotonic() - started
    finally:
        sock.close()


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies left to an init that does not reap them count as gone)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


@contextlib.contextmanager
def callcore_node(state: Path, port: int, node: str):
    """One call-core process (Kamailio + KEMI) on ``port`` as node ``node``, sharing the tests' Redis and prefix;
    its pid file, control socket and spool live in ``state``. Stopped with every Kamailio process it forked."""
    env = dict(os.environ)
    env.update(
        SS_SIP_PORT=str(port),
        SS_SIP_LISTEN="127.0.0.1",
        SS_CHILDREN="4",
        SS_TCP_CHILDREN="1",
        REDIS_URL=settings.REDIS_URL,
        REDIS_PREFIX=settings.REDIS_PREFIX,
        CALLCORE_STATE_DIR=str(state),
        SS_NODE=node,
        SS_DEFAULT_INVITE_TIMEOUT="3",
        SS_FLOOD_REQUESTS_PER_2S="1000",
        # The keep-alive test waits for the first failed OPTIONS, not the second.
        SS_DIALOG_KEEPALIVE_FAILURES="1",
        SS_RTPENGINE_NG=f"127.0.0.1:{RTPENGINE_NG_PORT}",
    )
    log = open(state / "kamailio.log", "w")  # noqa: SIM115 - closed at teardown
    running = {"state": state, "log": state / "kamailio.log", "port": port, "node": node}

    def start():
        running["process"] = process = subprocess.Popen(
            [sys.executable, "-m", "callcore"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and options_ping(port) is None:
            if process.poll() is not None:
                break
            time.sleep(0.2)
        if options_ping(port) is None:
            process.kill()
            log.flush()
            pytest.fail(f"callcore {node} did not start:\n" + (state / "kamailio.log").read_text()[-3000:])

    def crash():
        """Kill every Kamailio process at once, as a crash would (or a host gone)."""
        main_pid = int((state / "run" / "kamailio.pid").read_text())
        os.killpg(running["process"].pid, signal.SIGKILL)
        running["process"].wait()
        # Kamailio refuses to start while the pid in its pid file exists, even as a zombie not yet reaped.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Path(f"/proc/{main_pid}").exists():
            time.sleep(0.05)

    def crash_and_restart():
        crash()
        start()

    running["crash"], running["start"], running["crash_and_restart"] = crash, start, crash_and_restart
    start()
    try:
        yield running
    finally:
        process = running["process"]
        with contextlib.suppress(ProcessLookupError):  # a restart that failed left nothing running
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        # Kamailio's workers outlive the launcher by a moment: none may be left holding the port.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and group_alive(process.pid):
            time.sleep(0.1)
        if group_alive(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        log.close()


# A failed e2e test shows what its switch logged meanwhile (errors and the call core's own lines): a run on
# another machine leaves nothing else to read.
NODE_LOG_LINES = 40
_NODE_LOGS = pytest.StashKey[list]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    nodes = [item.funcargs[name] for name in ("callcore", "second_callcore") if name in item.funcargs]
    offsets = [(node["log"], node["log"].stat().st_size if node["log"].exists() else 0) for node in nodes]
    item.stash[_NODE_LOGS] = offsets
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.when != "call" or not report.failed:
        return
    for path, offset in item.stash.get(_NODE_LOGS, ()):
        with contextlib.suppress(OSError), open(path, "rb") as log:
            log.seek(offset)
            lines = log.read().decode("utf-8", "replace").splitlines()
        picked = [line for line in lines if "callcore" in line or "ERROR" in line or "CRITICAL" in line]
        report.sections.append((f"{path.parent.name} log during the test", "\n".join(picked[-NODE_LOG_LINES:])))


@pytest.fixture(scope="session")
def callcore(tmp_path_factory):
    """A running call core for the whole session, on SWITCH_PORT, node "e2e", sharing the tests' Redis prefix."""
    with callcore_node(tmp_path_factory.mktemp("callcore"), SWITCH_PORT, "e2e") as running:
        yield running


@pytest.fixture(scope="session")
def second_callcore(tmp_path_factory):
    """A second node beside ``callcore``: its own SIP port (SECOND_SWITCH_PORT), node name, state and control
    socket, the same Redis and prefix, so both see one snapshot, one set of balances and each other's calls."""
    with callcore_node(tmp_path_factory.mktemp("callcore2"), SECOND_SWITCH_PORT, "e2e-2") as running:
        yield running


def keys() -> Keys:
    return Keys(settings.REDIS_PREFIX)


def live_key_patterns() -> list[str]:
    """Every key a live call holds: registry, slots, CPS windows, reservations, live balances."""
    k = keys()
    return [
        k.live_calls, k.live_calls_expiry, k.live_answered, k.slots("*", "*"), k.cps("*", "*"), k.reservations("*"),
        k.balance("*"), k.grants("*"), f"{k.grants('*')}:calls",
    ]  # fmt: skip


@pytest.fixture
def live_redis():
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    k = keys()
    # Each test starts with no live calls, counters, CDRs or vendor ASR figures of the tests before it.
    patterns = [
        *live_key_patterns(),
        k.cdr_stream,
        k.dynamic_blacklist(),
        k.dynamic_blacklist("*"),
        f"{k.prefix}:fraud:*",
    ]
    for pattern in [*patterns, k.route_stats_minute("*")]:
        for key in client.scan_iter(pattern, count=1000):
            client.delete(key)
    # Nor any source ban or offence count of theirs: the nodes drop the bans from their caches when the bans'
    # version moves, within their one-second sync.
    ban_keys = [*client.scan_iter(f"{k.prefix}:ban:*", count=1000), k.bans]
    if client.delete(*ban_keys):
        client.incr(k.bans_version)
        time.sleep(1.5)
    yield client
    client.close()


def cdrs(client):
    """The CDR records on the stream, oldest first."""
    return [json.loads(fields["cdr"]) for _id, fields in client.xrange(keys().cdr_stream)]


def wait_for_cdrs(client, count, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = cdrs(client)
        if len(records) >= count:
            return records
        time.sleep(0.1)
    return cdrs(client)


def render(scenario, tmp_path, **values):
    text = (SCENARIOS / scenario).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    path = tmp_path / f"{uuid.uuid4().hex[:6]}-{scenario}"
    path.write_text(text)
    return path


def free_port(ip="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((ip, 0))
        return sock.getsockname()[1]


def wait_bound(process, port, host="127.0.0.1", timeout=20):
    """Wait until ``process`` holds UDP ``host:port`` (or has exited, or ``timeout`` passed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind((host, port))
        except OSError:
            return
        finally:
            probe.close()
        time.sleep(0.02)


def audio_vendor(tmp_path, port, mode, hz, calls=1, timeout=40):
    """The tests' fake vendor with audio (tests/e2e/audio_agent.py) on ``port``, once it answers INVITEs: a fixed
    pause was too short on a loaded machine, and the switch's INVITE then met a closed port."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.audio_agent", str(port), mode, str(tmp_path), "--tone", str(hz),
         "--calls", str(calls), "--timeout", str(timeout)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    # Read unbuffered: a buffered readline could hold the line back while select waits for more.
    deadline, seen = time.monotonic() + 30, b""
    while time.monotonic() < deadline and process.poll() is None:
        readable, _, _ = select.select([process.stdout], [], [], 0.5)
        if readable:
            seen += os.read(process.stdout.fileno(), 4096)
            if b"ready\n" in seen:
                return process
    process.kill()
    process.wait()
    raise AssertionError(f"the audio vendor on {port} did not start (exit {process.returncode})")


class Sipp:
    """Runs SIPp scenarios as customer (foreground) and vendors (background)."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.vendors = []

    def vendor(self, scenario, port, calls=1, timeout=40, extra=(), **values):
        values.setdefault("EXPECT", ".")
        values.setdefault("BYE_EXPECT", ".")
        values.setdefault("EARLY_MEDIA", "")
        path = render(scenario, self.tmp_path, **values)
        log = self.tmp_path / f"vendor-{port}-{len(self.vendors)}.log"
        process = subprocess.Popen(
            ["sipp", "-sf", str(path), "-i", "127.0.0.1", "-p", str(port), "-m", str(calls), "-nostdin",
             "-timeout", f"{timeout}s", "-timeout_error", "-trace_err", "-error_file", str(log) + ".err",
             "-trace_msg", "-message_file", str(log), *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.vendors.append(process)
        # Bound before the customer dials: a fixed pause was too short on a loaded machine, and the switch's
        # INVITE then met a closed port and timed out (408).
        wait_bound(process, port)
        return process

    def customer(self, scenario, callee, caller="15551230001", source="127.0.0.1", calls=1, rate=10, hold_ms=0,
                 timeout=30, extra=(), background=False, port=SWITCH_PORT, **values):  # fmt: skip
        values.setdefault("CODE", 200)
        values.setdefault("UA", "customer-pbx")
        values.setdefault("ANSWER_EXPECT", ".")
        values.setdefault("BYE_EXPECT", ".")
        path = render(scenario, self.tmp_path, **values)
        log = self.tmp_path / f"customer-{uuid.uuid4().hex[:6]}.log"
        command = [
            "sipp", f"127.0.0.1:{port}", "-sf", str(path), "-i", source, "-p", str(free_port(source)),
            "-s", callee, "-key", "caller", caller, "-m", str(calls), "-r", str(rate), "-d", str(hold_ms),
            "-nostdin", "-timeout", f"{timeout}s", "-timeout_error", "-trace_msg", "-message_file", str(log),
            "-trace_err", "-error_file", str(log) + ".err", *extra,
        ]  # fmt: skip
        if background:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.vendors.append(process)  # waited for and cleaned up with the vendors
            return process
        result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout + 15)
        result.log = log
        return result

    def wait_vendors(self, timeout=45):
        codes = []
        for process in self.vendors:
            try:
                codes.append(process.wait(timeout=timeout))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append("timeout")
        return codes

    def close(self):
        for process in self.vendors:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def sipp(tmp_path):
    runner = Sipp(tmp_path)
    yield runner
    runner.close()


@pytest.fixture
def switch_config(db):
    """The e2e configuration in the test database; ``publish()`` makes callcore see it."""
    from billing.models import Account, Rate, RateTable
    from billing.services import apply_payment
    from softswitch_portal.core import publisher
    from softswitch_portal.core.models import SystemParameter
    from softswitch_portal.switching.models import MappingGateway, RoutingGateway

    retail = RateTable.objects.create(name="Retail")
    for prefix, price in (("1", "0.0100"), ("44", "0.0200"), ("86", "0.0300")):
        Rate.objects.create(rate_table=retail, prefix=prefix, price_per_minute=Decimal(price), first_period=6,
                            next_period=6)  # fmt: skip
    cost = RateTable.objects.create(name="Cost")
    for prefix, price in (("1", "0.0050"), ("44", "0.0100"), ("86", "0.0200")):
        Rate.objects.create(rate_table=cost, prefix=prefix, price_per_minute=Decimal(price), first_period=1,
                            next_period=1)  # fmt: skip
    customer = Account.objects.create(name="E2E Customer", rate_table=retail, anti_overdraft=True)
    apply_payment(customer, "recharge", Decimal("50"), None)
    vendor_a = Account.objects.create(name="E2E Vendor A", account_type="vendor", rate_table=cost)
    vendor_b = Account.objects.create(name="E2E Vendor B", account_type="vendor", rate_table=cost)
    gateway = MappingGateway.objects.create(name="E2E trunk", account=customer, remote_ips=["127.0.0.1"])
    route_a = RoutingGateway.objects.create(name="Vendor A", host="127.0.0.1", port=VENDOR_A, priority=10,
                                            clearing_account=vendor_a)  # fmt: skip
    route_b = RoutingGateway.objects.create(name="Vendor B", host="127.0.0.1", port=VENDOR_B, priority=20,
                                            clearing_account=vendor_b)  # fmt: skip

    class Config:
        pass

    config = Config()
    config.customer, config.gateway, config.route_a, config.route_b = customer, gateway, route_a, route_b
    config.vendor_a, config.vendor_b = vendor_a, vendor_b

    def set_parameter(name, value):
        SystemParameter.objects.update_or_create(name=name, defaults={"value": str(value)})

    def publish():
        version = publisher.publish(force=True)
        assert version is not None, "the snapshot could not be published"
        # Each Kamailio process polls `current` at most once a second.
        time.sleep(1.3)
        return version

    config.set_parameter = set_parameter
    config.publish = publish
    return config
