"""Private servers for the billing tests that stop and start Redis and PostgreSQL for real.

The shared servers other runs use are never touched: each fixture starts a
server of its own on a free port, in a directory of its own, and removes it
afterwards.
"""

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.servers import free_port, tail


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
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stdout}{done.stderr}\n{tail(self.log)}")

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
