"""The media proxy: which calls relay their RTP through rtpengine, and rtpengine's control protocol.

Kamailio's rtpengine module rewrites the SDP (offer on each vendor's INVITE, answer on its reply); this module
decides whether a call needs it (``proxy_media``, pure, tested row by row) and speaks rtpengine's NG protocol
(bencode over UDP) for what the module cannot do from a timer: deleting a call by its id alone, and finding the
answered calls whose media stopped (``is_silent``) for the media timeout (SS_MEDIA_TIMEOUT_SECONDS).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket

# rtpengine's control address (scripts/rtpengine.sh listens on it); empty: no media proxy on this node.
NG_ADDRESS = os.environ.get("SS_RTPENGINE_NG", "127.0.0.1:22223")
# The SDP rewrite: rtpengine's address in c= and o=, ICE candidates dropped (they would name the peers' own
# addresses, which the proxy hides), plain RTP/AVP as the vendors speak it.
OFFER_FLAGS = "replace-origin replace-session-connection ICE=remove RTP/AVP"
ANSWER_FLAGS = "replace-origin replace-session-connection ICE=remove"

_CONNECTION = re.compile(rb"^c=IN IP[46] ([^\s/]+)", re.MULTILINE)


def sdp_address(body: bytes | str) -> str:
    """The session's (or first medium's) connection address in an SDP body, or "" when it names none."""
    if isinstance(body, str):
        body = body.encode("utf-8", "replace")
    found = _CONNECTION.search(body)
    return found.group(1).decode("ascii", "replace") if found else ""


def behind_nat(sdp_ip: str, source_ip: str) -> bool:
    """Whether the media address a peer offers is not the one its signalling came from: a NAT between them
    (a private address in the SDP, or any other address than the INVITE's source). No SDP: nothing to judge."""
    if not sdp_ip:
        return False
    try:
        media = ipaddress.ip_address(sdp_ip)
    except ValueError:
        return True  # a host name, or garbage: nothing the other side could reach directly either
    if media.is_unspecified:
        return False  # 0.0.0.0: a call on hold from the start
    return sdp_ip != source_ip


def proxy_media(mapping_mode: str, routing_mode: str, sdp_ip: str, source_ip: str) -> bool:
    """Whether a call's media goes through the switch: either gateway says always, or either says nat and the
    caller is behind one (``behind_nat``). A vendor's own NAT shows only in its answer, after the offer went out
    direct, so a vendor behind NAT is set to always."""
    if "always" in (mapping_mode, routing_mode):
        return True
    return "nat" in (mapping_mode, routing_mode) and behind_nat(sdp_ip, source_ip)


# -- rtpengine's NG protocol -----------------------------------------------------------------------------------


def bencode(value) -> bytes:
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list | tuple):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError(f"cannot bencode {type(value).__name__}")


def bdecode(data: bytes):
    value, end = _decode(data, 0)
    if end != len(data):
        raise ValueError("bencode: trailing bytes")
    return value


def _decode(data: bytes, i: int):
    head = data[i : i + 1]
    if head == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1 : end]), end + 1
    if head == b"l":
        i, items = i + 1, []
        while data[i : i + 1] != b"e":
            item, i = _decode(data, i)
            items.append(item)
        return items, i + 1
    if head == b"d":
        i, items = i + 1, {}
        while data[i : i + 1] != b"e":
            key, i = _decode(data, i)
            if isinstance(key, bytes):
                key = key.decode("utf-8", "replace")
            items[key], i = _decode(data, i)
        return items, i + 1
    if head.isdigit():
        colon = data.index(b":", i)
        start = colon + 1
        end = start + int(data[i:colon])
        if end > len(data):
            raise ValueError("bencode: string past the end")
        raw = data[start:end]
        try:
            return raw.decode(), end
        except UnicodeDecodeError:
            return raw, end
    raise ValueError(f"bencode: unexpected {head!r} at {i}")


class MediaProxyError(RuntimeError):
    """rtpengine did not answer, or refused the command."""


class NgClient:
    """One UDP socket to rtpengine's control port; each command is a cookie and a bencoded dictionary."""

    def __init__(self, address: str = NG_ADDRESS, timeout: float = 0.5):
        host, _, port = address.rpartition(":")
        self.address = (host or "127.0.0.1", int(port))
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(timeout)
        self.sequence = 0

    def close(self):
        self.sock.close()

    def _cookie(self) -> bytes:
        self.sequence += 1
        return b"%d_%d" % (os.getpid(), self.sequence)

    def send(self, command: str, **fields) -> None:
        """Send without waiting for the answer (a delete: rtpengine drops a call it no longer has)."""
        self.sock.sendto(self._cookie() + b" " + bencode({"command": command, **fields}), self.address)

    def command(self, command: str, **fields) -> dict:
        cookie = self._cookie()
        self.sock.sendto(cookie + b" " + bencode({"command": command, **fields}), self.address)
        while True:
            try:
                data = self.sock.recv(65535)
            except OSError as exc:  # a timeout, or nothing listening (ICMP refused)
                raise MediaProxyError(f"rtpengine at {self.address[0]}:{self.address[1]}: {exc}") from None
            answer_cookie, _, payload = data.partition(b" ")
            if answer_cookie == cookie:  # an earlier command's late answer is skipped
                break
        answer = bdecode(payload)
        if answer.get("result") not in ("ok", "pong"):
            raise MediaProxyError(f"rtpengine refused {command}: {answer.get('error-reason', answer)}")
        return answer

    def delete(self, call_id: str) -> None:
        self.send("delete", **{"call-id": call_id, "delete-delay": 0})

    def call_ids(self, limit: int = 100000) -> list[str]:
        return [
            c if isinstance(c, str) else c.decode("utf-8", "replace")
            for c in self.command("list", limit=limit).get("calls", [])
        ]  # noqa: E501

    def query(self, call_id: str) -> dict:
        return self.command("query", **{"call-id": call_id})


def last_media_s(query: dict) -> int:
    """The last second any stream of a call carried a packet, either way (rtpengine's query), else its creation."""
    last = int(query.get("created") or 0)
    for tag in (query.get("tags") or {}).values():
        for medium in tag.get("medias") or ():
            for stream in medium.get("streams") or ():
                last = max(last, int(stream.get("last packet") or 0))
    return last


def packets(query: dict) -> dict[str, int]:
    """Packets rtpengine received from each side of a call (by tag), its RTP streams only."""
    counts = {}
    for name, tag in (query.get("tags") or {}).items():
        total = 0
        for medium in tag.get("medias") or ():
            for stream in medium.get("streams") or ():
                if "RTCP" not in (stream.get("flags") or ()):
                    total += int((stream.get("stats") or {}).get("packets") or 0)
        counts[name] = total
    return counts


def is_silent(last_media_s_: int, answer_ms: int, now_ms: int, timeout_s: int) -> bool:
    """Whether an answered call has carried no media for ``timeout_s``: counted from its answer at the earliest,
    as a call may ring without early media."""
    since_ms = max(last_media_s_ * 1000, answer_ms)
    return timeout_s > 0 and now_ms - since_ms >= timeout_s * 1000
