"""Private servers for the billing tests that stop and start Redis and PostgreSQL for real.

The shared servers other runs use are never touched: each fixture starts a
server of its own on a free port, in a directory of its own, and removes it
afterwards.
"""

import contextlib
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import redis


@pytest.fixture
def prefix(settings, redis_client):
    """A Redis prefix of the test's own (the settings' REDIS_PREFIX), its keys deleted afterwards."""
    settings.REDIS_PREFIX = f"sstest-billing-{uuid.uuid4().hex[:8]}"
    yield settings.REDIS_PREFIX
    for key in redis_client.scan_iter(f"{settings.REDIS_PREFIX}:*", count=1000):
        redis_client.delete(key)


@pytest.fixture
def eager_celery():
    """Tasks run where they are queued, so an alarm's e-mail is in mail.outbox when the call returns."""
    from softswitch_portal.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


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


def _tail(path, size=3000):
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
                    raise RuntimeError(f"redis-server exited with {self.process.returncode}:\n{_tail(self.log)}")
                try:
                    # Loading the AOF answers LOADING: ready only once PING passes.
                    if client.ping():
                        return
                except redis.RedisError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server did not answer:\n{_tail(self.log)}") from None
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


def postgres_bindir():
    """Where initdb and pg_ctl are: the newest of Debian's /usr/lib/postgresql/<version>/bin, else the PATH."""
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists() and (p / "pg_ctl").exists()),
        key=lambda p: [int(part) for part in p.parent.name.split(".") if part.isdigit()],
    )
    if versions:
        return versions[-1]
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own, reached only by its Unix socket in its own directory.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the
    ``postgres`` user; the directory is a fresh one under the system's temporary
    directory, since pytest's are private to the user running it.
    """

    dbname = "softswitch"

    def __init__(self, bindir, log_copy=None):
        self.bindir = Path(bindir)
        self.dir = Path(tempfile.mkdtemp(prefix="ss-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgresql.log"
        self.log_copy = log_copy
        self.port = free_port()
        self.host = str(self.dir)  # libpq takes a directory as the host: the socket's
        self.as_owner = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_owner = ["runuser", "-u", "postgres", "--"]

    def _run(self, tool, *args, timeout=120):
        command = [*self.as_owner, str(self.bindir / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stdout}{done.stderr}\n{_tail(self.log)}")

    def init(self):
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C",
                  "--no-sync")  # fmt: skip
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.dir}'\n"
                # No TCP at all: nothing else on the machine can collide with it or reach it.
                "listen_addresses = ''\n"
                # fsync guards against the host's crash, which no test can stage; every stop here is of
                # the server's processes, and the kernel keeps what they wrote. Migrating takes far less.
                "fsync = off\n"
            )

    def start(self):
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode="fast"):
        """``fast`` rolls back every open transaction and closes every session; ``immediate`` is a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-m", mode, "stop")

    def running(self):
        return (self.data / "postmaster.pid").exists()

    def connect(self, dbname=None, **kwargs):
        return psycopg.connect(host=self.host, port=self.port, user="postgres", dbname=dbname or self.dbname, **kwargs)

    def create_database(self):
        with self.connect("postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.dbname}"')

    def remove(self):
        if self.running():
            with contextlib.suppress(RuntimeError):  # already gone: only the files are left to remove
                self.stop("immediate")
        if self.log_copy is not None and self.log.exists():
            shutil.copyfile(self.log, self.log_copy)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_redis(tmp_path):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed: this test stops and starts a Redis of its own")
    server = PrivateRedis(binary, tmp_path / "redis")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def private_postgres(tmp_path):
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("initdb and pg_ctl are not installed: this test stops and starts a PostgreSQL of its own")
    server = PrivatePostgres(bindir, log_copy=tmp_path / "postgresql.log")
    try:
        server.init()
        server.start()
        server.create_database()
        yield server
    finally:
        server.remove()
