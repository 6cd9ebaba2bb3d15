"""Servers of a test's own: started on a free port in a directory of its own, never the shared ones."""

import random
import socket
import subprocess
import time
from pathlib import Path

import redis


def free_port():
    """A TCP port nothing listens on, taken below Linux's ephemeral range.

    A server stopped and started again on the same port must find it free:
    an ephemeral port could meanwhile be taken by some outgoing connection.
    """
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(20_000, 32_000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free TCP port between 20000 and 32000")


def tail(path, size=3000):
    try:
        return Path(path).read_text(errors="replace")[-size:]
    except OSError:
        return ""


class PrivateRedis:
    """A redis-server of the test's own, with the AOF settings production runs with (DESIGN.md).

    ``shutdown()`` is the clean stop (SHUTDOWN fsyncs the AOF), ``kill()`` the
    crash; ``start()`` again brings it back on the same port from the same
    directory.
    """

    def __init__(self, binary, directory):
        self.binary = binary
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = self.dir / "redis.log"
        self.process = None

    def start(self, timeout=20):
        command = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--logfile", str(self.log),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.process.returncode}:\n{tail(self.log)}")
                try:
                    # Loading the AOF answers LOADING: ready only once PING passes.
                    if client.ping():
                        return
                except redis.RedisError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server did not answer:\n{tail(self.log)}") from None
                time.sleep(0.05)

    def client(self):
        return redis.Redis.from_url(self.url, socket_timeout=10)

    def running(self):
        return self.process is not None and self.process.poll() is None

    def shutdown(self, timeout=20):
        """Stop cleanly: SHUTDOWN writes and fsyncs the AOF before the process exits."""
        with self.client() as client:
            client.shutdown()
        self.process.wait(timeout)

    def kill(self, timeout=20):
        if self.running():
            self.process.kill()
            self.process.wait(timeout)

    def appended_file(self):
        """The AOF file Redis appends to now: its manifest's incremental file (Redis 7), else the single file."""
        manifest = self.dir / "appendonlydir" / "appendonly.aof.manifest"
        if not manifest.exists():
            return self.dir / "appendonly.aof"
        incremental = []
        for line in manifest.read_text().splitlines():
            words = line.split()
            fields = dict(zip(words[::2], words[1::2], strict=False))
            if fields.get("type") == "i":
                incremental.append(fields["file"])
        return manifest.parent / incremental[-1]

    def written(self, timeout=10):
        """Where the AOF ends once every write Redis has answered is in the file (not necessarily fsynced)."""
        deadline = time.monotonic() + timeout
        with self.client() as client:
            # With everysec Redis may hold writes back while a slow fsync runs; wait them out.
            while client.info("persistence")["aof_buffer_length"]:
                if time.monotonic() > deadline:
                    raise RuntimeError("the AOF buffer was never written out")
                time.sleep(0.01)
        path = self.appended_file()
        return path, path.stat().st_size
