"""The raw-reply builder and the header checks used for messages Kamailio cannot answer itself."""

import pytest

from callcore import sipsyntax

BROKEN_VIA = (
    b"INVITE sip:user@example.com SIP/2.0\r\n"
    b"To: sip:j.user@example.com\r\n"
    b"From: sip:caller@example.net;tag=134161461246\r\n"
    b"Call-ID: badinv01.0ha0isndaksdjasdf3234nas\r\n"
    b"CSeq: 8 INVITE\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.15;;,;,,\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_a_raw_reply_copies_via_from_to_call_id_and_cseq_and_tags_the_to():
    reply = sipsyntax.raw_reply(BROKEN_VIA, 400, "Bad Request")
    lines = reply.split(b"\r\n")
    assert lines[0] == b"SIP/2.0 400 Bad Request"
    assert b"Via: SIP/2.0/UDP 192.0.2.15;;,;,," in lines
    assert b"From: sip:caller@example.net;tag=134161461246" in lines
    assert any(line.startswith(b"To: sip:j.user@example.com;tag=") for line in lines)
    assert b"Call-ID: badinv01.0ha0isndaksdjasdf3234nas" in lines
    assert b"CSeq: 8 INVITE" in lines
    assert reply.endswith(b"Content-Length: 0\r\n\r\n")


def test_the_to_tag_is_stable_across_retransmissions_and_kept_when_present():
    assert sipsyntax.raw_reply(BROKEN_VIA, 400, "x") == sipsyntax.raw_reply(BROKEN_VIA, 400, "x")
    tagged = BROKEN_VIA.replace(b"To: sip:j.user@example.com", b"t: <sip:j@example.com> ; tag = abc")
    assert b"To: <sip:j@example.com> ; tag = abc\r\n" in sipsyntax.raw_reply(tagged, 400, "x")


def test_compact_forms_folding_and_repeated_headers():
    message = (
        b"OPTIONS sip:a@example.com SIP/2.0\r\n"
        b"v: SIP/2.0/UDP h1;branch=z9hG4bK1,\r\n SIP/2.0/UDP h2;branch=z9hG4bK2\r\n"
        b"Via: SIP/2.0/UDP h3;branch=z9hG4bK3\r\n"
        b"i: first\r\nCall-ID: second\r\nf: <sip:f@x>;tag=1\r\nt: <sip:t@x>\r\nCSeq: 1 OPTIONS\r\n\r\n"
    )
    lines = sipsyntax.raw_reply(message, 400, "Bad Request").split(b"\r\n")
    assert lines[1:3] == [
        b"Via: SIP/2.0/UDP h1;branch=z9hG4bK1, SIP/2.0/UDP h2;branch=z9hG4bK2",
        b"Via: SIP/2.0/UDP h3;branch=z9hG4bK3",
    ]
    assert b"Call-ID: first" in lines and b"Call-ID: second" not in lines


@pytest.mark.parametrize(
    "message",
    [
        b"SIP/2.0 4294967301 better not break the receiver\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n",
        b"ACK sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n",
        b"INVITE sip:alan@jasomi.com\r\nTO : alan@jasomi.com\r\nFoobar roobar\r\n\r\n",  # no Via
        b"",
    ],
    ids=["response", "ack", "no-via", "empty"],
)
def test_no_reply_to_responses_acks_or_requests_without_a_via(message):
    assert sipsyntax.raw_reply(message, 400, "Bad Request") is None


def test_extra_headers_are_added():
    reply = sipsyntax.raw_reply(BROKEN_VIA, 420, "Bad Extension", ("Unsupported: foo",))
    assert b"\r\nUnsupported: foo\r\n" in reply


@pytest.mark.parametrize(
    ("first_line", "answer"),
    [
        (b"OPTIONS sip:t.watson@example.org SIP/7.0", (505, "Version Not Supported")),
        (b"INVITE sip:user@example.com; lr SIP/2.0", (400, "Bad Request")),
    ],
)
def test_broken_request_answer(first_line, answer):
    assert sipsyntax.broken_request_answer(first_line + b"\r\nVia: SIP/2.0/UDP h\r\n\r\n") == answer


def test_a_folded_header_is_named_in_the_reason():
    code, reason = sipsyntax.broken_request_answer(b"INVITE sip:a@b SIP/2.0\r\ncseq: 0009\r\n  INVITE\r\n\r\n")
    assert code == 400 and "folded" in reason


@pytest.mark.parametrize(
    ("first_line", "code"),
    [
        ("OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0", 416),
        ("OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0", 416),
        ("INVITE <sip:user@example.com> SIP/2.0", 400),
        ("INVITE sip:broken@[::1 SIP/2.0", 400),
        ("INVITE", 400),
    ],
)
def test_uri_scheme_answer(first_line, code):
    assert sipsyntax.uri_scheme_answer(first_line)[0] == code


@pytest.mark.parametrize(
    ("accept", "ok"),
    [
        ("text/nobodyKnowsThis", False),
        ("application/sdp", True),
        ("text/html, application/SDP;level=1", True),
        ("application/*", True),
        ("*/*", True),
        ("", True),
    ],
)
def test_accepts_sdp(accept, ok):
    assert sipsyntax.accepts_sdp(accept) is ok


def test_option_tags_and_media_types():
    assert sipsyntax.option_tags("nothingSupportsThis, nothingSupportsThisEither,") == [
        "nothingSupportsThis",
        "nothingSupportsThisEither",
    ]
    assert sipsyntax.media_type(" Application/SDP ; charset=x") == "application/sdp"
    assert sipsyntax.media_type("application/unknownformat") not in sipsyntax.INVITE_BODY_TYPES
