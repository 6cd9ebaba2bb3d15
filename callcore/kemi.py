"""The KEMI adapter: Kamailio calls these methods; they read SIP facts, ask ``decide``, apply the answer.

Kept thin on purpose: what to do with a call is decided in ``callcore.decide``
(pure, tested row by row); counters live in ``callcore.live``; CDRs go out
through ``callcore.cdr``. This module only speaks Kamailio.

Kamailio calls in through ``python_exec`` from the routes of kamailio.cfg.tmpl:
each initial request, each vendor attempt's branch, reply and failure route,
and the dialog events. In-dialog requests (ACK, BYE, re-INVITE) are relayed by
the configuration's own request_route and never come here: nothing is decided
for them.

Kamailio 5.6 pitfalls this file works around (see DESIGN.md):
every route catches its exceptions and returns an int (an uncaught one drops
the request silently); connections are
opened lazily per process (Kamailio forks after loading this script); the
dialog timeout ends calls without a ``dialog:end`` event, so the server-hangup
CDR is written on ``dialog:timeout``, and that route sends the BYEs itself
(the module's own timeout BYE can free a dialog twice: ``_bye_on_timeout``); Kamailio's own 408 carries no reply, so
the last vendor code is kept in a dialog variable.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time

import KSR  # provided by app_python3
import msgspec

from callcore import bans as bans_mod
from callcore import cdr as cdr_mod
from callcore import decide as dec
from callcore import geo, media, sipsyntax
from callcore.contract import (
    ROUTE_STATS_POLL_S,
    AnsweredCall,
    BanCause,
    BillingMode,
    Keys,
    Registration,
    RouteStats,
    VendorAttempt,
    decode_answered,
    decode_disconnect,
    decode_state,
    decode_tried,
    encode_answered,
    encode_cdr,
    encode_disconnect,
    encode_registration,
    encode_state,
    encode_tried,
    registration_field,
)
from callcore.live import LiveState
from callcore.resp import RespClient
from callcore.setup_types import RouteLimit
from callcore.snapshot import SnapshotLoader

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
PREFIX = os.environ.get("REDIS_PREFIX", "ss")
STATE_DIR = os.environ.get("CALLCORE_STATE_DIR", "var")
NODE = os.environ.get("SS_NODE") or socket.gethostname()
CLIENT_NAME = f"callcore:{NODE}"  # of this node's Redis connections, in CLIENT LIST
SNAPSHOT_POLL_S = float(os.environ.get("SS_SNAPSHOT_POLL_SECONDS", "1"))
RING_TIMEOUT_MS = int(os.environ.get("SS_RING_TIMEOUT_SECONDS", "120")) * 1000
# A directory to dump each SIP worker's cProfile into (every 1000 requests): where Python time goes
# inside Kamailio, which no profiler outside the process can tell. Costs a lot; never in production.
PROFILE_DIR = os.environ.get("SS_PROFILE_DIR", "")
# A directory for each process's CPU time per KEMI entry point (callcore.cpuacct); never in production.
CPU_ACCOUNT_DIR = os.environ.get("SS_CPU_ACCOUNT_DIR", "")
# In-dialog OPTIONS keep-alives to both sides (kamailio.cfg.tmpl; 0 = off).
KEEPALIVE = int(os.environ.get("SS_DIALOG_KEEPALIVE_SECONDS", "30")) > 0
DEFAULT_MAX_DURATION_S = int(os.environ.get("SS_DEFAULT_MAX_DURATION", str(dec.DEFAULT_MAX_DURATION_S)))
# The vendors' ASR for the Best ASR route policy, published by the worker (billing.route_stats).
ROUTE_ASR_KEY = Keys(PREFIX).route_asr
# This node's renewal index of quota grants, worked by its grant timer (rtimer SS_GRANTS).
GRANTS_KEY = Keys(PREFIX).grants(NODE)
# The htable (shared by this node's processes) where the grant timer marks a call it ends, for its timeout.
CUT_TABLE = "sscut"
# Beside it, who asked for the cut (Keys.disconnects' "by"), for the CDR's disconnected_by.
CUT_BY_TABLE = "ssby"
CUT_REASONS = {1: dec.EndReason.BALANCE_EXHAUSTED, 2: dec.EndReason.MAX_DURATION}
# Calls ended on request (Keys.disconnects: an anti-fraud block, an operator): any end reason, from 10 on.
CUT_REASONS.update({10 + i: reason for i, reason in enumerate(dec.EndReason)})
CUT_CODES = {reason.code: number for number, reason in CUT_REASONS.items() if number >= 10}
# Each call still setting up: its INVITE's CSeq number, which the transaction is found by to cancel it on request.
CSEQ_TABLE = "sscseq"
DISCONNECTS_PER_TICK = 200
# The registrar's expiry bounds (kamailio.cfg.tmpl) and its default, to record each contact's expiry as it does.
REG_MIN_S, REG_MAX_S, REG_DEFAULT_S = 60, 3600, 3600
# The node's cache of the shared bans (callcore.bans): kamailio.cfg.tmpl drops its sources before any Python.
BAN_TABLE = "ipban"
# The operator's own networks, never banned (checked by `python -m callcore` before Kamailio starts).
OWN_NETWORKS = bans_mod.parse_networks(os.environ.get("SS_BAN_ALLOW_NETWORKS", ""))
# pv_auth_check's answers that are a guess at a password (wrong answer, another user's name, a replayed
# nonce); a stale nonce (-4) is a phone's ordinary re-challenge.
AUTH_GUESSES = frozenset({-2, -6, -8})
# Digest answers for an unknown username are checked against this: the same work, the same answer as for
# a known user with a wrong password, so a scanner cannot tell them apart, by timing either.
DECOY_HA1 = os.urandom(16).hex()


# The node's Prometheus metrics (kamailio.cfg.tmpl's xhttp_prom, on SS_METRICS_PORT; 0: not served, not counted).
METRICS = int(os.environ.get("SS_METRICS_PORT") or 0) > 0
PROM = KSR.xhttp_prom if METRICS else None


# Dialog variable names.
V_STATE = "ss"  # the call's state (contract.CallState)
V_ATTEMPT = "att"  # index of the route being tried
V_TRIED = "tried"  # the vendors tried so far (a list of contract.VendorAttempt)
V_CODE = "code"  # last vendor status (Kamailio's own 408 has no reply to read it from)
V_EARLY = "early"  # 1 once a vendor sent early media
V_CANCELED = "cxl"  # 1 once the failure route saw the caller's CANCEL (dialog events may have no transaction)
V_RING = "ring"  # ms of the first provisional answer (post-dial delay)
V_ANSWER = "ans"  # ms of the answer
V_DONE = "done"  # 1 once the CDR is written: events can repeat
V_GRANT = "grant"  # 1: once answered, the call is in the node's grant index (anti-overdraft, or a route's limit)
V_MEDIA = "mp"  # 1 while the current attempt's media goes through rtpengine (kamailio.cfg.tmpl reads it too)
V_LATE = "lo"  # 1 when the caller's INVITE had no SDP: the vendor's answer carries the offer, the ACK the answer
V_MEDIA_USED = "mpu"  # 1 once any attempt went through rtpengine: the call is deleted there at its end
# The dialog module's state 3, "confirmed_na": the 200 OK went out and no ACK came back.
DLG_ANSWERED_NOT_ACKED = "3"
# The states a BYE can end: confirmed_na and confirmed (4).
DLG_UP = frozenset({DLG_ANSWERED_NOT_ACKED, "4"})


class _BanCache:
    """The node's cache of the bans: Kamailio's htable, shared by the node's processes, entries expiring."""

    @staticmethod
    def set(ip, seconds):
        KSR.htable.sht_setxi(BAN_TABLE, ip, 1, seconds)

    @staticmethod
    def reset():
        KSR.htable.sht_reset(BAN_TABLE)


