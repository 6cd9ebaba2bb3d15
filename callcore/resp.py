"""A small Redis client for the call's hot path: one socket, commands packed and replies parsed in C.

Every call makes two round trips to Redis (setup and teardown scripts, about
30 arguments each). Measured inside Kamailio's SIP workers, redis-py spent half
of the Python time of a call packing those arguments in Python and walking its
connection pool, retry and observability layers; here a command is packed by
hiredis's ``pack_command`` and the reply parsed by its ``Reader``, over a
socket opened lazily in each process (Kamailio forks its workers after loading
the script, and a socket must never be shared across processes).

Errors are redis-py's exception classes, so callers keep one ``except
redis.RedisError`` for both clients. After a timeout or a broken connection
the socket is dropped (a late reply would otherwise answer the next command),
and for ``retry_after`` seconds commands fail at once instead of each waiting
for the connect timeout: with Redis down, calls go on under the fail policy
of ``callcore.live`` without every one of them paying 250 ms.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time
from urllib.parse import unquote, urlsplit

import hiredis
from redis import exceptions as rex

__all__ = ["RespClient", "Script"]


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
    def __init__(self, url: str, timeout: float = 0.25, retry_after: float = 1.0):
        self.options = _parse_url(url)
        self.timeout = timeout
        self.retry_after = retry_after
        self._sock = None
        self._reader = None
        self._pid = None
        self._down_until = 0.0

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
        try:
            if o["password"]:
                auth = ("AUTH", o["username"], o["password"]) if o["username"] else ("AUTH", o["password"])
                self._roundtrip(auth)
            if o["db"]:
                self._roundtrip(("SELECT", o["db"]))
        except rex.ResponseError:
            self.close()
            raise

    def close(self):
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = self._reader = None

    # -- commands ------------------------------------------------------------------

    def _roundtrip(self, args):
        sock, reader = self._sock, self._reader
        try:
            sock.sendall(hiredis.pack_command(args))
            reply = reader.gets()
            while reply is False:
                data = sock.recv(65536)
                if not data:
                    raise rex.ConnectionError("Redis closed the connection")
                reader.feed(data)
                reply = reader.gets()
        except TimeoutError as exc:  # the builtin: socket.timeout
            self.close()
            raise rex.TimeoutError("Redis did not answer in time") from exc
        except OSError as exc:
            self.close()
            raise rex.ConnectionError(f"Redis connection lost: {exc}") from exc
        except rex.ConnectionError:
            self.close()
            raise
        if isinstance(reply, rex.ResponseError):
            raise reply
        return reply

    def execute(self, *args):
        if self._sock is None or self._pid != os.getpid():
            self._sock = None  # a parent's socket stays with the parent
            self._connect()
        return self._roundtrip(args)

    def run(self, script: Script, keys, args):
        """EVALSHA, falling back to EVAL (which also caches the script) after Redis lost its script cache."""
        try:
            return self.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except rex.ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        return self.execute("EVAL", script.body, len(keys), *keys, *args)
