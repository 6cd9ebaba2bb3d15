"""A SIP user agent with real audio (pjsua2, null sound device) for test calls: it places a call, plays a WAV,
records what comes back and measures the call (SIP answer, PDD, ringing and talk time, RTP both ways); the same
agent answers calls (``answer_calls``) as a vendor would, playing a tone, echoing, or sending nothing.

No Django here: the worker's task (switching.tasks) and the tests' fake vendor both run it. pjsua2 allows one
endpoint per process, and the wheel at most 4 calls on it; this agent runs single-threaded (its events are
handled in the calling thread) and places one call at a time, so test calls queue in the worker.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from dataclasses import asdict, dataclass, field

import pjsua2 as pj

from . import audio

MAX_CALLS = 4  # the wheel's limit per process


class _TraceWriter(pj.LogWriter):
    """Keeps the SIP messages pjsua2 logs (msgLogging) as the call's trace."""

    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def write(self, entry):
        text = entry.msg
        if (" TX " in text or " RX " in text or text.startswith(("TX ", "RX "))) and "SIP/2.0" in text:
            self.messages.append(text.strip())


_endpoint = None
_trace = None


def endpoint(port: int = 0, bind: str = "127.0.0.1", public: str = ""):
    """This process's endpoint: created once, UDP on ``bind:port``, G.711 u-law only (what every vendor speaks,
    and what the switch's media proxy relays untouched)."""
    global _endpoint, _trace
    if _endpoint is not None:
        return _endpoint
    ep = pj.Endpoint()
    ep.libCreate()
    config = pj.EpConfig()
    config.uaConfig.threadCnt = 0  # events handled in our own thread: Python callbacks never run in pjsip's
    config.uaConfig.mainThreadOnly = False
    config.uaConfig.maxCalls = MAX_CALLS
    config.uaConfig.userAgent = "softswitch-test-call"
    _trace = _TraceWriter()
    config.logConfig.writer = _trace
    config.logConfig.level = 4
    config.logConfig.consoleLevel = 4  # what reaches the writer, which replaces the console
    config.logConfig.msgLogging = 1
    config.logConfig.decor = 0
    config.medConfig.clockRate = 8000
    config.medConfig.sndClockRate = 8000
    config.medConfig.noVad = True  # silence is sent as audio: the far end's RTP counts must not hide it
    config.medConfig.ecTailLen = 0
    ep.libInit(config)
    ep.audDevManager().setNullDev()
    transport = pj.TransportConfig()
    transport.port = port
    transport.boundAddress = bind
    if public:
        transport.publicAddress = public
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
    ep.libStart()
    for codec in ep.codecEnum2():
        ep.codecSetPriority(codec.codecId, 255 if codec.codecId.startswith("PCMU/8000") else 0)
    _endpoint = ep
    return ep


def _account(ep, uri: str, bind: str, credentials: tuple[str, str, str] | None = None):
    config = pj.AccountConfig()
    config.idUri = uri
    config.mediaConfig.transportConfig.boundAddress = bind
    config.mediaConfig.transportConfig.port = 0
    config.natConfig.sdpNatRewriteUse = 0
    config.natConfig.contactRewriteUse = 0
    config.natConfig.viaRewriteUse = 0
    if credentials:
        username, realm, ha1 = credentials
        # The test account's phone keeps only its digest hash (HA1): pjsua2 answers the challenge with it.
        config.sipConfig.authCreds.append(pj.AuthCredInfo("digest", realm, username, 1, ha1))
    account = _Account()
    account.create(config)
    return account


class _Account(pj.Account):
    def __init__(self):
        super().__init__()
        self.on_incoming = None

    def onIncomingCall(self, prm):  # noqa: N802 - pjsua2's name
        if self.on_incoming:
            self.on_incoming(prm.callId)


@dataclass
class CallResult:
    """What one test call measured. Times in ms, jitter in ms; tx is what this agent sent, rx what it received."""

    status: int = 0
    reason: str = ""
    answered: bool = False
    pdd_ms: int | None = None  # INVITE to the first ringing (180/183) or, without one, to the answer
    ringing_ms: int | None = None  # first ringing to the answer (or to the end when unanswered)
    talk_ms: int = 0
    rtp_tx_packets: int = 0
    rtp_rx_packets: int = 0
    rtp_tx_loss: int = 0  # as the far end reported it (RTCP)
    rtp_rx_loss: int = 0
    jitter_tx_ms: float = 0.0
    jitter_rx_ms: float = 0.0
    remote_rtp: str = ""  # where this agent sent its RTP: the proxy's address when media went through it
    sip_trace: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


