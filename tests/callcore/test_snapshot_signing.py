"""The signed snapshot: the call core installs only a blob signed with the key it shares with the portal.

Whoever can write to Redis (another process's user, a leaked password) must not
be able to add a trunk: an unsigned, altered or foreign-signed blob is refused,
the snapshot held is kept, and a call from the would-be trunk stays illegal.
"""

import logging
import os

import msgspec
import pytest

from callcore import contract
from callcore.decide import Action, decide
from callcore.snapshot import SnapshotLoader

from . import factories as F

ATTACKER_IP = "198.51.100.77"


def key() -> bytes:
    return contract.signing_key(os.environ[contract.SIGNING_KEY_ENV])


def install(client, prefix, version, blob, signature):
    """Lay a blob out as the publisher does, with whatever signature the test gives (None: none at all)."""
    keys = contract.SnapshotKeys(prefix)
    client.set(keys.blob(version), blob)
    if signature is not None:
        client.set(keys.signature(version), signature)
    client.set(keys.current, version)


@pytest.fixture
def blob():
    return contract.encode_snapshot(F.snapshot())


@pytest.fixture
def loader(snapshot_redis, redis_prefix, tmp_path):
    loader = SnapshotLoader(snapshot_redis, redis_prefix, tmp_path / "snapshot.bin", signing_key=key())
    yield loader
    loader.stop()


@pytest.fixture
def loaded(loader, snapshot_redis, redis_prefix, blob):
    """A loader holding version 1, correctly signed."""
    install(snapshot_redis, redis_prefix, 1, blob, contract.sign_snapshot(key(), blob))
    assert loader.refresh() is True
    return loader


def test_a_correctly_signed_snapshot_is_installed(loaded):
    assert loaded.version == 1 and loaded.rejected == 0


def test_an_unsigned_snapshot_is_refused_and_the_one_held_kept(loaded, snapshot_redis, redis_prefix, blob, caplog):
    install(snapshot_redis, redis_prefix, 2, blob, None)

    with caplog.at_level(logging.ERROR, logger="callcore.snapshot"):
        assert loaded.refresh() is False

    assert (loaded.version, loaded.rejected) == (1, 1)
    assert "snapshot version 2 refused, keeping version 1: the blob has no signature" in caplog.text


def test_an_altered_snapshot_is_refused(loaded, snapshot_redis, redis_prefix, blob):
    signature = contract.sign_snapshot(key(), blob)
    altered = contract.encode_snapshot(F.snapshot(customer={"credit_limit": "1000000.0000"}))
    install(snapshot_redis, redis_prefix, 2, altered, signature)

    assert loaded.refresh() is False
    assert (loaded.version, loaded.rejected) == (1, 1)
    assert "does not match its signature" in loaded.last_error


def test_a_snapshot_signed_with_another_key_is_refused(loaded, snapshot_redis, redis_prefix, blob):
    install(snapshot_redis, redis_prefix, 2, blob, contract.sign_snapshot(b"x" * 40, blob))

    assert loaded.refresh() is False
    assert loaded.version == 1


def test_a_signature_for_a_blob_overwritten_in_place_does_not_carry_over(loader, snapshot_redis, redis_prefix, blob):
    # A call core (re)starting while someone rewrote the current version's blob under its old signature.
    install(snapshot_redis, redis_prefix, 1, blob, contract.sign_snapshot(key(), blob))
    snapshot_redis.set(contract.SnapshotKeys(redis_prefix).blob(1), blob[:-1] + bytes([blob[-1] ^ 1]))

    assert loader.refresh() is False
    assert loader.current is None


def test_without_a_key_every_snapshot_is_refused(snapshot_redis, redis_prefix, tmp_path, blob):
    install(snapshot_redis, redis_prefix, 1, blob, contract.sign_snapshot(key(), blob))
    keyless = SnapshotLoader(snapshot_redis, redis_prefix, tmp_path / "s.bin", signing_key="")

    assert keyless.refresh() is False
    assert "SNAPSHOT_SIGNING_KEY" in keyless.last_error


def test_a_short_key_is_refused_with_its_name():
    with pytest.raises(contract.SignatureError, match="SNAPSHOT_SIGNING_KEY must be at least 32 characters"):
        contract.signing_key("too-short")


def test_an_altered_disk_copy_is_not_used(loaded, redis_prefix, tmp_path):
    data = loaded.state_path.read_bytes()
    loaded.state_path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    offline = SnapshotLoader("redis://127.0.0.1:1/0", redis_prefix, loaded.state_path, signing_key=key())

    assert offline.load_from_disk() is False
    assert offline.current is None and offline.rejected == 1


def test_the_signed_disk_copy_is_used_when_redis_is_away(loaded, redis_prefix):
    offline = SnapshotLoader("redis://127.0.0.1:1/0", redis_prefix, loaded.state_path, signing_key=key())

    assert offline.load_from_disk() is True
    assert offline.version == 1


def test_a_trunk_written_into_redis_directly_is_not_honoured(loaded, snapshot_redis, redis_prefix):
    """The attack the signature stops: a new version with a gateway for the attacker's address, made current."""
    facts = F.facts(source_ip=ATTACKER_IP)
    assert decide(facts, loaded.current, None).action is Action.REJECT  # illegal before

    world = F.snapshot()
    trunk = F.mapping_gateway(id=99, remote_ips=(ATTACKER_IP,))
    forged = msgspec.structs.replace(world, mapping_gateways=(*world.mapping_gateways, trunk))
    forged_blob = contract.encode_snapshot(forged)
    for signature in (None, contract.sign_snapshot(key(), contract.encode_snapshot(world)), b"0" * 64):
        install(snapshot_redis, redis_prefix, 2, forged_blob, signature)
        snapshot_redis.publish(contract.SnapshotKeys(redis_prefix).channel, 2)
        loaded._refused_current = None  # each forgery is looked at afresh
        assert loaded.refresh() is False

    decision = decide(facts, loaded.current, None)
    assert (decision.action, decision.reason) == (Action.REJECT, contract.EndReason.ILLEGAL_SOURCE)
    assert loaded.current.mapping_gateway_for(ATTACKER_IP) is None
    # The same blob signed with the shared key is what the portal would publish: that one is honoured.
    install(snapshot_redis, redis_prefix, 3, forged_blob, contract.sign_snapshot(key(), forged_blob))
    assert loaded.refresh() is True
    assert loaded.current.mapping_gateway_for(ATTACKER_IP).id == 99
