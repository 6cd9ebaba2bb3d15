"""A small Redis client for the call's hot path: one socket, commands packed and replies parsed in C.

Every call makes two round trips to Redis, and redis-py's Python layers cost
more than the call's decision (bench/README.md); here a command is packed by
hiredis's ``pack_command`` and the reply parsed by its ``Reader``, over a
socket opened lazily in each process (Kamailio forks its workers after loading
the script, and a socket must never be shared across processes).

Errors are redis-py's exception classes, so callers keep one ``except
redis.RedisError`` for both clients. After a timeout or a broken connection
the socket is dropped (a late reply would otherwise answer the next command),
and for ``retry_after`` seconds commands fail at once instead of each waiting
for the connect timeout: with Redis down, calls go on under the fail policy
of ``callcore.live`` without every one of them paying 250 ms.

``send`` writes a command without waiting for its reply: the reply is read
with the next command on the connection (Redis answers in order), and a
command Redis refused, or whose connection broke before its reply came, is
handed to its ``failed`` callback then: a SIP worker that waited for every
call's teardown would sleep and wake once more per call.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import select
import socket
import time
from urllib.parse import unquote, urlsplit

import hiredis
from redis import exceptions as rex

__all__ = ["RespClient", "Script"]

log = logging.getLogger(__name__)

# Commands sent without waiting whose replies are read at the latest when this many are pending: a
# process that only ever sends (a worker that gets only hang-ups for a while) must not pile them up.
MAX_PENDING = 32


class Script:
    """A Lua script sent by its SHA1, and by its body once when Redis does not know it yet."""

    def __init__(self, body: str):
        self.body = body
        self.sha = hashlib.sha1(body.encode()).hexdigest()


def _parse_url(url: str) -> dict:
    parts = urlsplit(url)
    params = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    if parts.scheme == "unix":
        target = {"path": parts.path}
        db = int(params.get("db", 0))
    elif parts.scheme in ("redis", ""):
        target = {"host": parts.hostname or "127.0.0.1", "port": parts.port or 6379}
        db = int((parts.path or "/0").lstrip("/") or 0)
    else:
        raise ValueError(f"unsupported Redis URL scheme for the call core: {parts.scheme!r}")
    return {
        **target,
        "db": db,
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
    }


class RespClient:
    def __init__(self, url: str, timeout: float = 0.25, retry_after: float = 1.0, name: str | None = None, scripts=()):
        self.options = _parse_url(url)
        # Loaded on every new connection (a restarted Redis has forgotten its scripts, and its
        # connections are new): a command sent without waiting learns of a NOSCRIPT only with the
        # process's next command, which an idle worker may not send for a long time.
        self.scripts = list(scripts)
        # Shown by CLIENT LIST: which of Redis's connections are the switch's, and of which node.
        self.name = re.sub(r"[^A-Za-z0-9._:-]", "_", name) if name else None
        self.timeout = timeout
        self.retry_after = retry_after
        self._sock = None
        self._reader = None
        self._pid = None
        self._poll = None
        self._down_until = 0.0
        self._pending = []  # the ``failed`` callbacks of commands sent and not yet answered, in order

    # -- connection ----------------------------------------------------------------

    def _connect(self):
        if time.monotonic() < self._down_until:
            raise rex.ConnectionError("Redis was unreachable moments ago; not retrying yet")
        o = self.options
        try:
            if "path" in o:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                sock.connect(o["path"])
            else:
                sock = socket.create_connection((o["host"], o["port"]), timeout=self.timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            self._down_until = time.monotonic() + self.retry_after
            raise rex.ConnectionError(f"Redis unreachable: {exc}") from exc
        self._sock, self._pid = sock, os.getpid()
        self._reader = hiredis.Reader(replyError=rex.ResponseError)
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)
        try:
            if o["password"]:
                auth = ("AUTH", o["username"], o["password"]) if o["username"] else ("AUTH", o["password"])
                self._roundtrip(auth)
            if o["db"]:
                self._roundtrip(("SELECT", o["db"]))
            if self.name:
                self._roundtrip(("CLIENT", "SETNAME", self.name))
            for script in self.scripts:
                self._roundtrip(("SCRIPT", "LOAD", script.body))
        except rex.ResponseError:
            self.close()
            raise

    def close(self, error=None):
        """Drop the connection; the commands still waiting for a reply fail with ``error``."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = self._reader = None
        pending, self._pending = self._pending, []
        error = error or rex.ConnectionError("connection closed before Redis answered")
        for failed in pending:
            self._report(failed, error)

    @staticmethod
    def _report(failed, error):
        try:
            failed(error)
        except Exception:  # one callback's trouble must not lose the others
            log.exception("a deferred Redis command's failure handler failed")

    def _answer_pending(self, wait: bool, refused: list) -> list:
        """Match replies to the pending commands, oldest first: all of them (``wait``), or only those
        already received. The refused ones join ``refused`` as (callback, error), to be reported (also
        those read before the connection broke half-way)."""
        while self._pending:
            reply = self._read_reply() if wait else self._reader.gets()
            if reply is False:
                break
            callback = self._pending.pop(0)
            if isinstance(reply, rex.ResponseError):
                refused.append((callback, reply))
        return refused

    # -- commands ------------------------------------------------------------------

    def _read_reply(self):
        reader = self._reader
        reply = reader.gets()
        while reply is False:
            data = self._sock.recv(65536)
            if not data:
                raise rex.ConnectionError("Redis closed the connection")
            reader.feed(data)
            reply = reader.gets()
        return reply

    def _roundtrip(self, args, wait=True, failed=None):
        """Send ``args``; read the replies of the commands sent before it, then (``wait``) its own.

        Without ``wait`` the command joins the pending ones and nothing is read, unless MAX_PENDING
        of them are waiting: then every reply is read.
        """
        refused = []
        if not wait:
            self._pending.append(failed)  # before sending: a send that breaks half-way fails it too
        try:
            self._sock.sendall(hiredis.pack_command(args))
            if not wait and len(self._pending) < MAX_PENDING:
                return None
            # Commands sent earlier are answered first: their replies are most likely read already.
            self._answer_pending(True, refused)
            reply = self._read_reply() if wait else None
        except TimeoutError as exc:  # the builtin: socket.timeout
            error = rex.TimeoutError("Redis did not answer in time")
            self._fail(refused, error)
            raise error from exc
        except OSError as exc:
            error = rex.ConnectionError(f"Redis connection lost: {exc}")
            self._fail(refused, error)
            raise error from exc
        except rex.ConnectionError as error:
            self._fail(refused, error)
            raise
        for callback, error in refused:
            self._report(callback, error)
        if isinstance(reply, rex.ResponseError):
            raise reply
        return reply

    def _fail(self, refused, error):
        """The connection broke: every command still pending fails, and so do the refusals read so far
        (after the close: a refusal's handler may send again, on a new connection)."""
        self.close(error)
        for callback, reply in refused:
            self._report(callback, reply)

    def _check_alive(self):
        """Before a command: a connection Redis has closed meanwhile (a restart, CLIENT KILL, its idle
        timeout) is dropped now, failing what is pending on it, so that the command goes out on a new one
        instead of being lost with the old. A poll(2) that never waits; replies that arrived are used."""
        while self._poll.poll(0):
            try:
                data = self._sock.recv(65536)
            except OSError as exc:
                data, error = b"", rex.ConnectionError(f"Redis connection lost: {exc}")
            else:
                error = rex.ConnectionError("Redis closed the connection")
            if data:
                self._reader.feed(data)
                continue
            # The replies that came before the close answer their commands; the rest fail.
            self._fail(self._answer_pending(False, []), error)
            return

    def _ensure_connected(self):
        if self._sock is not None and self._pid == os.getpid():
            self._check_alive()
        if self._sock is None or self._pid != os.getpid():
            self._sock = None  # a parent's socket stays with the parent
            self._pending = []  # and so do its commands awaiting replies
            self._connect()

    def execute(self, *args):
        self._ensure_connected()
        return self._roundtrip(args)

    def send(self, args, failed) -> None:
        """Send ``args`` without waiting: ``failed(error)`` is called if Redis refuses it or the
        connection breaks before its reply is read (it may then have run, or not). Never raises."""
        try:
            self._ensure_connected()
        except rex.RedisError as exc:
            self._report(failed, exc)
            return
        with contextlib.suppress(rex.RedisError):  # each command's failure went to its callback
            self._roundtrip(args, wait=False, failed=failed)

    def pending(self) -> int:
        """Commands sent with ``send`` whose replies have not been read yet."""
        return len(self._pending)

    def run(self, script: Script, keys, args):
        """EVALSHA, falling back to EVAL (which also caches the script) after Redis lost its script cache."""
        try:
            return self.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except rex.ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        return self.execute("EVAL", script.body, len(keys), *keys, *args)
