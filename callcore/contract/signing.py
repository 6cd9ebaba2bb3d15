"""The configuration snapshot's signature: HMAC-SHA256 over the blob, with a key the portal and the call core share.

Redis is reachable by more processes than the portal. A blob the call core
accepts only with its signature means a write to Redis alone (a leaked
password, another process's user) cannot add a trunk or a phone: it takes the
key too, which lives only in the portal's and the call core's environment.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = [
    "SIGNING_KEY_ENV",
    "SIGNING_KEY_MIN_LENGTH",
    "SignatureError",
    "signing_key",
    "sign_snapshot",
    "verify_snapshot",
]

# The environment variable both sides read the key from; `make run` generates it into the local env file.
SIGNING_KEY_ENV = "SNAPSHOT_SIGNING_KEY"
# 32 characters: 128 bits even for a key of hex digits, beyond guessing with a signed blob in hand.
SIGNING_KEY_MIN_LENGTH = 32


class SignatureError(ValueError):
    """A signing key that cannot protect the snapshot; the message names the setting."""


def signing_key(raw: str | bytes | None) -> bytes:
    """The key as bytes, or SignatureError when it is missing or too short to protect anything."""
    if isinstance(raw, str):
        raw = raw.strip().encode()
    if not raw:
        raise SignatureError(f"{SIGNING_KEY_ENV} is not set: the snapshot cannot be signed or checked")
    if len(raw) < SIGNING_KEY_MIN_LENGTH:
        raise SignatureError(f"{SIGNING_KEY_ENV} must be at least {SIGNING_KEY_MIN_LENGTH} characters")
    return raw


def sign_snapshot(key: bytes, blob: bytes) -> bytes:
    """The blob's signature as stored beside it: HMAC-SHA256 in hex (ASCII bytes)."""
    return hmac.new(key, blob, hashlib.sha256).hexdigest().encode()


def verify_snapshot(key: bytes, blob: bytes, signature: bytes | str | None) -> bool:
    """Whether ``signature`` is the blob's under ``key``; compared in constant time, a missing one never is."""
    if not signature:
        return False
    if isinstance(signature, str):
        signature = signature.encode()
    return hmac.compare_digest(sign_snapshot(key, blob), bytes(signature))