class _KamailioLog(logging.Handler):
    def emit(self, record):
        line = self.format(record) + "\n"
        (KSR.err if record.levelno >= logging.WARNING else KSR.info)(line)


logging.getLogger("callcore").addHandler(_KamailioLog())
logging.getLogger("callcore").setLevel(logging.INFO)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def pv(name):
    return KSR.pv.get(name)


def _dialog_handle() -> tuple[int, int]:
    """The current dialog's (h_entry, h_id), each -1 when there is none."""
    entry, ident = pv("$dlg(h_entry)"), pv("$dlg(h_id)")
    return (-1 if entry is None else int(entry)), (-1 if ident is None else int(ident))


def pvs(name) -> str:
    value = KSR.pv.get(name)
    return "" if value is None else str(value)


def _has_sdp() -> bool:
    return KSR.textops.has_body_type("application/sdp") > 0


def rtpengine(command, flags) -> bool:
    """An rtpengine command of the module, tried twice: a process whose last command met the proxy down (its
    first worker pings at start, maybe before the proxy is up) keeps the ICMP refusal on its socket, and its next
    command fails on it at once; that failure clears it, and the second try reaches a proxy that is back
    (kamailio.cfg.tmpl's in-dialog routes do the same)."""
    return command(flags) >= 0 or command(flags) >= 0