class _Call(pj.Call):
    def __init__(self, account, call_id=pj.PJSUA_INVALID_ID, play="", record="", echo=False):
        super().__init__(account, call_id)
        self.play, self.record, self.echo = play, record, echo
        self.player = self.recorder = None
        self.started = time.monotonic()
        self.ringing_at = self.answered_at = self.ended_at = None
        self.status, self.reason = 0, ""
        self.stats = None
        self.remote_rtp = ""

    def onCallState(self, prm):  # noqa: N802
        info = self.getInfo()
        now = time.monotonic()
        if info.state == pj.PJSIP_INV_STATE_EARLY and info.lastStatusCode in (180, 183) and self.ringing_at is None:
            self.ringing_at = now
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and self.answered_at is None:
            self.answered_at = now
            self.status, self.reason = 200, "OK"
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.ended_at = now
            if self.answered_at is None:
                self.status, self.reason = info.lastStatusCode, info.lastReason
            self._media_done()

    def onCallMediaState(self, prm):  # noqa: N802
        info = self.getInfo()
        for index, medium in enumerate(info.media):
            if medium.type != pj.PJMEDIA_TYPE_AUDIO or medium.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            audio = self.getAudioMedia(index)
            if self.record and self.recorder is None:
                self.recorder = pj.AudioMediaRecorder()
                self.recorder.createRecorder(self.record)
                audio.startTransmit(self.recorder)
            if self.echo:
                audio.startTransmit(audio)
            elif self.play and self.player is None:
                self.player = pj.AudioMediaPlayer()
                self.player.createPlayer(self.play, 0)  # looped for the whole call
                self.player.startTransmit(audio)
            with contextlib.suppress(pj.Error):
                self.remote_rtp = self.getStreamInfo(index).remoteRtpAddress

    def keep_stats(self):
        """The audio stream's RTP figures, read while the call is up (pjsua2 drops them at its end)."""
        info = self.getInfo()
        for index, medium in enumerate(info.media):
            if medium.type == pj.PJMEDIA_TYPE_AUDIO:
                try:
                    rtcp = self.getStreamStat(index).rtcp
                except pj.Error:
                    return
                self.stats = (rtcp.txStat.pkt, rtcp.rxStat.pkt, rtcp.txStat.loss, rtcp.rxStat.loss,
                              rtcp.txStat.jitterUsec.mean / 1000, rtcp.rxStat.jitterUsec.mean / 1000)  # fmt: skip

    def _media_done(self):
        # Players and recorders close with the call, so the recording is complete and playable.
        self.player = None
        self.recorder = None


