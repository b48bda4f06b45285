"""A corpus of malformed and hostile SIP messages, kept as data: one row per message.

Every row is sent over UDP to Kamailio's SIP listener and over wss through nginx (the
integration test `test_hostile.py`). A row names what an attacker tries, builds the message
for a transport, and lists the answers allowed: a set of status codes, with `None` meaning
"dropped, no answer". No row may ever be answered with a 2xx, and none may reach Genesys.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from lab.rawsip import Register

DROPPED = None
# A REGISTER that passes the edge's own checks reaches Asterisk, which challenges it (401)
# or refuses it (400 and up). Either is an error answer; neither is a registration.
REFUSED_BY_ASTERISK = frozenset({400, 401, 403, 404, 420, 423, 480, 500, 503})
ANY_ERROR_OR_DROP = frozenset({*range(400, 700), DROPPED})
NOT_SERVED = frozenset({403, 501})


@dataclass(frozen=True)
class Peer:
    """Where the message comes from, as the message must say it (Via, Contact)."""

    domain: str
    via: str
    transport: str  # "UDP" or "WSS"


@dataclass(frozen=True)
class Row:
    name: str
    attack: str
    build: Callable[[Peer], str | bytes]
    allowed: frozenset[int | None]


def register(peer: Peer, dn: str = "1002", **changes: object) -> Register:
    reg = Register(peer.domain, dn, dn, f"sip:{dn}@{peer.via};transport={peer.transport.lower()}", peer.via)
    reg.transport = peer.transport
    for key, value in changes.items():
        setattr(reg, key, value)
    return reg


def text(peer: Peer, **changes: object) -> str:
    return register(peer, **changes).render()


def without(message: str, header: str) -> str:
    lines = message.split("\r\n")
    return "\r\n".join(line for line in lines if not line.lower().startswith(header.lower() + ":"))


def replace(message: str, header: str, value: str) -> str:
    """Set a header's whole line (`Name: value`), keeping its position."""
    lines = message.split("\r\n")
    return "\r\n".join(value if line.lower().startswith(header.lower() + ":") else line for line in lines)


def with_extra(peer: Peer, *headers: str) -> str:
    return text(peer, extra=headers)


def other_method(peer: Peer, method: str) -> str:
    message = text(peer).replace("REGISTER sip:", f"{method} sip:", 1)
    return message.replace(" REGISTER\r\n", f" {method}\r\n")


def invite(peer: Peer, number: str = "5551000", caller: str = "1002") -> str:
    """An INVITE from `caller` to `number`, with an SDP offer, as a softphone sends it."""
    message = other_method(peer, "INVITE").replace(f"INVITE sip:{peer.domain}", f"INVITE sip:{number}@{peer.domain}", 1)
    message = replace(message, "From", f"From: <sip:{caller}@{peer.domain}>;tag={secrets.token_hex(4)}")
    message = replace(message, "To", f"To: <sip:{number}@{peer.domain}>")
    sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"
    return with_body_typed(message, sdp, "application/sdp")


def with_route(message: str, route: str) -> str:
    return message.replace("\r\nVia:", f"\r\nRoute: {route}\r\nVia:", 1)


def with_body_typed(message: str, body: str, content_type: str) -> str:
    message = replace(message, "Content-Length", f"Content-Length: {len(body.encode())}")
    return message.replace("\r\n\r\n", f"\r\nContent-Type: {content_type}\r\n\r\n" + body, 1)


def with_body(peer: Peer, body: str, content_length: str) -> str:
    message = replace(text(peer), "Content-Length", f"Content-Length: {content_length}")
    return message.replace("\r\n\r\n", "\r\nContent-Type: text/plain\r\n\r\n" + body, 1)


def authorization(user: str, realm: str = "webrtc-genesys", nonce: str = "deadbeef", uri: str = "sip:x") -> str:
    return (
        f'Authorization: Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{secrets.token_hex(16)}", algorithm=MD5'
    )


def response_line(peer: Peer) -> str:
    message = text(peer)
    return message.replace(message.split("\r\n", 1)[0], "SIP/2.0 200 OK", 1)