class kamailio:  # noqa: N801 - app_python3 looks the class up by this name
    def __init__(self):
        self.loader = None
        self.live = LiveState(REDIS_URL, PREFIX, client_name=CLIENT_NAME)
        self.keys = Keys(PREFIX)
        spool = os.path.join(STATE_DIR, "cdr-spool.jsonl")
        self.sink = cdr_mod.CdrSink(REDIS_URL, PREFIX, spool, client_name=CLIENT_NAME)
        self.last_poll = 0.0
        self.dropped = 0
        self.last_flush = 0.0  # of the drop counter: the first drop of a process is counted at once
        self.pid = None
        self.branch_from = None  # the From of the branch t_relay is creating ("" = the caller's own)
        self.branch_media = False  # the branch t_relay is creating relays its media through rtpengine
        self.media = None  # this process's rtpengine control socket, opened on first use
        self.media_check_due = 0  # ms: the media timeout's next look at rtpengine's calls
        self.profile = None  # cProfile of this worker, when SS_PROFILE_DIR is set
        # SIP workers send a call's teardown without waiting for Redis (LiveState.teardown_later): their
        # next call reads its reply. Other processes (timers) may not talk to Redis again for long.
        self.sip_worker = False
        self.requests = 0
        self.route_stats: RouteStats | None = None  # None: Best ASR orders by priority
        self.route_stats_raw = None
        self.route_stats_due = 0.0
        self.sequence = 0  # calls planned by this process (CallFacts.sequence)
        self.gauges = None  # the metrics timer's (_NodeGauges)
        # The IP-to-country table of the phones' allowed countries; its version is read on the snapshot poll.
        self.geo = geo.CountryLoader(lambda *args: self.live.resp.execute(*args), PREFIX)
        # Bans go through a connection of their own: only offences and the ban timer use it.
        self.bans = bans_mod.Bans(RespClient(REDIS_URL, name=CLIENT_NAME), PREFIX, NODE, _BanCache(), OWN_NETWORKS)

    # -- per-process plumbing ---------------------------------------------------

    def child_init(self, rank):
        self.sip_worker = rank > 0
        # Each process starts its round-robin turns elsewhere: after a restart the first calls of all
        # workers would otherwise take the pools' first number together.
        self.sequence = os.getpid()
        if PROFILE_DIR and rank > 0:
            import cProfile

            # CPU time, not wall time: a wall clock charges a call with its waits on Redis and with the
            # time the scheduler gives other processes (Redis, SIPp) in the middle of a send.
            self.profile = cProfile.Profile(time.thread_time_ns, 1e-9)
            self.profile.enable()
        # Load the snapshot now, not on a worker's first INVITE: otherwise the
        # first calls after a start each wait for a worker's 50-200 ms load.
        if rank > 0:
            try:
                self.snapshot()
                self._refresh_route_stats()
                self.geo.refresh()
            except Exception as exc:  # noqa: BLE001 - a worker still starts; it retries on its first call
                KSR.err(f"callcore: snapshot load at start failed: {exc!r}\n")
        return 0

    def snapshot(self):
        """The current snapshot, polled at most every SNAPSHOT_POLL_S per process (one GET)."""
        if self.loader is None or self.pid != os.getpid():
            import redis

            client = redis.Redis.from_url(REDIS_URL, socket_timeout=0.25, socket_connect_timeout=0.25)
            self.loader = SnapshotLoader(client, PREFIX, os.path.join(STATE_DIR, "snapshot.bin"))
            self.pid = os.getpid()
            self.loader.start(listen=False)
            self.last_poll = time.monotonic()
        elif time.monotonic() - self.last_poll >= SNAPSHOT_POLL_S:
            self.last_poll = time.monotonic()
            try:
                self.loader.refresh()
            except Exception as exc:  # noqa: BLE001 - Redis away: keep routing on what we have
                KSR.warn(f"callcore: snapshot refresh failed: {exc!r}\n")
            if self.sink.spool.pending():
                self.sink.replay()
            self._flush_counters()
            if self.last_poll >= self.route_stats_due:
                self._refresh_route_stats()
            self.geo.refresh_if_due()
        return self.loader.current

    def _refresh_route_stats(self):
        """The vendors' published ASR; kept as it was while Redis does not answer, dropped once it expired."""
        self.route_stats_due = time.monotonic() + ROUTE_STATS_POLL_S
        try:
            raw = self.live.resp.execute("GET", ROUTE_ASR_KEY)
        except Exception:  # noqa: BLE001 - Redis away: the figures of a minute ago still rank the vendors
            return
        if raw == self.route_stats_raw:
            return
        self.route_stats_raw = raw
        self.route_stats = None
        if raw is not None:
            try:
                self.route_stats = RouteStats.decode(raw)
            except ValueError as exc:
                KSR.warn(f"callcore: {ROUTE_ASR_KEY} ignored, Best ASR orders by priority: {exc}\n")

    def _count_drop(self):
        """One request dropped unanswered (a scanner): counted in Redis at most every SNAPSHOT_POLL_S.

        Flushed here too, not only on the next call's snapshot poll: a worker that sees nothing but a
        scanner flood would otherwise never report it, just when the operator looks.
        """
        self.dropped += 1
        now = time.monotonic()
        if now - self.last_flush >= SNAPSHOT_POLL_S:
            self.last_flush = now
            self._flush_counters()

    def _offend(self, source_ip, cause, limit=1, **kwargs):
        """Count an offence of ``source_ip`` towards its ban (callcore.bans); Redis away: the node's pike and
        each request's own answer still stand, and the next offence counts again."""
        try:
            snap = self.loader.current if self.loader is not None else None
            if cause is BanCause.AUTH_FAILURES:
                seconds = self.bans.auth_failed(source_ip, kwargs.get("username", ""), snap)
            else:
                seconds = self.bans.offend(source_ip, snap, cause, limit)
        except Exception as exc:  # noqa: BLE001 - a request is never lost to the ban's bookkeeping
            KSR.warn(f"callcore: offence of {source_ip} ({cause.value}) not counted: {exc!r}\n")
            return
        if seconds:
            KSR.err(f"callcore: {source_ip} banned for {seconds} s ({cause.value})\n")

    def ksr_ban_sync(self, msg, *args):
        """rtimer SS_BANS (kamailio.cfg.tmpl), every second: this node's cache follows the bans in Redis."""
        try:
            self.bans.sync()
        except Exception as exc:  # noqa: BLE001 - Redis away: the cache keeps what it has, entries expiring
            KSR.warn(f"callcore: ban cache not synchronised: {exc!r}\n")
        return 1

    def ksr_flood(self, msg, *args):
        """pike found $si flooding (kamailio.cfg.tmpl banned it on this node): the ban goes to every node."""
        self._offend(pvs("$si"), BanCause.FLOOD)
        return 1

    def _flush_counters(self):
        if self.dropped:
            try:
                self.live.resp.execute("HINCRBY", self.keys.stats, "scanner_dropped", self.dropped)
                self.dropped = 0
            except Exception:  # noqa: BLE001 - counted again next time
                pass

    # -- requests ------------------------------------------------------------------

    def ksr_request_route(self, msg):
        if self.profile is not None:
            self.requests += 1
            if self.requests % 1000 == 0:
                self.profile.dump_stats(os.path.join(PROFILE_DIR, f"worker-{os.getpid()}.pstats"))
        try:
            return self.request_route()
        except Exception as exc:  # noqa: BLE001 - an escaped exception silently drops the request
            KSR.err(f"callcore: request_route: {exc!r}\n")
            if KSR.is_ACK() <= 0:
                KSR.sl.sl_send_reply(500, "Server Internal Error")
            return 1

    def request_route(self):
        """Every request but the in-dialog ones that kamailio.cfg.tmpl relays itself, after its flood ban."""
        # A scanner gets nothing, not even an answer to its OPTIONS or to a malformed request; it is banned.
        if dec.is_scanner(pvs("$ua")):
            self._count_drop()
            self._offend(pvs("$si"), BanCause.SCANNER)
            return 1
        if not self._well_formed():
            return 1  # answered 400, 416 or 505
        # OPTIONS outside a dialog is answered here (the UAS role): Max-Forwards 0 is no
        # reason to refuse it (RFC 4475 zeromf); anything relayed gets 483.
        uas_options = KSR.is_OPTIONS() > 0 and KSR.siputils.has_totag() < 0
        hops = KSR.maxfwd.process_maxfwd(10)
        if hops == -2:
            self._reply(400, "Invalid Max-Forwards")
            return 1
        if hops == -1 and not uas_options:
            self._reply(483, "Too Many Hops")
            return 1

        if KSR.siputils.has_totag() > 0:
            # Not reached: request_route in kamailio.cfg.tmpl relays every well-formed in-dialog
            # request, and _well_formed above answered the others.
            KSR.sl.sl_send_reply(481, "Call/Transaction Does Not Exist")
            return 1
        if KSR.is_CANCEL() > 0:
            found = KSR.tm.t_check_trans()
            if found > 0:
                KSR.tm.t_relay()
            elif found < 0:
                KSR.sl.sl_send_reply(481, "Call/Transaction Does Not Exist")
            return 1  # 0: a retransmitted CANCEL, answered by its transaction
        if KSR.is_ACK() > 0:
            if KSR.tm.t_check_trans() > 0:
                KSR.tm.t_relay()
            return 1
        if KSR.tm.t_check_trans() == 0:
            return 1  # a retransmission the transaction already answers
        if uas_options:
            if not self._unsupported_extensions("Require"):
                KSR.sl.sl_send_reply(200, "OK")
            return 1
        if KSR.is_method("REGISTER") > 0:
            if self._unsupported_extensions("Require"):
                return 1  # the registrar is the UAS
            return self.register()
        if self._unsupported_extensions("Proxy-Require"):
            return 1  # Require is end to end: the vendor judges it
        if KSR.is_INVITE() > 0:
            if not self._invite_media_acceptable():
                return 1
            return self.invite()
        self._method_not_served()
        return 1

    # -- request checks (RFC 3261, RFC 4475 torture messages) ---------------------

    def _flood_blocked(self, source_ip):
        """The flood ban of request_route in kamailio.cfg.tmpl, for the broken messages that never reach it."""
        if KSR.htable.sht_match_name(BAN_TABLE, "eq", source_ip) > 0:
            return True
        if KSR.pike.pike_check_req() < 0:
            KSR.htable.sht_seti(BAN_TABLE, source_ip, 1)
            KSR.err(f"callcore: flood from {source_ip}, banned\n")
            self._offend(source_ip, BanCause.FLOOD)
            return True
        return False

    def _well_formed(self):
        """Syntax checks, cheapest first; answers the request itself and returns False when one fails."""
        if pv("$rz") not in sipsyntax.SUPPORTED_SCHEMES:  # None when Kamailio cannot parse the R-URI
            first_line = (self._raw_message() or b"").split(b"\r\n", 1)[0].decode("utf-8", "replace")
            code, reason = sipsyntax.uri_scheme_answer(first_line)
            self._reply(code, reason)
            return False
        if KSR.sanity.sanity_check(sipsyntax.SANITY_CHECKS, sipsyntax.SANITY_URIS) < 0:
            # sanity_reply() fails when Kamailio cannot copy the request's headers into a reply
            # (a duplicate or negative Content-Length: RFC 4475 mcl01, ncl).
            if KSR.is_ACK() <= 0 and KSR.sanity.sanity_reply() < 0:
                self._raw_reply(400, "Bad Request")
            return False
        length = pv("$cl")
        if length and int(length) > int(pv("$bs") or 0):
            # Over UDP a Content-Length past the datagram's end is an error; bytes after the
            # body are not (RFC 3261 §18.3: RFC 4475 clerr vs dblreq).
            self._reply(400, "Content-Length Exceeds Message")
            return False
        return True

    def _unsupported_extensions(self, header):
        """Answers 420 listing the option tags of ``header`` (Require or Proxy-Require): we support none."""
        value = pv(f"$(hdr({header})[*])")
        tags = sipsyntax.option_tags(str(value)) if value else []
        if not tags:
            return False
        KSR.hdr.append_to_reply(f"Unsupported: {', '.join(tags)}\r\n")
        KSR.sl.sl_send_reply(420, "Bad Extension")
        return True

    def _invite_media_acceptable(self):
        """415 for a body that is not SDP (RFC 4475 invut), 406 when the caller accepts no SDP (sdp01)."""
        content_type = pv("$cT")
        if content_type and sipsyntax.media_type(str(content_type)) not in sipsyntax.INVITE_BODY_TYPES:
            KSR.hdr.append_to_reply(f"Accept: {sipsyntax.INVITE_ACCEPT}\r\n")
            KSR.sl.sl_send_reply(415, "Unsupported Media Type")
            return False
        accept = pv("$(hdr(Accept)[*])")
        if accept is not None and not sipsyntax.accepts_sdp(str(accept)):
            KSR.sl.sl_send_reply(406, "Not Acceptable")
            return False
        return True

    def _method_not_served(self):
        """405 (with Allow) for a method we know but do not serve here, 501 for one we do not know."""
        if pvs("$rm") in sipsyntax.KNOWN_METHODS:
            KSR.hdr.append_to_reply(f"Allow: {sipsyntax.ALLOW}\r\n")
            KSR.sl.sl_send_reply(405, "Method Not Allowed")
        else:
            KSR.sl.sl_send_reply(501, "Not Implemented")

    def _reply(self, code, reason):
        """A stateless reply, built from the raw bytes when Kamailio cannot build it."""
        if KSR.is_ACK() > 0:
            return
        if KSR.sl.sl_send_reply(code, reason) < 0:
            self._raw_reply(code, reason)

    # -- requests Kamailio cannot parse (event routes in kamailio.cfg.tmpl) -------

    def ksr_parse_error(self, msg, *args):
        """event_route[core:receive-parse-error]: answer 400 (505 for another SIP version), drop responses."""
        try:
            raw = self._raw_message()
            if raw and not sipsyntax.is_response(raw.lstrip(b"\r\n")[:4]) and not self._flood_blocked(pvs("$si")):
                code, reason = sipsyntax.broken_request_answer(raw)
                self._raw_reply(code, reason, raw)
        except Exception as exc:  # noqa: BLE001 - never let a broken message break the worker
            KSR.err(f"callcore: parse error route: {exc!r}\n")
        return 1

    def ksr_missing_headers(self, msg, *args):
        """event_route[core:pre-routing]: a request without (or with a duplicate) Call-ID, CSeq, From or To."""
        try:
            if not self._flood_blocked(pvs("$si")):
                self._raw_reply(400, "Missing or Invalid Required Header")
        except Exception as exc:  # noqa: BLE001
            KSR.err(f"callcore: pre-routing: {exc!r}\n")
        return 1

    @staticmethod
    def _raw_message():
        """The request's bytes as received (hex through Kamailio when they are not UTF-8)."""
        try:
            text = KSR.pv.get("$mb")
        except UnicodeDecodeError:
            text = None
        if text is not None:
            return str(text).encode("utf-8", "surrogateescape")
        hexa = KSR.pv.get("$(mb{s.encode.hexa})")
        return bytes.fromhex(str(hexa)) if hexa else None

    def _raw_reply(self, code, reason, raw=None):
        """Send a reply built from the raw request to where it came from, on the socket it came in on."""
        raw = raw if raw is not None else self._raw_message()
        data = sipsyntax.raw_reply(raw or b"", code, reason)
        if data is None:
            return  # a response, an ACK, or no Via to answer to
        proto = pvs("$pr").lower() or "udp"
        source, local = pvs("$si"), pvs("$Ri")
        source = f"[{source}]" if ":" in source and not source.startswith("[") else source
        local = f"[{local}]" if ":" in local and not local.startswith("[") else local
        KSR.corex.sendx(
            f"sip:{source}:{pvs('$sp')};transport={proto}",
            f"{proto}:{local}:{pvs('$Rp')}",
            data.replace(b"\0", b"").decode("utf-8", "replace"),
        )

    def register(self):
        snap = self.snapshot()
        if snap is None:
            KSR.sl.sl_send_reply(503, "Not Configured")
            return 1
        username = pvs("$au")
        if not username:
            KSR.auth.auth_challenge(snap.sip_realm, 1)  # before anything is looked up
            return 1
        # checks 1: the To user must be the authenticated user.
        phone = self._authenticated(snap, username, 1)
        if phone is None:
            return 1
        if not self.geo.allows(phone, pvs("$si")):
            KSR.sl.sl_send_reply(403, "Forbidden Network")
            return 1
        KSR.auth.consume_credentials()
        if KSR.registrar.save("location", 0) < 0:
            KSR.sl.sl_reply_error()
            return 1
        try:
            self._record_registration(phone, username)
        except Exception as exc:  # noqa: BLE001 - the phone is registered; only the portal's list misses it
            KSR.warn(f"callcore: registration of {username!r} not recorded: {exc!r}\n")
        return 1

    def _record_registration(self, phone, username):
        """What the registrar saved, into the live state for the portal (usrloc is this node's memory only)."""
        wildcard, contacts = sipsyntax.register_contacts(
            pvs("$hdr(Contact)"), pvs("$hdr(Expires)"), default_s=REG_DEFAULT_S, min_s=REG_MIN_S, max_s=REG_MAX_S
        )
        now = now_ms()
        aor = username.split("@", 1)[0]
        source_ip, source_port, transport = pvs("$si"), int(pv("$sp") or 0), pvs("$pr")
        user_agent = pvs("$ua")[:200]
        rows = []
        for contact, seconds in contacts:
            expires_ms = now + seconds * 1000 if seconds else 0
            record = Registration(
                aor=aor, contact=contact[:500], source_ip=source_ip, source_port=source_port, transport=transport,
                user_agent=user_agent, registered_ms=now, expires_ms=expires_ms, node=NODE, phone_id=phone.id,
            )  # fmt: skip
            rows.append((registration_field(NODE, aor, contact[:500]), expires_ms, encode_registration(record)))
        clear = registration_field(NODE, aor, "") if wildcard else ""
        if rows or clear:
            self.live.record_registrations_later(now, clear, rows)

    def _authenticated(self, snap, username, checks):
        """The phone whose digest answer this request carries, or None once it has been challenged again.

        An unknown username is checked against a decoy HA1 and gets the same challenge as a wrong password:
        the same answer, after the same work, and both count towards the source's ban after the answer went.
        """
        phone = snap.phone(username)
        ha1 = DECOY_HA1
        if phone is not None:
            # A username sent as user@realm is answered with HA1b (flags 1: the secret is an HA1).
            ha1 = phone.ha1b if "@" in pvs("$aU") and phone.ha1b else phone.ha1
        answer = KSR.auth.pv_auth_check(snap.sip_realm, ha1, 1, checks)
        if answer >= 0 and phone is not None:
            return phone
        # qop=auth, and stale=true when only the nonce had expired (the phone answers again unprompted).
        KSR.auth.auth_challenge(snap.sip_realm, 17 if answer == -4 else 1)
        if answer in AUTH_GUESSES or answer >= 0:
            self._offend(pvs("$si"), BanCause.AUTH_FAILURES, username=username)
        return None

    # -- the initial INVITE -------------------------------------------------------

    def invite(self):
        snap = self.snapshot()
        if snap is None:
            KSR.sl.sl_send_reply(503, "Not Configured")
            return 1
        start = now_ms()
        source_ip, source_port = pvs("$si"), int(pv("$sp") or 0)
        caller, callee = pvs("$fU"), pvs("$rU")
        phone_username = None
        claims_phone = False
        # Stateful from here for a known source (an illegal call stays stateless: floods cost no memory).
        stateful = snap.mapping_gateway_for(source_ip, source_port) is not None
        if stateful and not self._transaction():
            return 1  # a retransmission of an INVITE another worker is deciding: absorbed
        if not stateful:
            username = pvs("$au")
            if username:
                phone = self._authenticated(snap, username, 2)
                if phone is None or not self.geo.allows(phone, source_ip):
                    if phone is not None:  # the right password from outside the phone's geofence
                        KSR.sl.sl_send_reply(403, "Authentication Failed")
                    refused = dec.AUTH_FAILED
                    self._refusal_cdr(snap, refused.reason, refused.billing_mode, start, None)
                    return 1
                KSR.auth.consume_credentials()
                phone_username = username
                stateful = True
                if not self._transaction():
                    return 1
            else:
                claims_phone = snap.phone(caller) is not None
        facts = dec.CallFacts(
            call_id=pvs("$ci"),
            source_ip=source_ip,
            source_port=source_port,
            caller=caller,
            callee=callee,
            now_ms=start,
            user_agent=pvs("$ua"),
            phone_username=phone_username,
            claims_phone=claims_phone,
            sequence=self.sequence,
            test_gateway=pvs("$hdr(X-Test-Gateway)") if phone_username else "",
        )
        if facts.test_gateway:
            KSR.hdr.remove("X-Test-Gateway")  # the operator's choice is no business of the vendor's
        self.sequence += 1
        trace = []  # the vendors skipped, for the CDR's decision trace
        planned = dec.plan_call(facts, snap, DEFAULT_MAX_DURATION_S, self.route_stats, trace)
        if isinstance(planned, dec.Decision):
            decision = planned
        else:
            fraud = dec.fraud_check(planned, NODE, snap.listed_high_risk(planned.callee))
            request = dec.live_request(planned, fraud)
            request.registry["node"] = NODE  # whose calls these are, should this node restart
            if METRICS:
                began = time.perf_counter()
                answer = self.live.setup(request, now_ms=start)
                PROM.histogram_observe_l0("ss_redis_rtt_seconds", str(time.perf_counter() - began))
            else:
                answer = self.live.setup(request, now_ms=start)
            decision = dec.conclude(planned, answer)
        if METRICS and decision.reason is not None:
            PROM.counter_inc_l1("ss_calls_refused_total", 1, decision.reason.code)
        if decision.action is dec.Action.DROP:
            self._count_drop()
            return 1
        if decision.action is dec.Action.CHALLENGE:
            KSR.auth.auth_challenge(snap.sip_realm, 1)
            return 1
        if decision.reason is dec.EndReason.ILLEGAL_SOURCE:
            # Neither a gateway nor a phone: the same challenge a phone's first INVITE gets, whether or not
            # the caller names one, so a scanner learns nothing; recorded, and counted towards a ban.
            KSR.auth.auth_challenge(snap.sip_realm, 1)
            if decision.record_cdr:
                self._refusal_cdr(snap, decision.reason, decision.billing_mode, start, decision, facts)
            limit = snap.parameters.get("SS_BAN_ILLEGAL_CALLS_PER_IP", 0)
            if limit:
                self._offend(source_ip, BanCause.ILLEGAL_CALLS, limit)
            return 1
        if decision.action is dec.Action.REJECT:
            if stateful:
                # A retransmitted INVITE is answered by the transaction, not decided again,
                # so it never becomes a second CDR.
                KSR.tm.t_reply(decision.sip_status, decision.reason.description)
            elif decision.billing_mode == BillingMode.ILLEGAL:
                KSR.sl.sl_send_reply(decision.sip_status, decision.reason.description)
            else:
                KSR.tm.t_newtran()
                KSR.tm.t_reply(decision.sip_status, decision.reason.description)
            if decision.record_cdr:
                self._refusal_cdr(snap, decision.reason, decision.billing_mode, start, decision, facts, trace)
            return 1
        if METRICS:
            PROM.counter_inc_l0("ss_calls_routed_total", 1)
        return self.route(snap, facts, decision)

    @staticmethod
    def _transaction():
        """Make the INVITE's transaction now, before the Redis round trip: its 100 Trying stops the
        caller's retransmissions, and a copy that reaches another worker meanwhile finds the transaction
        and is absorbed instead of being decided a second time (a second dialog whose CDR would be lost).

        True to go on; False when there is nothing more to do (a retransmission, or an error answered).
        """
        created = KSR.tm.t_newtran()
        if created > 0:
            return True
        if created < 0:
            KSR.sl.sl_send_reply(500, "Server Internal Error")
        return False

    def route(self, snap, facts, decision):
        state = dec.call_state(facts, decision)
        # The dialog's lifetime is given at creation (the module's timeout_avp): setting it later
        # with dlg_set_timeout races the confirmation under load and can leave a leg without its BYE.
        KSR.pv.seti("$avp(ss_max_duration)", max(1, decision.max_duration_s))
        # No timeout_bye: the timeout route sends the BYEs itself (ksr_dialog_event, _bye_on_timeout).
        KSR.pv.sets("$dlg_ctx(timeout_route)", "ss_timeout")
        if KSR.dialog.dlg_manage() < 0:
            self._release(state)
            KSR.tm.t_reply(500, "Dialog Error")
            return 1
        d = KSR.dialog
        if KEEPALIVE:
            d.dlg_set_property("ka-src")
            d.dlg_set_property("ka-dst")
        d.var_sets(V_STATE, encode_state(state))
        d.var_sets(V_TRIED, "[]")
        if state.grant is not None or min(state.route_max_s, default=state.max_duration_s) < state.max_duration_s:
            d.var_sets(V_GRANT, "1")
        KSR.rr.record_route()
        KSR.htable.sht_sets(CSEQ_TABLE, state.call_id, pvs("$cs"))
        return self._attempt(state, 0, first=True)

    def _attempt(self, state, index, first=False):
        route = state.routes[index]
        KSR.dialog.var_sets(V_ATTEMPT, str(index))
        KSR.dialog.var_sets(V_CODE, "0")
        # uac replaces the From once per request: when every vendor gets the same caller it is done
        # here, once for all branches; when they differ, each branch gets its own in ksr_branch_vendor.
        if state.from_per_branch:
            KSR.tm.t_on_branch("ksr_branch_vendor")
            # The branch route runs inside this process's t_relay below: it finds its From here, not by
            # decoding the call's state again.
            self.branch_from = f"sip:{route.caller}@{pvs('$fd')}" if route.caller != state.caller_in else ""
        elif first and route.caller != state.caller_in:
            KSR.uac.uac_replace_from_uri(f"sip:{route.caller}@{pvs('$fd')}")
        # The SDP is rewritten per branch: a failover's branch is built from the INVITE as received.
        self.branch_media = self._media_proxied(state, route)
        KSR.dialog.var_sets(V_MEDIA, "1" if self.branch_media else "")
        if self.branch_media:
            KSR.dialog.var_sets(V_MEDIA_USED, "1")
            # A late offer (an INVITE without SDP): nothing to offer rtpengine now; the vendor's SDP is the
            # offer (ksr_reply_vendor) and the caller's ACK the answer (kamailio.cfg.tmpl's IN_DIALOG_MEDIA).
            KSR.dialog.var_sets(V_LATE, "" if _has_sdp() else "1")
            KSR.tm.t_on_branch("ksr_branch_vendor")
        # The vendor sees its own address in the Request-URI, as VOS sends it.
        KSR.seturi(f"sip:{route.callee}@{route.host}:{route.port}")
        KSR.setdsturi(f"sip:{route.host}:{route.port};transport={route.transport}")
        KSR.tm.t_set_fr(RING_TIMEOUT_MS, state.invite_timeout_ms)
        KSR.tm.t_on_failure("ksr_failure_vendor")
        KSR.tm.t_on_reply("ksr_reply_vendor")
        try:
            relayed = KSR.tm.t_relay()
        finally:
            self.branch_from = None
            self.branch_media = False
        if relayed < 0 and first:
            KSR.tm.t_reply(500, "Vendor Unreachable")  # the transaction exists since invite()
        return 1

    def _media_proxied(self, state, route):
        """Whether this attempt's media goes through rtpengine: the gateways' settings, the caller's SDP."""
        snap = self.snapshot()
        vendor = snap.routing_gateways.get(route.gateway_id) if snap else None
        customer = snap.mapping_gateways.get(state.mapping_gateway_id) if snap else None
        routing_mode = vendor.media_proxy if vendor else "off"
        mapping_mode = customer.media_proxy if customer else "off"
        if routing_mode == mapping_mode == "off":
            return False
        return media.proxy_media(mapping_mode, routing_mode, media.sdp_address(pvs("$rb")), state.source_ip)

    def ksr_branch_vendor(self, msg):
        """Branch route of an attempt: this vendor's From when the vendors get different callers, and the SDP
        offer rewritten by rtpengine when its media goes through the switch."""
        try:
            offer = self.branch_media and _has_sdp()
            if offer and not rtpengine(KSR.rtpengine.rtpengine_offer, media.OFFER_FLAGS):
                # No media proxy to be had: a gateway set to hide its media must not be sent the caller's.
                KSR.err("callcore: rtpengine did not take the offer: branch dropped\n")
                return -1  # kamailio.cfg.tmpl's branch route drops it
        except Exception as exc:  # noqa: BLE001
            KSR.err(f"callcore: branch route media: {exc!r}\n")
        try:
            if self.branch_from is not None:
                if self.branch_from:
                    KSR.uac.uac_replace_from_uri(self.branch_from)
                return 1
            # A branch made outside _attempt's t_relay (none is known): the From from the call's state.
            d = KSR.dialog
            raw = d.var_get(V_STATE)
            if raw:
                state = decode_state(raw)
                route = state.routes[int(d.var_get(V_ATTEMPT) or 0)]
                if route.caller != state.caller_in:
                    KSR.uac.uac_replace_from_uri(f"sip:{route.caller}@{pvs('$fd')}")
        except Exception as exc:  # noqa: BLE001 - the branch goes out with the caller's From
            KSR.err(f"callcore: branch route: {exc!r}\n")
        return 1

    # -- vendor answers ------------------------------------------------------------

    def ksr_reply_vendor(self, msg):
        try:
            status = int(pv("$rs") or 0)
            d = KSR.dialog
            if 180 <= status < 200:
                if not d.var_get(V_RING):
                    d.var_sets(V_RING, str(now_ms()))
                if status == 183 and _has_sdp():
                    d.var_sets(V_EARLY, "1")
            if 180 <= status < 300 and d.var_get(V_MEDIA) == "1" and _has_sdp():
                if d.var_get(V_LATE) == "1":
                    # The caller sent no offer: the vendor's SDP is it. Should rtpengine not take it, the caller
                    # still gets it: the vendor's call is up, and the caller is owed an answer.
                    if not rtpengine(KSR.rtpengine.rtpengine_offer, media.OFFER_FLAGS):
                        KSR.err("callcore: rtpengine did not take the vendor's offer (late offer)\n")
                elif not rtpengine(KSR.rtpengine.rtpengine_answer, media.ANSWER_FLAGS):
                    KSR.err("callcore: rtpengine did not take the answer\n")
        except Exception as exc:  # noqa: BLE001
            KSR.err(f"callcore: reply route: {exc!r}\n")
        return 1

    def ksr_failure_vendor(self, msg):
        try:
            return self.failure()
        except Exception as exc:  # noqa: BLE001
            KSR.err(f"callcore: failure route: {exc!r}\n")
            return 1

    def failure(self):
        d = KSR.dialog
        raw = d.var_get(V_STATE)
        if not raw:
            return 1
        state = decode_state(raw)
        index = int(d.var_get(V_ATTEMPT) or 0)
        code = int(pv("$T_reply_code") or 0)
        if KSR.tm.t_branch_timeout() > 0 and code in (0, 408):
            code = 408
        d.var_sets(V_CODE, str(code))
        route = state.routes[index]
        tried = decode_tried(d.var_get(V_TRIED) or "[]")
        tried.append(VendorAttempt(route.gateway_id, route.gateway_name, route.host, code))
        d.var_sets(V_TRIED, encode_tried(tried))
        if KSR.tm.t_is_canceled() > 0:
            d.var_sets(V_CANCELED, "1")
            return 1
        if KSR.htable.sht_get(CUT_TABLE, state.call_id) is not None:
            return 1  # cancelled on request (serve_disconnects): the caller gets this answer, no other vendor
        remaining = state.routes[index + 1 :]
        early = d.var_get(V_EARLY) == "1"
        if not dec.should_fail_over(
            code,
            route.failover_codes,
            early,
            len(tried),
            len(remaining),
            switch_limit=state.switch_limit,
            stop_after_sdp=state.stop_switch_after_sdp,
        ):
            return 1
        limits = [RouteLimit(r.gateway_id, r.capacity, r.cps_limit) for r in remaining]
        previous = route.gateway_id if state.slot_taken else None
        taken = self.live.next_route(state.call_id, previous, limits, state.expiry_ms)
        if taken == -1:
            return 1  # every other vendor is full: the caller gets this vendor's answer
        if taken == -2:
            taken, state.slot_taken = 0, False  # Redis away: fail open, no slot
        else:
            state.slot_taken = True
        next_index = index + 1 + taken
        d.var_sets(V_STATE, encode_state(state))
        return self._attempt(state, next_index)

    # -- dialog events ------------------------------------------------------------------

    def ksr_dialog_event(self, msg, evname):
        try:
            d = KSR.dialog
            if evname == "dialog:start":
                if METRICS:
                    PROM.counter_inc_l0("ss_calls_answered_total", 1)
                answer = now_ms()
                d.var_sets(V_ANSWER, str(answer))
                raw = d.var_get(V_STATE)
                if raw:
                    state, index = decode_state(raw), int(d.var_get(V_ATTEMPT) or 0)
                    KSR.htable.sht_rm(CSEQ_TABLE, state.call_id)
                    self._keep_answer(state, index, answer)
                    if d.var_get(V_GRANT) == "1":
                        self._start_grant(state, index, answer)
                    self._cut_when_answered(state.call_id)
                return 1
            if evname not in dec.ENDING_EVENTS:
                return 1
            try:
                if d.var_get(V_DONE) == "1":
                    return 1
                raw = d.var_get(V_STATE)
                if not raw:
                    return 1
                state = decode_state(raw)
                self._finish(state, dec.end_of_call(self._end_facts(d, evname, state)))
            finally:
                if evname == dec.DIALOG_TIMEOUT:
                    _bye_on_timeout()
        except Exception as exc:  # noqa: BLE001
            KSR.err(f"callcore: dialog event {evname}: {exc!r}\n")
        return 1

    def _cut_when_answered(self, call_id):
        """A call asked to end while it was setting up, answered all the same (the 200 OK crossed the CANCEL):
        asked again, now answered, so the next tick of serve_disconnects ends it, BYE both ways."""
        why = KSR.htable.sht_get(CUT_TABLE, call_id)
        if why is None:
            return
        reason = CUT_REASONS.get(int(why), dec.EndReason.OPERATOR_DISCONNECT)
        by = KSR.htable.sht_get(CUT_BY_TABLE, call_id)
        request = encode_disconnect(call_id, reason.code, "" if by is None else str(by))
        command = ("RPUSH", self.keys.disconnects(NODE), request)
        if self.sip_worker:
            self.live.resp.send(command, self._answer_not_kept)
        else:
            self.live.resp.execute(*command)

    def _keep_answer(self, state, index, answer):
        """The answer and its vendor, kept in the live state so a call this node loses is still charged
        (contract.lost); sent without waiting by a SIP worker, as a lost copy only costs that charge."""
        # Not `or -1`: a dialog's hash entry may be 0, and a call kept as -1 could not be ended on request.
        handle = _dialog_handle()
        value = encode_answered(AnsweredCall(answer, state.routes[index], *handle))
        command = ("HSET", self.keys.live_answered, state.call_id, value)
        if self.sip_worker:
            self.live.resp.send(command, self._answer_not_kept)
            return
        try:
            self.live.resp.execute(*command)
        except Exception as exc:  # noqa: BLE001 - the call goes on; only a crash's charge depends on it
            self._answer_not_kept(exc)

    @staticmethod
    def _answer_not_kept(error):
        KSR.warn(f"callcore: an answer was not kept in the live state: {error!r}\n")

    def ksr_metrics_timer(self, msg, *args):
        """rtimer SS_METRICS (kamailio.cfg.tmpl), every second: the node's gauges for Prometheus."""
        try:
            if self.gauges is None:
                self.gauges = _NodeGauges()
            self.gauges.update(self)
        except Exception as exc:  # noqa: BLE001 - Redis away: the gauges keep their last values
            KSR.warn(f"callcore: metrics timer: {exc!r}\n")
        return 1

    def ksr_heartbeat(self, msg, *args):
        """rtimer SS_HEARTBEAT (kamailio.cfg.tmpl): this node is up; where its lost calls' charge ends."""
        try:
            self.live.resp.execute("HSET", self.keys.heartbeats, NODE, now_ms())
        except Exception as exc:  # noqa: BLE001 - Redis away: the next beat tries again
            KSR.warn(f"callcore: heartbeat not written: {exc!r}\n")
        return 1

    def _start_grant(self, state, index, answer):
        """The answered call into this node's grant index: the answering route's rate and limit."""
        grant = dec.answer_grant(state, index, answer, *_dialog_handle())
        if grant is None:
            return
        if self.sip_worker:
            self.live.grant_start_later(GRANTS_KEY, state.call_id, grant.due_ms, dec.encode_grant(grant))
            return
        try:
            self.live.grant_start(GRANTS_KEY, state.call_id, grant.due_ms, dec.encode_grant(grant))
        except Exception as exc:  # noqa: BLE001 - the call keeps its first grant's reservation and its timeout
            KSR.err(f"callcore: grant of {state.call_id} not indexed: {exc!r}\n")

    def ksr_grant_timer(self, msg, *args):
        """rtimer SS_GRANTS (kamailio.cfg.tmpl), every second: renew the grants due, end the calls that cannot."""
        try:
            self.renew_grants(now_ms())
        except Exception as exc:  # noqa: BLE001 - Redis away: the next tick tries again
            KSR.err(f"callcore: grant timer: {exc!r}\n")
        try:
            self.watch_media(now_ms())
        except Exception as exc:  # noqa: BLE001 - rtpengine or Redis away: the next look tries again
            KSR.err(f"callcore: media timeout: {exc!r}\n")
        try:
            self.serve_disconnects()
        except Exception as exc:  # noqa: BLE001 - Redis away: the requests wait for the next tick
            KSR.err(f"callcore: disconnect requests: {exc!r}\n")
        return 1

    def _media_client(self):
        if self.media is None:
            self.media = media.NgClient()
        return self.media

    def watch_media(self, now):
        """The media timeout (SS_MEDIA_TIMEOUT_SECONDS): each answered call rtpengine relays that carried no RTP
        either way for that long is asked to end, of the node that holds it (Keys.disconnects), which ends it
        BYE both ways with end reason media_timeout."""
        snap = self.snapshot()
        timeout_s = int(snap.parameters.get("SS_MEDIA_TIMEOUT_SECONDS", 0)) if snap else 0
        if not timeout_s or now < self.media_check_due:
            return
        self.media_check_due = now + min(5000, timeout_s * 500)
        client = self._media_client()
        call_ids = client.call_ids()
        if not call_ids:
            return
        resp = self.live.resp
        answered = resp.execute("HMGET", self.keys.live_answered, *call_ids)
        registry = resp.execute("HMGET", self.keys.live_calls, *call_ids)
        for call_id, kept, entry in zip(call_ids, answered, registry, strict=True):
            if not kept or not entry:
                continue
            try:
                query = client.query(call_id)
            except media.MediaProxyError:
                continue  # ended meanwhile
            if not media.is_silent(media.last_media_s(query), decode_answered(kept).answer_ms, now, timeout_s):
                continue
            node = json.loads(entry).get("node") or NODE
            request = encode_disconnect(call_id, dec.EndReason.MEDIA_TIMEOUT.code)
            resp.execute("RPUSH", self.keys.disconnects(node), request)

    def serve_disconnects(self):
        """End the live calls others asked this node to end (Keys.disconnects: an anti-fraud block, an operator),
        BYE both ways by the dialog's timeout, each marked with the end reason asked for its CDR.

        An answered call is found by the handle its answer kept. One still setting up is cancelled: CANCEL to
        the vendor, its final answer relayed to the caller, no failover (``failure``); the CDR takes the end
        reason asked (``_end_facts``). One answered meanwhile is asked again (``_cut_when_answered``).
        """
        key = self.keys.disconnects(NODE)
        requests = self.live.resp.execute("LPOP", key, DISCONNECTS_PER_TICK) or []
        for raw in requests:
            try:
                request = decode_disconnect(raw)
            except msgspec.DecodeError:
                KSR.warn(f"callcore: disconnect request ignored: {raw!r}\n")
                continue
            call_id, by = request.call_id, request.by or ""
            code = CUT_CODES.get(request.end_reason, CUT_CODES[dec.EndReason.OPERATOR_DISCONNECT.code])
            kept = self.live.resp.execute("HGET", self.keys.live_answered, call_id)
            if not kept:
                self._cancel(call_id, code, by)
                continue
            answered = decode_answered(kept)
            if answered.h_entry < 0:
                continue
            _end_marked(call_id, code, by, KSR.dialog.dlg_set_timeout_id, 1, answered.h_entry, answered.h_id)

    def _cancel(self, call_id, code, by):
        """Cancel a call of this node still setting up (a call of another node, or one ended, is not found)."""
        cseq = KSR.htable.sht_get(CSEQ_TABLE, call_id)
        if cseq is not None:
            _end_marked(call_id, code, by, KSR.tmx.t_cancel_callid, call_id, str(cseq), 0)

    def renew_grants(self, now):
        for call_id, raw in self.live.grants_due(GRANTS_KEY, now):
            if not raw:
                self.live.grant_done(GRANTS_KEY, call_id)
                continue
            grant = dec.decode_grant(raw)
            if dec.limit_reached(grant, now):
                self._cut(call_id, grant, 2, dec.limit_timeout_s(grant, now))
                self.live.grant_done(GRANTS_KEY, call_id)
                continue
            if grant.rate is None:
                continue
            renewed, units = dec.renewed_grant(grant, now)
            answer = self.live.renew_grant(
                GRANTS_KEY, call_id, grant.account_id, units, grant.credit_units, grant.balance_units,
                renewed.due_ms, dec.encode_grant(renewed),
            )  # fmt: skip
            if answer == 0:
                self._cut(call_id, grant, 1, 1)

    @staticmethod
    def _cut(call_id, grant, why, timeout_s):
        """End the call by its dialog's timeout (BYE both ways), marked for its CDR's end reason."""
        _end_marked(call_id, why, "", KSR.dialog.dlg_set_timeout_id, timeout_s, grant.h_entry, grant.h_id)

    @staticmethod
    def _end_facts(d, evname, state):
        """What ``dec.end_of_call`` needs of this event: each event reads only its own facts."""
        if evname == dec.DIALOG_END:
            return dec.EndFacts(event=evname, from_caller=pvs("$ft") == pvs("$dlg(from_tag)"))
        if evname == dec.DIALOG_FAILED:
            return dec.EndFacts(
                event=evname,
                reply_code=int(pv("$rs") or 0) if KSR.siputils.is_reply() > 0 else 0,
                last_vendor_code=int(d.var_get(V_CODE) or 0),
                # Not t_is_canceled(): dialog:failed can come without a transaction (an error each time).
                canceled=d.var_get(V_CANCELED) == "1",
                failover_codes=state.routes[-1].failover_codes,
                record_zero_hold=state.record_zero_hold,
                record_server_hangup=state.record_server_hangup,
                cut=_cut_reason(state.call_id),
            )
        if pvs("$dlg(state)") == DLG_ANSWERED_NOT_ACKED:
            return dec.EndFacts(
                event=evname,
                answered_not_acked=True,
                record_zero_hold=state.record_zero_hold,
                record_server_hangup=state.record_server_hangup,
            )
        return dec.EndFacts(
            event=evname,
            now_ms=now_ms(),
            answered_ms=int(d.var_get(V_ANSWER) or 0),
            keepalive=KEEPALIVE,
            max_duration_s=state.max_duration_s,
            balance_limited=state.balance_limited,
            # Any call may have been ended on request (serve_disconnects), not only those the grant timer watches.
            cut=_cut_reason(state.call_id),
        )

    def _finish(self, state, decision):
        d = KSR.dialog
        d.var_sets(V_DONE, "1")
        if METRICS:
            PROM.counter_inc_l1("ss_calls_ended_total", 1, decision.reason.code)
        if d.var_get(V_MEDIA_USED) == "1":
            try:
                self._media_client().delete(state.call_id)
            except OSError as exc:  # rtpengine drops a call idle for its own timeout in the end
                KSR.warn(f"callcore: rtpengine delete of {state.call_id}: {exc!r}\n")
        end = now_ms()
        answered = int(d.var_get(V_ANSWER) or 0) or None
        answer = answered if decision.acknowledged else None  # what the caller is charged from
        ring = int(d.var_get(V_RING) or 0) or None
        index = int(d.var_get(V_ATTEMPT) or 0)
        tried = decode_tried(d.var_get(V_TRIED) or "[]")
        route = state.routes[index]
        if answered is not None:
            tried.append(VendorAttempt(route.gateway_id, route.gateway_name, route.host, 200))
        else:
            KSR.htable.sht_rm(CSEQ_TABLE, state.call_id)  # an answered call's went at its answer
        record_line = pending = ""
        if decision.record:
            record = cdr_mod.call_record(
                state,
                route=route,
                answer_ms=answer,
                stop_ms=end,
                ring_ms=ring,
                tried=tried,
                direction=decision.direction,
                reason=decision.reason,
                sip_status=decision.sip_status,
                callee_call_id=pvs("$dlg(callid)") if answered else "",
                node=NODE,
                # Ended on request (serve_disconnects): answered, or cancelled while setting up.
                disconnected_by=_cut_by(state.call_id)
                if answered or decision.direction == dec.EndDirection.SERVER
                else "",
            )
            record_line = encode_cdr(record)
            # A call that talked keeps its money held until the ingest has debited it (contract.pending).
            pending = record.call_uuid if answer is not None else ""
        call_id, account_id, slot_keys = state.call_id, state.account_id, self._slot_keys(state)
        grants = GRANTS_KEY if d.var_get(V_GRANT) == "1" else ""
        if self.sip_worker:
            self.live.teardown_later(call_id, account_id, slot_keys, record_line, self.sink.spool_line, grants, pending)
        elif not self.live.teardown(call_id, account_id, slot_keys, record_line, grants, pending) and record_line:
            self.sink.spool_line(record_line)

    def _slot_keys(self, state):
        routes = [r.gateway_id for r in state.routes]
        caller = state.caller if dec.is_number(state.caller) else ""  # its live calls, for the concurrent rule
        return self.keys.call_slots(state.account_id, state.mapping_gateway_id, state.phone_id, routes, caller)

    def _release(self, state):
        self.live.teardown(state.call_id, state.account_id, self._slot_keys(state))

    def _refusal_cdr(self, snap, reason, billing_mode, start, decision, facts=None, trace=None):
        record = cdr_mod.refusal_record(
            call_id=pvs("$ci"),
            start_ms=start,
            source_ip=pvs("$si"),
            source_port=int(pv("$sp") or 0),
            user_agent=pvs("$ua"),
            caller=pvs("$fU"),
            callee=pvs("$rU"),
            reason=reason,
            billing_mode=billing_mode,
            decision=decision,
            snapshot_version=snap.version,
            node=NODE,
            decision_trace=dec.trace_text(decision, trace) if decision is not None else "",
        )
        if self.sip_worker:
            self.sink.emit_later(record)
        else:
            self.sink.emit(record)


