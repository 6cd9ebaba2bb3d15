"""SIP syntax helpers for the messages Kamailio cannot answer itself (RFC 4475 torture tests).

Pure functions on bytes and strings, no Kamailio: the KEMI adapter calls them
only off the normal path (a message Kamailio failed to parse, an unknown URI
scheme, an unacceptable body type), so they favour clarity over speed.

Kamailio builds a reply by copying the request's Via, From, To, Call-ID and
CSeq from its parsed headers; when the request cannot be parsed (a broken Via,
a duplicate CSeq, a negative Content-Length...) it can build none and drops the
request silently. ``raw_reply`` builds that answer from the raw bytes instead.
"""

from __future__ import annotations

import hashlib
import re

# Compact header forms (RFC 3261 §7.3.3) of the headers a reply copies.
_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id"}
_COPIED_ONCE = ("from", "to", "call-id", "cseq")
_TAG = re.compile(rb";\s*tag\s*=", re.IGNORECASE)
_VERSION = re.compile(rb"^SIP/(\d+)\.(\d+)$", re.IGNORECASE)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")

# URI schemes Kamailio parses and the switch routes.
SUPPORTED_SCHEMES = frozenset({"sip", "sips", "tel", "tels"})
# sanity checks (module README): R-URI SIP version (1), required headers (4), CSeq method (32)
# and value (64), Expires (256), parseable URIs (1024: R-URI, From, To), first Via (16384).
# Left to request_route: the URI scheme (416, not 400), Content-Length (UDP allows extra
# bytes after the body, RFC 3261 §18.3), Proxy-Require (420 with the UAS/proxy split).
SANITY_CHECKS = 1 | 4 | 32 | 64 | 256 | 1024 | 16384
SANITY_URIS = 1 | 2 | 4
# Methods the switch recognises (RFC 3261 and its extensions); other methods get 501.
KNOWN_METHODS = frozenset(
    {"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY", "PUBLISH", "INFO",
     "REFER", "MESSAGE", "UPDATE"}
)  # fmt: skip
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER"
# Bodies an INVITE may carry: SDP, alone or with ISUP (SIP-I/SIP-T) in a multipart.
INVITE_BODY_TYPES = frozenset({"application/sdp", "multipart/mixed", "multipart/alternative"})
INVITE_ACCEPT = "application/sdp, multipart/mixed"


