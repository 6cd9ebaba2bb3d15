"""The call core's copy of the configuration: loaded from Redis, indexed for the hot path.

The portal publishes a versioned blob (see ``callcore.contract``): ``current``
names the version, ``snapshot:{version}`` holds the blob, and the version is
announced on a channel. ``SnapshotLoader`` fetches it, validates it, builds an
``IndexedSnapshot`` and swaps one reference, so a call that already holds the
previous index finishes on it undisturbed. It listens on the channel and polls
as well, since a subscriber misses whatever is published while it reconnects.

It never lets go of a good snapshot: a malformed blob, or one without the
portal's signature (``contract.signing``: whoever can write to Redis cannot
add a trunk without the key), is refused and counted, and the last good blob
is kept on disk, with its signature, so the switch can start, and route, while
Redis is away.

Only the standard library, redis and ``callcore.contract`` are imported here; the indexes
themselves are ``callcore.snapshot_index``'s (pure, so the portal's routing simulator builds the same).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from pathlib import Path

import redis

from callcore import contract
from callcore.snapshot_index import IndexedSnapshot, ListGroupIndex, PrefixIndex, now_ms  # noqa: F401

logger = logging.getLogger(__name__)

_DISK_MAGIC = b"callcore-snapshot"


class SnapshotLoader:
    """Keeps the newest good snapshot in ``current``, from Redis or, failing that, from disk.

    ``start()`` loads once and starts the listener thread; ``current`` is then
    read by every call without locking (one attribute read). ``refresh()`` may
    also be called directly; it is serialised, so the listener and a caller
    never install versions out of order.
    """

    def __init__(
        self,
        redis_client: redis.Redis | str,
        prefix: str,
        state_path: str | os.PathLike,
        *,
        poll_interval: float = 3.0,
        signing_key: str | bytes | None = None,
    ):
        """``signing_key``: the HMAC key shared with the portal, by default SNAPSHOT_SIGNING_KEY's; without a
        usable one every blob is refused (``python -m callcore`` does not start without it)."""
        if isinstance(redis_client, str):
            # Short timeouts: the listener must notice a dead Redis quickly and keep serving from memory.
            redis_client = redis.Redis.from_url(
                redis_client, socket_connect_timeout=1, socket_timeout=5, health_check_interval=30
            )
        self.redis = redis_client
        self.keys = contract.SnapshotKeys(prefix)
        self.state_path = Path(state_path)
        self.poll_interval = poll_interval
        self.rejected = 0
        self.last_error: str | None = None
        if signing_key is None:
            signing_key = os.environ.get(contract.SIGNING_KEY_ENV)
        try:
            self._signing_key: bytes | None = contract.signing_key(signing_key)
        except contract.SignatureError as exc:
            logger.error("%s: every snapshot will be refused", exc)
            self._signing_key = None
        self._current: IndexedSnapshot | None = None
        self._refused_current: bytes | None = None
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> IndexedSnapshot | None:
        return self._current

    @property
    def version(self) -> int | None:
        current = self._current
        return None if current is None else current.version

    # -- loading ------------------------------------------------------------

    def start(self, *, listen: bool = True) -> IndexedSnapshot | None:
        """Load from Redis, or from disk when Redis is unreachable or empty; then listen if asked."""
        try:
            self.refresh()
        except redis.RedisError as exc:
            logger.warning("Redis unreachable at start (%s): trying the snapshot on disk", exc)
        if self._current is None:
            self.load_from_disk()
        if listen:
            self.start_listener()
        return self._current

    def refresh(self) -> bool:
        """Install the version ``current`` names if it is not ours; True if a new snapshot was installed.

        Raises redis.RedisError when Redis is unreachable; the snapshot held is kept.
        """
        with self._refresh_lock:
            raw = self.redis.get(self.keys.current)
            # A refused version is remembered so polling does not fetch and refuse it again every few seconds.
            if raw is None or raw == self._refused_current:
                return False
            try:
                version = int(raw)
            except ValueError:
                self._refused_current = raw
                self._reject(None, f"{self.keys.current} holds {raw[:40]!r}, not a version number")
                return False
            if version == self.version:
                return False
            blob, signature = self.redis.mget(self.keys.blob(version), self.keys.signature(version))
            if blob is None:
                logger.error("snapshot version %s is current but %s is missing", version, self.keys.blob(version))
                return False
            indexed = self._index(version, blob, signature)
            if indexed is None:
                self._refused_current = raw
                return False
            self._current = indexed
            self._save_to_disk(version, blob, signature)
            logger.info("snapshot version %s installed", version)
            return True

    def load_from_disk(self) -> bool:
        """Install the last good snapshot kept on disk; False if there is none or it is unreadable."""
        try:
            data = self.state_path.read_bytes()
        except FileNotFoundError:
            logger.error("no snapshot on disk at %s: no configuration until Redis answers", self.state_path)
            return False
        except OSError as exc:
            logger.error("cannot read the snapshot on disk at %s: %s", self.state_path, exc)
            return False
        header, _, blob = data.partition(b"\n")
        magic, _, rest = header.partition(b" ")
        version_text, _, signature = rest.partition(b" ")
        if magic != _DISK_MAGIC or not version_text.isdigit():
            logger.error("%s is not a snapshot file written by this loader", self.state_path)
            return False
        with self._refresh_lock:
            indexed = self._index(int(version_text), blob, signature)
            if indexed is None:
                return False
            self._current = indexed
        logger.warning("running on snapshot version %s from disk (%s)", indexed.version, self.state_path)
        return True

    def _index(self, version: int, blob: bytes, signature: bytes | None) -> IndexedSnapshot | None:
        if self._signing_key is None:
            self._reject(version, f"{contract.SIGNING_KEY_ENV} is not set or too short: no signature can be checked")
            return None
        if not contract.verify_snapshot(self._signing_key, blob, signature):
            what = "has no signature" if not signature else "does not match its signature (altered, or another key)"
            self._reject(version, f"the blob {what}")
            return None
        try:
            return IndexedSnapshot(contract.decode_snapshot(blob), version)
        except contract.SnapshotError as exc:
            self._reject(version, str(exc))
        except Exception as exc:
            # A blob that decodes but cannot be indexed is just as unusable; the switch must not stop over it.
            logger.exception("snapshot version %s could not be indexed", version)
            self._reject(version, f"{type(exc).__name__}: {exc}")
        return None

    def _reject(self, version: int | None, reason: str) -> None:
        self.rejected += 1
        self.last_error = reason
        logger.error(
            "snapshot version %s refused, keeping version %s: %s (%d refused so far)",
            version,
            self.version,
            reason,
            self.rejected,
        )

    def _save_to_disk(self, version: int, blob: bytes, signature: bytes) -> None:
        # Written beside the target and renamed over it, so a crash leaves the old file or the new, never half.
        try:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=self.state_path.name + ".", dir=self.state_path.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(b"%s %d %s\n" % (_DISK_MAGIC, version, signature))
                    out.write(blob)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temp, self.state_path)
            except BaseException:
                os.unlink(temp)
                raise
        except OSError as exc:
            logger.error("could not keep snapshot version %s on disk at %s: %s", version, self.state_path, exc)

    # -- listening ----------------------------------------------------------

    def start_listener(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._listen, name="snapshot-listener", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(5.0 if timeout is None else timeout)
        self._thread = None

    def _listen(self) -> None:
        pubsub = None
        backoff = 0.5
        next_poll = 0.0
        while not self._stop.is_set():
            try:
                if pubsub is None:
                    pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(self.keys.channel)
                    # Whatever was published while we were not subscribed is only visible by asking.
                    self.refresh()
                    next_poll = time.monotonic() + self.poll_interval
                    backoff = 0.5
                # Woken at least twice a second so stop() is honoured promptly whatever the poll interval.
                wait = max(0.0, min(next_poll - time.monotonic(), 0.5))
                message = pubsub.get_message(timeout=wait)
                if message is not None or time.monotonic() >= next_poll:
                    self.refresh()
                    next_poll = time.monotonic() + self.poll_interval
            except redis.RedisError as exc:
                logger.warning("snapshot listener: Redis error (%s); retrying in %.1f s", exc, backoff)
                pubsub = _close_quietly(pubsub)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.poll_interval)
            except Exception:
                logger.exception("snapshot listener failed; retrying")
                pubsub = _close_quietly(pubsub)
                self._stop.wait(self.poll_interval)
        _close_quietly(pubsub)


def _close_quietly(pubsub) -> None:
    if pubsub is not None:
        try:
            pubsub.close()
        except Exception:  # it is being thrown away because its connection already failed
            logger.debug("closing the snapshot pubsub failed", exc_info=True)
    return None