ROWS: tuple[Row, ...] = (
    # -- not SIP, or not a request this edge serves ------------------------------------
    Row("binary-garbage", "random bytes", lambda p: secrets.token_bytes(512), frozenset({DROPPED})),
    Row("nul-bytes", "NUL bytes only", lambda p: b"\x00" * 256, frozenset({DROPPED})),
    Row(
        "http-request",
        "an HTTP request on the SIP port",
        lambda p: "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        frozenset({DROPPED, 404}),  # Kamailio's HTTP handler answers 404 on the WebSocket port
    ),
    Row(
        "request-line-no-version",
        "request line cut short",
        lambda p: text(p).replace(" SIP/2.0\r\n", "\r\n", 1),
        frozenset({DROPPED}),
    ),
    Row(
        "sip-version-3",
        "unknown SIP version",
        lambda p: text(p).replace(" SIP/2.0\r\n", " SIP/3.0\r\n", 1),
        frozenset({DROPPED, 400, 505}),
    ),
    Row("unsolicited-response", "a 200 OK for nothing", response_line, frozenset({DROPPED})),
    # Kamailio parses methods case-insensitively: Asterisk gets it and challenges it (401).
    Row(
        "lower-case-method",
        "method in lower case",
        lambda p: other_method(p, "register"),
        frozenset({DROPPED, 401, 501}),
    ),
    # Over UDP only REGISTERs are served (403 for the rest: not an agent's WebSocket, not
    # Asterisk); over wss an agent may start calls only (501 for other methods).
    Row("unknown-method", "an invented method", lambda p: other_method(p, "HACK"), NOT_SERVED),
    # A WebSocket that registered nothing, or UDP from anywhere: no call is relayed.
    Row("invite", "a call from a connection with no registration", invite, frozenset({403})),
    Row(
        "invite-as-another-dn",
        "a call claiming a DN the connection did not register",
        lambda p: invite(p, caller="1003"),
        frozenset({403}),
    ),
    Row(
        "invite-premium",
        "a call to a number outside the allow list",
        lambda p: invite(p, "09006667778889991"),
        frozenset({403}),
    ),
    Row(
        "invite-preloaded-route",
        "a call with a preloaded Route through the edge to Genesys",
        lambda p: with_route(invite(p, "5551000"), "<sip:127.0.0.81:5060;lr>"),
        frozenset({403}),
    ),
    Row("message", "SIP MESSAGE spam", lambda p: other_method(p, "MESSAGE"), NOT_SERVED),
    Row("subscribe", "presence probing", lambda p: other_method(p, "SUBSCRIBE"), NOT_SERVED),
    Row("publish", "PUBLISH", lambda p: other_method(p, "PUBLISH"), NOT_SERVED),
    Row("refer", "REFER (call transfer abuse)", lambda p: other_method(p, "REFER"), NOT_SERVED),
    Row("bye-stray", "BYE outside any dialog", lambda p: other_method(p, "BYE"), NOT_SERVED),
    Row(
        "bye-forged-dialog",
        "BYE with a to-tag and no route set: a dialog the edge never saw",
        lambda p: replace(other_method(p, "BYE"), "To", "To: <sip:1002@x>;tag=forged"),
        frozenset({404}),
    ),
    Row("cancel-stray", "CANCEL for no transaction", lambda p: other_method(p, "CANCEL"), frozenset({481})),
    Row("ack-stray", "ACK for no transaction", lambda p: other_method(p, "ACK"), frozenset({DROPPED})),
    Row(
        "options-to-a-user",
        "OPTIONS scanning a DN",
        lambda p: other_method(p, "OPTIONS").replace(f"OPTIONS sip:{p.domain}", f"OPTIONS sip:1002@{p.domain}", 1),
        NOT_SERVED,
    ),
    # -- broken headers --------------------------------------------------------------
    Row("no-via", "no Via: nowhere to answer", lambda p: without(text(p), "Via"), frozenset({DROPPED})),
    Row(
        "via-garbage",
        "a Via that does not parse",
        lambda p: replace(text(p), "Via", "Via: garbage"),
        frozenset({DROPPED}),
    ),
    Row("no-from", "no From", lambda p: without(text(p), "From"), frozenset({DROPPED, 400})),
    Row(
        "from-garbage",
        "a From without a URI",
        lambda p: replace(text(p), "From", "From: nothing here"),
        frozenset({DROPPED, 400, 403}),
    ),
    Row("no-to", "no To", lambda p: without(text(p), "To"), frozenset({DROPPED, 400, 403})),
    Row(
        "to-garbage",
        "a To without a URI",
        lambda p: replace(text(p), "To", "To: <<<>>>"),
        frozenset({DROPPED, 400, 403}),
    ),
    Row("no-call-id", "no Call-ID", lambda p: without(text(p), "Call-ID"), frozenset({DROPPED, 400})),
    Row(
        "empty-call-id",
        "an empty Call-ID",
        lambda p: replace(text(p), "Call-ID", "Call-ID: "),
        frozenset({DROPPED, 400}),
    ),
    Row("huge-call-id", "an 8 KB Call-ID", lambda p: text(p, call_id="c" * 8192), ANY_ERROR_OR_DROP),
    Row(
        "two-call-ids",
        "two Call-ID headers",
        lambda p: with_extra(p, "Call-ID: second"),
        frozenset({DROPPED, 400, *REFUSED_BY_ASTERISK}),
    ),
    Row("no-cseq", "no CSeq", lambda p: without(text(p), "CSeq"), frozenset({DROPPED, 400})),
    Row(
        "cseq-not-a-number",
        "CSeq: abc",
        lambda p: replace(text(p), "CSeq", "CSeq: abc REGISTER"),
        frozenset({DROPPED, 400}),
    ),
    Row(
        "cseq-method-mismatch",
        "CSeq method is not the request's",
        lambda p: replace(text(p), "CSeq", "CSeq: 1 INVITE"),
        frozenset({DROPPED, 400}),
    ),
    Row(
        "cseq-overflow",
        "CSeq beyond 2^32",
        lambda p: replace(text(p), "CSeq", "CSeq: 99999999999 REGISTER"),
        frozenset({DROPPED, 400}),
    ),
    Row(
        "max-forwards-zero",
        "a looping request",
        lambda p: replace(text(p), "Max-Forwards", "Max-Forwards: 0"),
        frozenset({483}),
    ),
    Row(
        "max-forwards-garbage",
        "Max-Forwards: abc",
        lambda p: replace(text(p), "Max-Forwards", "Max-Forwards: abc"),
        frozenset({DROPPED, 400, 483}),
    ),
    Row(
        "content-length-too-big",
        "Content-Length beyond the body",
        lambda p: with_body(p, "abc", "5000"),
        frozenset({DROPPED, 400}),
    ),
    Row(
        "content-length-negative", "Content-Length: -5", lambda p: with_body(p, "abc", "-5"), frozenset({DROPPED, 400})
    ),
    Row(
        "content-length-garbage", "Content-Length: abc", lambda p: with_body(p, "abc", "abc"), frozenset({DROPPED, 400})
    ),
    Row(
        "expires-garbage",
        "Expires: never",
        lambda p: replace(text(p), "Expires", "Expires: never"),
        REFUSED_BY_ASTERISK | {DROPPED},
    ),
    Row(
        "expires-huge",
        "a registration for 3000 years",
        lambda p: text(p, expires=99999999999),
        REFUSED_BY_ASTERISK | {DROPPED},
    ),
    Row(
        "contact-star-with-expiry",
        "Contact: * with a non-zero expiry",
        lambda p: replace(text(p), "Contact", "Contact: *"),
        REFUSED_BY_ASTERISK | {DROPPED},
    ),
    Row(
        "contact-garbage",
        "a Contact that does not parse",
        lambda p: replace(text(p), "Contact", "Contact: <<<>>>;;;"),
        REFUSED_BY_ASTERISK | {DROPPED},
    ),
    Row(
        "many-contacts",
        "200 Contact headers",
        lambda p: with_extra(p, *(f"Contact: <sip:x{i}@{p.via}>" for i in range(200))),
        REFUSED_BY_ASTERISK | {DROPPED},
    ),
    Row(
        "many-vias",
        "150 Via headers",
        lambda p: text(p).replace(
            "\r\nMax-Forwards",
            "".join(f"\r\nVia: SIP/2.0/UDP 127.0.0.{100 + i % 100}:5060;branch=z9hG4bK{i}" for i in range(150))
            + "\r\nMax-Forwards",
            1,
        ),
        ANY_ERROR_OR_DROP,
    ),
    Row(
        "header-without-colon",
        "a header line without a colon",
        lambda p: with_extra(p, "This is not a header"),
        frozenset({DROPPED, 400}),
    ),
    Row(
        "nul-in-header",
        "a NUL byte inside a header",
        lambda p: with_extra(p, "X-Evil: a\x00b").encode(),
        ANY_ERROR_OR_DROP - {401},
    ),
    Row(
        "invalid-utf8",
        "bytes that are not UTF-8 in From",
        lambda p: text(p).replace("From: <", 'From: "\xff\xfe" <', 1).encode("latin-1"),
        ANY_ERROR_OR_DROP,
    ),
    Row(
        "oversized",
        "a 60 KB message",
        lambda p: with_extra(p, *(f"X-Pad-{i}: {'a' * 990}" for i in range(60))),
        ANY_ERROR_OR_DROP,
    ),
    Row(
        "huge-request-uri",
        "a 4 KB Request-URI",
        lambda p: text(p).replace(f"REGISTER sip:{p.domain}", f"REGISTER sip:{'9' * 4096}@{p.domain}", 1),
        REFUSED_BY_ASTERISK | {DROPPED},
    ),
    # -- identity and authorization -------------------------------------------------
    Row(
        "dn-not-numeric",
        "register a name, not a DN",
        lambda p: text(p, from_user="admin", to_user="admin"),
        frozenset({403}),
    ),
    Row("dn-too-long", "a 40-digit DN", lambda p: text(p, from_user="9" * 40, to_user="9" * 40), frozenset({403})),
    Row(
        "dn-with-parameters",
        "a DN smuggling URI parameters",
        lambda p: text(p, from_user="1002;x=1", to_user="1002;x=1"),
        frozenset({403, 400, DROPPED}),
    ),
    Row(
        "dn-unicode-digits",
        "Arabic-Indic digits that look like a DN",
        lambda p: text(p, from_user="١٠٠٢", to_user="١٠٠٢"),
        frozenset({403, 400, DROPPED}),
    ),
    Row(
        "third-party-register",
        "register DN 1003 as 1002",
        lambda p: text(p, from_user="1002", to_user="1003"),
        frozenset({403}),
    ),
    Row(
        "authorization-for-another-user",
        "1003's credentials for 1002",
        lambda p: with_extra(p, authorization("1003")),
        frozenset({403}),
    ),
    Row(
        "authorization-empty-user",
        "an Authorization without a username",
        lambda p: with_extra(p, authorization("")),
        frozenset({403, 400, DROPPED}),
    ),
    Row(
        "authorization-garbage",
        "Authorization: Digest garbage",
        lambda p: with_extra(p, "Authorization: Digest garbage"),
        frozenset({403, 400, DROPPED}),
    ),
    Row(
        "authorization-bogus-nonce",
        "a forged nonce and response for 1002",
        lambda p: with_extra(p, authorization("1002")),
        frozenset({401, 403}),
    ),
    Row(
        "authorization-huge-nonce",
        "a 4 KB nonce",
        lambda p: with_extra(p, authorization("1002", nonce="n" * 4096)),
        frozenset({400, 401, 403, DROPPED}),
    ),
    Row(
        "authorization-wrong-realm",
        "credentials for another realm",
        lambda p: with_extra(p, authorization("1002", realm="genesys")),
        frozenset({401, 403}),
    ),
    Row(
        "preloaded-route",
        "a Route to send the REGISTER elsewhere",
        lambda p: with_extra(p, "Route: <sip:127.0.0.99;lr>"),
        REFUSED_BY_ASTERISK,
    ),
    Row(
        "request-uri-elsewhere",
        "a REGISTER for a foreign domain (open relay probe)",
        lambda p: text(p).replace(f"REGISTER sip:{p.domain}", "REGISTER sip:127.0.0.99", 1),
        REFUSED_BY_ASTERISK,
    ),
    Row(
        "path-injection",
        "a Path header claiming to be a proxy",
        lambda p: with_extra(p, "Path: <sip:127.0.0.99;lr>"),
        REFUSED_BY_ASTERISK,
    ),
)

# WebSocket upgrades with a foreign Origin: nginx refuses each (allow list in the inventory).
FOREIGN_ORIGINS: tuple[str, ...] = (
    "https://evil.example",
    "null",
    "https://lab-gateway.evil.example",
    "http://lab-gateway:8443",
    "https://lab-gateway:8443.evil.example",
    "file://",
)