class _NodeGauges:
    """What the metrics timer reads once a second for the gauges: this node's own state, nothing per call."""

    def __init__(self):
        self.invites = None  # Kamailio's count of INVITEs received, at the last tick
        self.tick_s = 0.0
        self.version = None
        self.since_s = 0.0

    def update(self, core):
        now = time.monotonic()
        invites = int(pv("$stat(rcv_requests_invite)") or 0)
        if self.invites is not None and now > self.tick_s:
            PROM.gauge_set_l0("ss_cps", str(round((invites - self.invites) / (now - self.tick_s), 1)))
        self.invites, self.tick_s = invites, now
        PROM.gauge_set_l0("ss_live_calls", str(int(pv("$stat(active_dialogs)") or 0)))
        spool = core.sink.spool.path
        size = sum(p.stat().st_size for p in spool.parent.glob(spool.name + "*") if not p.name.endswith(".lock"))
        PROM.gauge_set_l0("ss_cdr_spool_bytes", str(size))
        snap = core.snapshot()
        if snap is not None:
            if snap.version != self.version:
                self.version, self.since_s = snap.version, now
            PROM.gauge_set_l0("ss_snapshot_version", str(snap.version))
            PROM.gauge_set_l0("ss_snapshot_age_seconds", str(int(now - self.since_s)))
        banned = core.live.resp.execute("ZCOUNT", core.keys.bans, now_ms(), "+inf")
        PROM.gauge_set_l0("ss_bans", str(int(banned or 0)))


