"""The hot path's Redis client against the real Redis, and against sockets that misbehave."""

from __future__ import annotations

import socket
import threading
import time
import uuid

import pytest
import redis
from django.conf import settings

from callcore.resp import MAX_PENDING, RespClient, Script, _parse_url


@pytest.fixture
def key():
    name = f"sstest-resp-{uuid.uuid4().hex[:12]}"
    yield name
    redis.Redis.from_url(settings.REDIS_URL).delete(name, f"{name}:s")


def test_commands_and_their_replies(key):
    client = RespClient(settings.REDIS_URL)
    assert client.execute("SET", key, 42) == b"OK"
    assert client.execute("INCRBY", key, 8) == 50
    assert client.execute("GET", key) == b"50"
    assert client.execute("GET", f"{key}:missing") is None
    entry = client.execute("XADD", f"{key}:s", "*", "cdr", '{"a":"é"}')
    assert redis.Redis.from_url(settings.REDIS_URL).xrange(f"{key}:s") == [(entry, {b"cdr": '{"a":"é"}'.encode()})]


def test_a_script_unknown_to_redis_is_sent_once_by_body_then_by_sha(key):
    # A body no other run has loaded: the first EVALSHA must meet NOSCRIPT.
    script = Script(f"-- {uuid.uuid4()}\nreturn {{redis.call('INCRBY', KEYS[1], ARGV[1]), ARGV[2]}}")
    client = RespClient(settings.REDIS_URL)
    plain = redis.Redis.from_url(settings.REDIS_URL)
    assert plain.script_exists(script.sha) == [False]
    assert client.run(script, [key], [5, "x"]) == [5, b"x"]
    assert plain.script_exists(script.sha) == [True]
    assert client.run(script, [key], [2, "y"]) == [7, b"y"]


def test_an_error_reply_is_raised_and_the_connection_stays_usable(key):
    client = RespClient(settings.REDIS_URL)
    client.execute("SET", key, "text")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        client.execute("INCR", key)
    assert client.execute("GET", key) == b"text"


