"""The CDR sink: every finished call's record goes to the Redis stream, or to a local spool.

The stream is the hand-over to the worker, which inserts each record once
(``ON CONFLICT`` on the call's unique key) and only then acknowledges it, so a
record written twice (replayed from the spool after Redis came back, say) is
still counted once. The stream is never trimmed by length here: trimming could
drop records the worker has not read yet.

When Redis does not take a record, it is appended as one JSON line to the
spool file (a single O_APPEND write, so lines from Kamailio's many processes
do not interleave) and replayed by whichever process next finds Redis up.
Replay first renames the spool aside, so new records keep going to a fresh
file and no line is replayed by two processes.

A writer holds a shared ``flock`` on the spool file while it writes, and the
replay renames it only under an exclusive one; a writer that opened the file
just before the rename sees that the path no longer names its file and writes
again to the new one. Without this, a line written into the renamed file after
the replay had read it was lost with the file.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path

import msgspec
import redis

from callcore.contract import (
    CallState,
    CdrRecord,
    EndDirection,
    Keys,
    RouteState,
    cdr_call_uuid,
    encode_cdr,
    json_text,
    lost_call_record,  # noqa: F401 - built in the contract, so the worker's lost-node job builds the same
)
from callcore.resp import RespClient

log = logging.getLogger("callcore.cdr")


# The live-call registry entry's JSON, written on every call and read back after a restart.
dumps = json_text
loads = msgspec.json.decode


def _uuid(record) -> str | None:
    return record.get("call_uuid") if isinstance(record, dict) else record.call_uuid


class Spool:
    """An append-only file of CDR lines waiting for Redis."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, line: str) -> None:
        data = (line.rstrip("\n") + "\n").encode()
        while True:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
                if not self._is_current(fd):
                    continue  # a replay renamed this file away meanwhile: write to the new spool
                os.write(fd, data)
                # A crash of callcore must not lose the record; a crash of the whole
                # host is what Redis AOF and this fsync are for.
                os.fsync(fd)
                return
            finally:
                os.close(fd)  # releases the lock

    def _is_current(self, fd: int) -> bool:
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            return False
        opened = os.fstat(fd)
        return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)

    def pending(self) -> bool:
        try:
            if self.path.stat().st_size > 0:
                return True
        except FileNotFoundError:  # never written, or renamed by a replay this very moment
            pass
        return any(self._claimed())

    def _claimed(self):
        return sorted(self.path.parent.glob(self.path.name + ".replay.*"))

    def replay(self, send) -> int:
        """Send every spooled line with ``send(line)``; return how many were sent.

        A line that fails to send stays on disk for the next replay.
        """
        lock_fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_WRONLY | os.O_CREAT, 0o640)
        try:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # another process is replaying right now
            return self._replay_locked(send)
        finally:
            os.close(lock_fd)

    def _claim(self) -> None:
        """Rename the spool aside once no writer is in the middle of a line."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # waits for writers holding LOCK_SH
            if os.fstat(fd).st_size > 0 and self._is_current(fd):
                claim = self.path.with_name(f"{self.path.name}.replay.{os.getpid()}.{time.time_ns()}")
                os.rename(self.path, claim)
        finally:
            os.close(fd)

    def _replay_locked(self, send) -> int:
        self._claim()
        sent = 0
        for claim in self._claimed():
            lines = claim.read_text().splitlines()
            for index, line in enumerate(lines):
                if not line.strip():
                    continue
                try:
                    send(line)
                except redis.RedisError:
                    # Put the unsent rest back in the spool and stop: Redis is away again.
                    for rest in lines[index:]:
                        self.append(rest)
                    claim.unlink()
                    return sent
                sent += 1
            claim.unlink()
        return sent


class CdrSink:
    """Appends CDRs to the stream ``{prefix}:cdr``; falls back to the spool when Redis is away."""

    def __init__(
        self,
        url: str,
        prefix: str,
        spool_path: str | os.PathLike,
        timeout: float = 0.25,
        client_name: str | None = None,
    ):
        self.url = url
        self.stream = Keys(prefix).cdr_stream
        self.spool = Spool(spool_path)
        self.timeout = timeout
        # Refused calls (an illegal-call flood) each write one: the hot path's client, not redis-py's.
        self.resp = RespClient(url, timeout=timeout, name=client_name)

    def _xadd(self, line: str) -> None:
        self.resp.execute("XADD", self.stream, "*", "cdr", line)

    def emit(self, record: CdrRecord) -> bool:
        """True when the record reached Redis, False when it was spooled (a dict of its fields goes alike)."""
        line = encode_cdr(record)
        try:
            self._xadd(line)
        except redis.RedisError as exc:
            log.warning("CDR %s spooled, Redis unavailable: %r", _uuid(record), exc)
            self.spool.append(line)
            return False
        if self.spool.pending():
            self.replay()
        return True

    def emit_later(self, record: CdrRecord) -> None:
        """``emit`` without waiting for Redis: the reply is read with this sink's next command, and
        the record is spooled then if Redis refused it or the connection broke. For the SIP workers,
        where a flood of refused calls would otherwise hold a worker for a round trip per call."""
        line = encode_cdr(record)

        def failed(error):
            log.warning("CDR %s spooled, Redis unavailable: %r", _uuid(record), error)
            self.spool.append(line)

        self.resp.send(("XADD", self.stream, "*", "cdr", line), failed)

    def spool_line(self, line: str) -> None:
        self.spool.append(line)

    def replay(self) -> int:
        try:
            return self.spool.replay(self._xadd)
        except OSError as exc:
            log.error("CDR spool replay failed: %r", exc)
            return 0


# ---------------------------------------------------------------------------
# Building records (the field names are the CDR table's; times are epoch ms)


# Bounded and unique per attempt; the lost-call record (contract.lost) builds the same key.
_call_uuid = cdr_call_uuid


def refusal_record(
    *, call_id, start_ms, source_ip, source_port, user_agent, caller, callee, reason, billing_mode, decision,
    snapshot_version, node, decision_trace="",
) -> CdrRecord:  # fmt: skip
    """The CDR of a call refused before any vendor was tried (illegal calls included)."""
    record = CdrRecord(
        call_uuid=_call_uuid(node, call_id, start_ms),
        caller_call_id=call_id,
        start_ms=start_ms,
        stop_ms=start_ms,
        caller_number=caller,
        callee_number=callee,
        caller_ip=source_ip,
        caller_port=source_port,
        caller_user_agent=user_agent[:200],
        end_direction=EndDirection.SERVER,
        end_reason=reason.code,
        sip_status=reason.sip_status,
        billing_mode=billing_mode,
        node=node,
        snapshot_version=snapshot_version,
        decision_trace=decision_trace,
    )
    if decision is not None:
        if decision.account is not None:
            record.account_id, record.account_name = decision.account.id, decision.account.name
        if decision.mapping_gateway is not None:
            record.mapping_gateway_id = decision.mapping_gateway.id
            record.mapping_gateway_name = decision.mapping_gateway.name
        if decision.plan is not None:
            record.caller_number_out, record.callee_number_out = decision.plan.caller, decision.plan.callee
            record.callee_number_routed = decision.plan.callee
            if decision.plan.phone is not None:
                record.phone_id = decision.plan.phone.id
    return record


def call_record(
    state: CallState, *, route: RouteState, answer_ms, stop_ms, ring_ms, tried, direction, reason, sip_status,
    callee_call_id, node, disconnected_by="",
) -> CdrRecord:  # fmt: skip
    """The CDR of a call that was sent to vendors, from the state the adapter kept in the dialog."""
    start_ms = state.start_ms
    return CdrRecord(
        call_uuid=_call_uuid(node, state.call_id, start_ms),
        caller_call_id=state.call_id,
        callee_call_id=callee_call_id,
        start_ms=start_ms,
        answer_ms=answer_ms,
        stop_ms=stop_ms,
        hold_time_ms=(stop_ms - answer_ms) if answer_ms else 0,
        pdd_ms=(ring_ms - start_ms) if ring_ms else None,
        caller_number=state.caller_in,
        callee_number=state.callee_in,
        callee_number_routed=state.callee,
        caller_number_out=route.caller,
        callee_number_out=route.callee,
        caller_ip=state.source_ip,
        caller_port=state.source_port,
        caller_user_agent=state.user_agent,
        vendor_ip=route.host,
        account_id=state.account_id,
        account_name=state.account_name,
        vendor_account_id=route.vendor_account_id,
        mapping_gateway_id=state.mapping_gateway_id,
        mapping_gateway_name=state.mapping_gateway_name,
        routing_gateway_id=route.gateway_id,
        routing_gateway_name=route.gateway_name,
        phone_id=state.phone_id,
        rate_prefix=route.rate_prefix,
        rate_area=route.rate_area,
        vendor_rate_prefix=route.vendor_rate_prefix,
        vendor_rate_area=route.vendor_rate_area,
        end_direction=direction,
        end_reason=reason.code,
        sip_status=sip_status,
        billing_mode=state.billing_mode,
        vendors_tried=tried,
        node=node,
        snapshot_version=state.snapshot_version,
        decision_trace=state.decision_trace,
        disconnected_by=disconnected_by,
    )