def _bye_on_timeout():
    """BYE both ways for a dialog whose timeout came (its max duration, a cut, failed keep-alives, no ACK).

    Sent here rather than by the dialog module's own timeout BYE (timeout_bye, the module's send_bye): in
    Kamailio 5.6 that path drops one reference too many when the dialog ends under it, as when the caller's
    200 OK to the first BYE is handled before the second BYE goes out, and the dialog is freed twice, a
    corrupted shared-memory heap that aborts the node (seen in the e2e suite; fixed upstream in 6.0, GH #4169).
    dlg_bye holds its own reference and gives it back whatever happens. A dialog a BYE already ended is left.
    """
    if pvs("$dlg(state)") in DLG_UP:
        KSR.dialog.dlg_bye("all")


def _end_marked(call_id, code, by, end, *args):
    """Mark a call the switch ends (CUT_REASONS' code, who asked if anyone did) for its CDR, then ``end(*args)``
    it: its dialog's timeout, or the cancel of its INVITE. Unmarked when ``end`` finds the call gone (below 0)."""
    if by:
        KSR.htable.sht_sets(CUT_BY_TABLE, call_id, by)
    KSR.htable.sht_seti(CUT_TABLE, call_id, code)
    if end(*args) < 0:
        KSR.htable.sht_rm(CUT_TABLE, call_id)
        KSR.htable.sht_rm(CUT_BY_TABLE, call_id)