def _pump(ep, seconds: float, until=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ep.libHandleEvents(20)
        if until is not None and until():
            return True
    return False


def place_call(
    target: str,
    play: str,
    record: str,
    *,
    talk_s: float = 5.0,
    ring_timeout_s: float = 30.0,
    credentials: tuple[str, str, str] | None = None,
    caller_uri: str = "sip:test-call@127.0.0.1",
    bind: str = "127.0.0.1",
    port: int = 0,
    headers: dict[str, str] | None = None,
) -> CallResult:
    """Dial ``target`` (a SIP URI), play ``play`` once answered, record what comes back into ``record`` for
    ``talk_s``, hang up and report. ``headers`` go on the INVITE."""
    ep = endpoint(port, bind)
    account = _account(ep, caller_uri, bind, credentials)
    _trace.messages.clear()
    call = _Call(account, play=play, record=record)
    op = pj.CallOpParam(True)
    for name, value in (headers or {}).items():
        header = pj.SipHeader()
        header.hName, header.hValue = name, value
        op.txOption.headers.append(header)
    call.makeCall(target, op)
    _pump(ep, ring_timeout_s, lambda: call.answered_at is not None or call.ended_at is not None)
    if call.answered_at is not None and call.ended_at is None:
        _pump(ep, talk_s / 2, lambda: call.ended_at is not None)
        call.keep_stats()
        _pump(ep, talk_s / 2, lambda: call.ended_at is not None)
        if call.ended_at is None:
            call.keep_stats()
            call.hangup(pj.CallOpParam(True))
    elif call.ended_at is None:
        call.hangup(pj.CallOpParam(True))  # no answer within the ring timeout: CANCEL
    _pump(ep, 5, lambda: call.ended_at is not None)
    result = _result(call)
    result.sip_trace = list(_trace.messages)
    call.recorder = call.player = None  # closes the recording (its WAV header written)
    gc.collect()
    audio.repair_wav(record)
    account.shutdown()
    return result


def _result(call: _Call) -> CallResult:
    result = CallResult(status=call.status, reason=call.reason, answered=call.answered_at is not None)
    first = call.ringing_at or call.answered_at
    if first is not None:
        result.pdd_ms = round((first - call.started) * 1000)
    if call.ringing_at is not None:
        result.ringing_ms = round(((call.answered_at or call.ended_at or time.monotonic()) - call.ringing_at) * 1000)
    if call.answered_at is not None:
        result.talk_ms = round(((call.ended_at or time.monotonic()) - call.answered_at) * 1000)
    if call.stats:
        (result.rtp_tx_packets, result.rtp_rx_packets, result.rtp_tx_loss, result.rtp_rx_loss,
         result.jitter_tx_ms, result.jitter_rx_ms) = call.stats  # fmt: skip
        result.jitter_tx_ms, result.jitter_rx_ms = round(result.jitter_tx_ms, 2), round(result.jitter_rx_ms, 2)
    result.remote_rtp = call.remote_rtp
    return result


def answer_calls(
    port: int,
    mode: str,
    record_dir: str,
    play: str = "",
    calls: int = 1,
    timeout_s: float = 60.0,
    ring_ms: int = 200,
    bind: str = "127.0.0.1",
    ready=None,
) -> list[CallResult]:
    """Answer ``calls`` calls on ``bind:port`` as a vendor: ``tone`` plays ``play``, ``echo`` sends back what it
    hears, ``silent`` answers and sends nothing. Each call's audio is recorded into ``record_dir``/call-N.wav.
    ``ready`` is called once an INVITE would be answered (the transport bound and the account listening)."""
    ep = endpoint(port, bind)
    account = _account(ep, f"sip:vendor@{bind}:{port}", bind)
    active: list[_Call] = []

    def incoming(call_id):
        index = len(active)
        call = _Call(account, call_id, play=play if mode == "tone" else "",
                     record=os.path.join(record_dir, f"call-{index}.wav"), echo=mode == "echo")  # fmt: skip
        active.append(call)
        call.answer(_op(180))
        call.ringing_at = time.monotonic()
        call.answer_due = time.monotonic() + ring_ms / 1000

    account.on_incoming = incoming
    if ready is not None:
        ready()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ep.libHandleEvents(20)
        for call in active:
            if getattr(call, "answer_due", None) and time.monotonic() >= call.answer_due and call.ended_at is None:
                call.answer_due = None
                call.answer(_op(200))
            if call.answered_at is not None and call.ended_at is None:
                call.keep_stats()
        if len(active) >= calls and all(c.ended_at is not None for c in active):
            break
    results = [_result(call) for call in active]
    for call in active:
        call.recorder = call.player = None  # closes each recording (its WAV header written)
    active.clear()
    gc.collect()
    for index in range(len(results)):
        audio.repair_wav(os.path.join(record_dir, f"call-{index}.wav"))
    account.shutdown()
    return results


def _op(code: int):
    op = pj.CallOpParam()
    op.statusCode = code
    return op


def main(argv=None) -> int:
    """``python -m softswitch_portal.switching.testcalls.agent TARGET PLAY RECORD [--talk S]``: one call, its
    result as JSON (the tests' customer with audio, and each operator test call: pjsua2 wants a process of its
    own). The phone's digest credentials, when it has some, come in SS_TEST_CALL_AUTH (username:realm:HA1), out of
    sight of the process list."""
    import argparse
    import json
    import sys

    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("play")
    parser.add_argument("record")
    parser.add_argument("--talk", type=float, default=3.0)
    parser.add_argument("--ring-timeout", type=float, default=20.0)
    parser.add_argument("--from", dest="caller_uri", default="sip:test-call@127.0.0.1")
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--header", action="append", default=[], help="NAME: VALUE, added to the INVITE")
    args = parser.parse_args(argv)
    auth = os.environ.get("SS_TEST_CALL_AUTH", "")
    credentials = tuple(auth.split(":", 2)) if auth.count(":") >= 2 else None
    headers = dict(h.split(":", 1) for h in args.header if ":" in h)
    result = place_call(args.target, args.play, args.record, talk_s=args.talk, ring_timeout_s=args.ring_timeout,
                        credentials=credentials, caller_uri=args.caller_uri, bind=args.bind,
                        headers={k.strip(): v.strip() for k, v in headers.items()})  # fmt: skip
    sys.stdout.write(json.dumps(result.as_dict()) + "\n")
    sys.stdout.flush()
    os._exit(0)  # pjsua2's own shutdown may wait on its threads: the result is out


if __name__ == "__main__":
    main()