@pytest.fixture
def silent_server():
    """A server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []
    stop = threading.Event()

    def serve():
        server.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_no_answer_is_a_timeout_and_the_next_command_uses_a_new_connection(silent_server):
    port, accepted = silent_server
    client = RespClient(f"redis://127.0.0.1:{port}/0", timeout=0.1)
    with pytest.raises(redis.TimeoutError):
        client.execute("PING")
    # A late answer must never be taken for the next command's: the socket is gone.
    assert client._sock is None
    with pytest.raises(redis.TimeoutError):
        client.execute("PING")
    assert len(accepted) == 2


def test_an_unreachable_redis_fails_fast_until_the_retry_delay_has_passed():
    spare = socket.socket()
    spare.bind(("127.0.0.1", 0))
    port = spare.getsockname()[1]
    spare.close()  # nothing listens there now
    client = RespClient(f"redis://127.0.0.1:{port}/0", timeout=0.2, retry_after=0.3)
    with pytest.raises(redis.ConnectionError, match="unreachable:"):
        client.execute("PING")
    with pytest.raises(redis.ConnectionError, match="moments ago"):
        client.execute("PING")
    time.sleep(0.35)
    with pytest.raises(redis.ConnectionError, match="unreachable:"):
        client.execute("PING")


def test_a_forked_process_opens_its_own_connection(key):
    client = RespClient(settings.REDIS_URL)
    client.execute("SET", key, 1)
    parent_socket = client._sock
    client._pid = -1  # as seen from a child after fork
    client.execute("INCR", key)
    assert client._sock is not parent_socket


# ---------------------------------------------------------------------------
# Commands sent without waiting


def test_a_sent_command_runs_and_its_reply_is_read_with_the_next_command(key):
    client = RespClient(settings.REDIS_URL)
    failures = []
    client.send(("SET", key, "sent"), failures.append)
    assert client.pending() == 1
    assert client.execute("APPEND", key, "!") == 5  # its own reply, not the SET's OK; the SET ran first
    assert client.pending() == 0
    assert failures == []


def test_a_refused_sent_command_reaches_its_callback_and_the_next_command_is_unharmed(key):
    client = RespClient(settings.REDIS_URL)
    client.execute("SET", key, "text")
    failures, fine = [], []
    client.send(("INCR", key), failures.append)
    client.send(("GET", key), fine.append)
    assert client.execute("STRLEN", key) == 4
    assert [type(f) for f in failures] == [redis.ResponseError] and "not an integer" in str(failures[0])
    assert fine == []


def test_sent_commands_fail_when_the_connection_breaks_before_their_replies(silent_server):
    port, _accepted = silent_server
    client = RespClient(f"redis://127.0.0.1:{port}/0", timeout=0.1)
    failures = []
    client.send(("SET", "a", 1), failures.append)
    client.send(("SET", "b", 2), failures.append)
    assert failures == []
    with pytest.raises(redis.TimeoutError):
        client.execute("PING")
    assert [type(f) for f in failures] == [redis.TimeoutError, redis.TimeoutError]
    assert client.pending() == 0


def test_a_send_to_an_unreachable_redis_fails_at_once_and_never_raises():
    spare = socket.socket()
    spare.bind(("127.0.0.1", 0))
    port = spare.getsockname()[1]
    spare.close()
    failures = []
    RespClient(f"redis://127.0.0.1:{port}/0", timeout=0.2).send(("PING",), failures.append)
    assert [type(f) for f in failures] == [redis.ConnectionError]


def test_replies_are_read_once_max_pending_commands_wait(key):
    client = RespClient(settings.REDIS_URL)
    failures = []
    for _ in range(MAX_PENDING - 1):
        client.send(("INCR", key), failures.append)
    assert client.pending() == MAX_PENDING - 1
    client.send(("INCR", key), failures.append)
    assert client.pending() == 0
    assert client.execute("GET", key) == str(MAX_PENDING).encode()
    assert failures == []


def test_a_connection_redis_closed_meanwhile_is_replaced_before_the_next_command(key):
    client = RespClient(settings.REDIS_URL)
    client_id = client.execute("CLIENT", "ID")
    failures = []
    client.send(("SET", key, "before"), failures.append)
    client.execute("PING")  # its reply read: nothing pending
    client.send(("APPEND", key, "+"), failures.append)
    deadline = time.monotonic() + 2
    while client.pending() and time.monotonic() < deadline:  # Redis ran the APPEND, its reply is on its way
        if redis.Redis.from_url(settings.REDIS_URL).get(key) == b"before+":
            break
    redis.Redis.from_url(settings.REDIS_URL).client_kill_filter(_id=client_id)
    time.sleep(0.1)
    # The next command goes out on a new connection instead of being lost with the old one; the
    # APPEND's reply, which came before the close, answers it: nothing failed.
    assert client.execute("APPEND", key, "!") == len("before+!")
    assert client.execute("CLIENT", "ID") != client_id
    assert failures == []


def test_a_forked_process_does_not_answer_for_its_parent_s_sent_commands(key):
    client = RespClient(settings.REDIS_URL)
    failures = []
    client.send(("SET", key, 1), failures.append)
    client._pid = -1  # as seen from a child after fork
    client.execute("INCR", key)
    assert client.pending() == 0 and failures == []


@pytest.mark.parametrize(
    "url, expected",
    [
        ("redis://127.0.0.1:6379/0", {"host": "127.0.0.1", "port": 6379, "db": 0}),
        ("redis://redis.example:6380/3", {"host": "redis.example", "port": 6380, "db": 3}),
        ("redis://:s%40cret@h/1", {"host": "h", "port": 6379, "db": 1, "password": "s@cret"}),
        ("redis://user:pw@h:1/2", {"host": "h", "port": 1, "db": 2, "username": "user", "password": "pw"}),
        ("unix:///run/redis.sock?db=4", {"path": "/run/redis.sock", "db": 4}),
    ],
)
def test_redis_urls(url, expected):
    assert _parse_url(url) == {"username": None, "password": None, **expected}


def test_an_unsupported_url_scheme_is_refused_at_start():
    with pytest.raises(ValueError, match="rediss"):
        RespClient("rediss://h:6380/0")