def _cut_reason(call_id):
    """Why the switch ended this call (the grant timer, or on request), its mark taken; None when it did not."""
    why = KSR.htable.sht_get(CUT_TABLE, call_id)
    if why is None:
        return None
    KSR.htable.sht_rm(CUT_TABLE, call_id)
    return CUT_REASONS.get(int(why))


def _cut_by(call_id):
    """Who asked serve_disconnects to end this call (its note taken), or "" when nobody did."""
    by = KSR.htable.sht_get(CUT_BY_TABLE, call_id)
    if by is None:
        return ""
    KSR.htable.sht_rm(CUT_BY_TABLE, call_id)
    return str(by)


def _count_cpu(directory):
    """Count each entry point's CPU (SS_CPU_ACCOUNT_DIR): requests by method, dialog events by event."""
    from callcore.cpuacct import CpuAccount

    account = CpuAccount(directory)
    labels = {
        "ksr_request_route": lambda args: "request " + pvs("$rm"),
        "ksr_dialog_event": lambda args: "dialog " + str(args[1] if len(args) > 1 else ""),
        "ksr_reply_vendor": lambda args: "reply route",
        "ksr_branch_vendor": lambda args: "branch route",
        "ksr_failure_vendor": lambda args: "failure route",
    }
    for name, label_of in labels.items():
        setattr(kamailio, name, account.wrap(getattr(kamailio, name), label_of))


def mod_init():
    sys.stdout.flush()
    if CPU_ACCOUNT_DIR:
        _count_cpu(CPU_ACCOUNT_DIR)
    return kamailio()