def split_head(buf: bytes) -> tuple[bytes, list[bytes]]:
    """The first line and the header lines (continuation lines unfolded) of a raw SIP message."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        end = buf.find(b"\n\n")
    head = (buf if end < 0 else buf[:end]).lstrip(b"\r\n")
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    headers: list[bytes] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t") and headers:
            headers[-1] += b" " + line.strip()
        else:
            headers.append(line.rstrip(b"\r"))
    return lines[0].rstrip(b"\r"), headers


def is_response(first_line: bytes) -> bool:
    return first_line[:4].upper() == b"SIP/"


def unsupported_version(first_line: bytes) -> bool:
    """True when a request line ends in a SIP version other than 2.0 (RFC 4475 badvers: 505)."""
    parts = first_line.split()
    if len(parts) < 3:
        return False
    match = _VERSION.match(parts[-1])
    return bool(match) and (match.group(1), match.group(2)) != (b"2", b"0")


def reply_tag(call_id: bytes, cseq: bytes) -> str:
    """A To tag that is the same for every retransmission of one request."""
    return hashlib.blake2s(call_id + b"\0" + cseq, digest_size=6).hexdigest()


def raw_reply(buf: bytes, code: int, reason: str, extra_headers: tuple[str, ...] = (),
              server: str = "softswitch") -> bytes | None:  # fmt: skip
    """A stateless reply to a request Kamailio could not parse, or None when none may be sent.

    No reply goes to a response (RFC 4475 bigcode: drop it), to an ACK, or to a
    request without a Via (nothing says where answers go: RFC 4475 test.dat).
    The first of each repeated From/To/Call-ID/CSeq is copied (RFC 4475 multi01).
    """
    first, headers = split_head(buf)
    if not first.strip() or is_response(first):
        return None
    if first.split(None, 1)[0] == b"ACK":
        return None
    vias: list[bytes] = []
    once: dict[str, bytes] = {}
    for line in headers:
        name, colon, value = line.partition(b":")
        if not colon:
            continue
        key = name.strip().lower().decode("latin-1")
        key = _COMPACT.get(key, key)
        if key == "via":
            vias.append(value.strip())
        elif key in _COPIED_ONCE and key not in once:
            once[key] = value.strip()
    if not vias:
        return None
    out = [f"SIP/2.0 {code} {reason}".encode()]
    out += [b"Via: " + via for via in vias]
    if "from" in once:
        out.append(b"From: " + once["from"])
    if "to" in once:
        to = once["to"]
        if not _TAG.search(to):
            to += b";tag=" + reply_tag(once.get("call-id", b""), once.get("cseq", b"")).encode()
        out.append(b"To: " + to)
    if "call-id" in once:
        out.append(b"Call-ID: " + once["call-id"])
    if "cseq" in once:
        out.append(b"CSeq: " + once["cseq"])
    out += [h.encode() for h in extra_headers]
    out.append(f"Server: {server}".encode())
    out.append(b"Content-Length: 0")
    return b"\r\n".join(out) + b"\r\n\r\n"


def broken_request_answer(buf: bytes) -> tuple[int, str]:
    """The status for a request Kamailio could not parse: 505 for a foreign SIP version, else 400."""
    first, _ = split_head(buf)
    if unsupported_version(first):
        return 505, "Version Not Supported"
    if any(line[:1] in (b" ", b"\t") for line in buf.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]):
        # Kamailio 5.6 cannot parse some headers folded over lines (a CSeq, RFC 4475 wsinv).
        return 400, "Bad Request (folded header not supported)"
    return 400, "Bad Request"


def uri_scheme_answer(first_line: str) -> tuple[int, str]:
    """The answer for a Request-URI Kamailio could not parse: 416 for a foreign scheme, else 400."""
    parts = first_line.split(" ")
    uri = parts[1] if len(parts) > 2 else ""
    match = _SCHEME.match(uri)
    if match and match.group(1).lower() not in SUPPORTED_SCHEMES:
        return 416, "Unsupported URI Scheme"
    return 400, "Bad Request-URI"


def option_tags(value: str) -> list[str]:
    """The option tags of a Require / Proxy-Require value (comma separated, several headers joined)."""
    return [tag.strip() for tag in value.split(",") if tag.strip()]


def media_type(value: str) -> str:
    """``type/subtype`` of a Content-Type or Accept entry, lower case, parameters dropped."""
    return value.split(";", 1)[0].strip().lower()


def accepts_sdp(accept: str) -> bool:
    """True when an Accept header value (all values joined) lets an answer carry SDP (RFC 3261 §20.1)."""
    if not accept.strip():
        return True  # "no body wanted" makes no sense on an INVITE: not worth refusing a call over
    ranges = {media_type(entry) for entry in accept.split(",")}
    return bool(ranges & {"application/sdp", "application/*", "*/*", "multipart/mixed"})


def _split_contacts(value: str) -> list[str]:
    """A Contact header's contacts: split at commas outside quotes and angle brackets."""
    parts, current, quoted, bracketed = [], [], False, False
    for char in value:
        if char == '"':
            quoted = not quoted
        elif char == "<" and not quoted:
            bracketed = True
        elif char == ">" and not quoted:
            bracketed = False
        elif char == "," and not quoted and not bracketed:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def _seconds(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() and len(text) <= 10 else None


def register_contacts(
    contact: str, expires: str, *, default_s: int, min_s: int, max_s: int
) -> tuple[bool, list[tuple[str, int]]]:
    """What a REGISTER the registrar saved asked for: (``*``: every contact removed, [(contact URI, seconds)]).

    Each contact's lifetime as the registrar reckons it: its ``expires`` parameter, else the Expires header,
    else ``default_s``; 0 removes it, any other is kept within ``min_s``..``max_s``.
    """
    contact = contact.strip()
    header_s = _seconds(expires)
    if contact == "*":
        return True, []
    contacts = []
    for part in _split_contacts(contact):
        if "<" in part and ">" in part:
            uri = part[part.index("<") + 1 : part.index(">")].strip()
            params = part[part.index(">") + 1 :]
        else:
            uri, _, params = part.partition(";")
            params = ";" + params
        seconds = None
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "expires":
                seconds = _seconds(value)
        if seconds is None:
            seconds = header_s if header_s is not None else default_s
        if seconds:
            seconds = min(max(seconds, min_s), max_s)
        if uri:
            contacts.append((uri, seconds))
    return False, contacts
